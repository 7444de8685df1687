"""Training inputs as MLflow datasets: the UI's Dataset column, with DVC's hash as digest.

A run's dataset names the data folder it was trained on; its digest is the hash DVC recorded
for that folder in ``dvc.lock`` (the one ``dvc status`` compares), so a run links to the exact
data version. Outside a DVC project (or before the data stage was locked) MLflow's own content
hash of the arrays stands in.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import mlflow
import numpy as np
import yaml

from ecglatent.config import Params
from ecglatent.datasets.arrays import BeatArrays
from ecglatent.datasets.tables import BeatsLayout
from ecglatent.tracking.runs import project_root

log = logging.getLogger(__name__)
# MLflow stores a dataset digest in 36 characters: a DVC folder hash ("<md5>.dir") just fits.
DIGEST_MAX = 36


def dvc_hash(path: str | Path, root: Path | None = None) -> str | None:
    """The hash ``dvc.lock`` records for output ``path`` (a file or folder), or None."""
    root = root or project_root()
    lock = root / "dvc.lock"
    if not lock.is_file():
        return None
    try:
        rel = Path(os.path.relpath(Path(path).resolve(), root.resolve())).as_posix()
    except ValueError:  # another drive (Windows)
        return None
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    for stage in stages.values():
        for out in stage.get("outs", []):
            if Path(out.get("path", "")).as_posix() == rel and out.get("md5"):
                return str(out["md5"])
    return None


def log_training_data(
    name: str,
    data_dir: str | Path,
    features: np.ndarray,
    targets: np.ndarray | None = None,
    context: str = "training",
    tags: Mapping[str, str] | None = None,
) -> mlflow.data.dataset.Dataset:
    """Log ``features``/``targets`` read from ``data_dir`` as input dataset ``name`` of the
    active run; the digest is the folder's DVC hash where ``dvc.lock`` has one."""
    from mlflow.data.numpy_dataset import from_numpy

    digest = dvc_hash(data_dir)
    with warnings.catch_warnings():
        # MLflow registers its local-file source type twice and warns that a path matches both
        warnings.filterwarnings("ignore", "The specified dataset source can be interpreted")
        dataset = from_numpy(
            features,
            targets=targets,
            source=str(Path(data_dir).resolve()),
            name=name,
            digest=digest[:DIGEST_MAX] if digest else None,
        )
    input_tags = {"digest_source": "dvc.lock" if digest else "content", **(tags or {})}
    mlflow.log_input(dataset, context=context, tags=input_tags)
    return dataset


def log_beats(params: Params, dataset: str, data: BeatArrays) -> mlflow.data.dataset.Dataset:
    """Log the beats a β-VAE run trains on (``dataset`` 'ptbxl' or 'mitdb', every role: the
    split file's DVC hash and the role counts are tags of the input)."""
    layout = BeatsLayout(Path(params.preprocess.out_dir))
    folder = (layout.ptbxl_records if dataset == "ptbxl" else layout.mitdb_beats).parent
    split = Path(params.split.out_dir) / f"{folder.name}.csv"
    roles, counts = np.unique(data.role, return_counts=True)
    tags = {f"n_{r}": str(int(c)) for r, c in zip(roles, counts, strict=True) if r}
    tags.update(split=split.as_posix(), split_md5=dvc_hash(split) or "")
    return log_training_data(dataset, folder, data.x, data.y, tags=tags)

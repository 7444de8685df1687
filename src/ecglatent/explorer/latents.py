"""What the explorer needs to know about a model's latent space, stored with the model.

The `evaluate` stage logs one ``latents.npz`` per fine-tuned model as an artifact of its pyfunc:
the training latent means' mean and sd (the slider ranges), and the test items' latent means,
labels, ids and RR features (the scatter). A model logged without it cannot be explored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ecglatent.datasets.arrays import BeatArrays
from ecglatent.training.normalise import Normaliser

ARTIFACT = "latents"  # the pyfunc artifact key
FILENAME = "latents.npz"
MAX_SCATTER = 4000  # test items shown in the scatter (MIT-BIH DS2 has ~50 000 beats)


@dataclass(frozen=True)
class LatentSummary:
    """Training latent statistics and the test items' encodings (latent means, not samples)."""

    train_mean: np.ndarray  # (L,)
    train_sd: np.ndarray  # (L,)
    test_z: np.ndarray  # (n, L)
    test_rr: np.ndarray  # (n, 2) z-scored RR features, as the probe reads them
    test_y: np.ndarray  # (n,) 0/1
    test_ids: np.ndarray  # (n,) record (PTB-XL) or record:beat (MIT-BIH) ids, str
    label_names: tuple[str, str]  # (negative, positive)

    def save(self, path: Path) -> Path:
        np.savez_compressed(
            path, train_mean=self.train_mean, train_sd=self.train_sd, test_z=self.test_z,
            test_rr=self.test_rr, test_y=self.test_y, test_ids=self.test_ids.astype(str),
            label_names=np.asarray(self.label_names, dtype=str),
        )  # fmt: skip
        return path

    @classmethod
    def load(cls, path: Path) -> LatentSummary:
        with np.load(path, allow_pickle=False) as f:
            return cls(f["train_mean"], f["train_sd"], f["test_z"], f["test_rr"], f["test_y"],
                       f["test_ids"], tuple(str(s) for s in f["label_names"]))  # fmt: skip


def _means(model, x: np.ndarray, batch: int = 1024) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return np.concatenate(
            [
                model.encode(torch.as_tensor(x[s : s + batch]))[0].numpy()
                for s in range(0, len(x), batch)
            ]
        ).astype(np.float64)


def _item_ids(data: BeatArrays) -> np.ndarray:
    meta = data.meta
    if "record_id" in meta.columns:
        return meta["record_id"].astype(str).to_numpy()
    if "record" in meta.columns:
        sample = meta["sample"].astype(str) if "sample" in meta.columns else meta.index.astype(str)
        return (meta["record"].astype(str) + ":" + sample).to_numpy()
    return np.arange(len(meta)).astype(str)


def summarise(model, norm: Normaliser, data: BeatArrays, task: str, seed: int) -> LatentSummary:
    """Latent statistics on train+validation (what the probe is fitted on) and test encodings."""
    dev = np.isin(data.role, ["train", "val"])
    test = np.flatnonzero(data.role == "test")
    if len(test) > MAX_SCATTER:
        test = np.sort(np.random.default_rng(seed).choice(test, MAX_SCATTER, replace=False))
    mu_dev = _means(model, norm.x(data.x[dev]))
    ids = _item_ids(data)
    return LatentSummary(
        train_mean=mu_dev.mean(0), train_sd=mu_dev.std(0),
        test_z=_means(model, norm.x(data.x[test])), test_rr=norm.rr(data.rr[test]).astype(np.float64),
        test_y=data.y[test].astype(np.int8), test_ids=ids[test],
        label_names=("rest", task),
    )  # fmt: skip


def explorer_artifacts(tmp: Path, model, norm: Normaliser, data: BeatArrays, task: str,
                       seed: int) -> dict[str, str]:  # fmt: skip
    """The pyfunc artifacts the explorer reads (``{"latents": path}``), written into ``tmp``."""
    path = summarise(model, norm, data, task, seed).save(Path(tmp) / FILENAME)
    return {ARTIFACT: str(path)}

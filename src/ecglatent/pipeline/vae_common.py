"""What the pretrain, finetune and evaluate stages share: data on the device, model files."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ecglatent.config import Params
from ecglatent.datasets.arrays import BeatArrays, load_dataset
from ecglatent.models.registry import rebuild_vae
from ecglatent.models.small_vae import TaskVAE
from ecglatent.training.device import pick_device, set_threads
from ecglatent.training.normalise import Normaliser
from ecglatent.training.trainer import TensorSet

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    data: BeatArrays
    normaliser: Normaliser
    train: TensorSet
    val: TensorSet
    device: torch.device


def replicates(params: Params, dataset: str) -> list[int]:
    """Replicate numbers of ``dataset``: PTB-XL's outer folds, MIT-BIH's seeds."""
    n = params.split.outer_folds if dataset == "ptbxl" else params.split.mitdb_replicates
    return list(range(n))


def replicate_seed(params: Params, replicate: int) -> int:
    """The seed of replicate ``replicate`` (init, sampling, item caps): ``seed + replicate``."""
    return params.seed + replicate


def prepare(params: Params, dataset: str, replicate: int = 0) -> Prepared:
    """Load ``dataset`` with replicate ``replicate``'s roles, fit the normaliser on its training
    part and move train/val to the device."""
    set_threads(params.vae.threads)
    device = pick_device(params.vae.device)
    data = load_dataset(dataset, params, replicate)
    tr = data.role == "train"
    va = data.role == "val"
    if tr.sum() == 0 or va.sum() == 0:
        raise ValueError(f"{dataset}: empty train ({tr.sum()}) or validation ({va.sum()}) set")
    norm = Normaliser.fit(data.x[tr], data.rr[tr])
    va_idx = np.flatnonzero(va)
    cap = params.vae.max_val_items.get(dataset, 0)
    if cap and len(va_idx) > cap:
        rng = np.random.default_rng(replicate_seed(params, replicate))
        va_idx = np.sort(rng.choice(va_idx, cap, replace=False))
    tr_idx = np.flatnonzero(tr)

    def tensors(idx: np.ndarray) -> TensorSet:
        return TensorSet.from_numpy(norm.x(data.x[idx]), norm.rr(data.rr[idx]), data.y[idx], device)

    log.info("%s rep%d: %d train, %d val items on %s", dataset, replicate, len(tr_idx),
             len(va_idx), device)  # fmt: skip
    return Prepared(data, norm, tensors(tr_idx), tensors(va_idx), device)


def model_dir(params: Params, dataset: str, stage: str, replicate: int = 0) -> Path:
    """models/<dataset>/<stage>/rep<k>/: one folder per replicate (one DVC out per stage)."""
    return Path(params.vae.models_dir) / dataset / stage / f"rep{replicate}"


def checkpoint_dir(params: Params, dataset: str, stage: str, replicate: int = 0) -> Path:
    """checkpoints/<dataset>/<stage>/rep<k>/: per-epoch checkpoints, outside every DVC out, so
    a killed stage resumes under `dvc repro` (which deletes a stage's outs before running it)."""
    return Path(params.vae.checkpoint_dir) / dataset / stage / f"rep{replicate}"


def curve_path(params: Params, dataset: str, stage: str, replicate: int, name: str) -> Path:
    return (Path(params.tracking.reports_dir) / "curves" / dataset / stage / f"rep{replicate}"
            / f"{name}.csv")  # fmt: skip


NAIVE_SUFFIX = ".naive.pt"


def naive_epochs(params: Params) -> int:
    """Epoch cap of the task-naive control's continued pretraining: the same extra epochs the
    task-specific model gets (head-only + end-to-end fine-tuning caps), so naive and specific
    rows have equal training budgets."""
    return params.vae.finetune_head.max_epochs + params.vae.finetune.max_epochs


def save_model(path: Path, model: TaskVAE, normaliser: Normaliser, extra: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"state_dict": model.state_dict(), "build_config": model.build_config,
                "normaliser": normaliser.to_dict(), **extra}, tmp)  # fmt: skip
    tmp.replace(path)


def load_model(path: Path, latent_pred: int | None = None, device: str | torch.device = "cpu"):
    """A saved model (optionally rebuilt with a new head) and its saved metadata."""
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run the stage that writes it first")
    saved = torch.load(path, map_location=device, weights_only=False)
    cfg = dict(saved["build_config"])
    if latent_pred is not None:
        cfg["latent_pred"] = latent_pred
    model = rebuild_vae(cfg)
    missing, unexpected = model.load_state_dict(saved["state_dict"], strict=False)
    if unexpected or any(not k.startswith("head.") for k in missing):
        raise RuntimeError(f"{path}: weights do not fit ({missing=}, {unexpected=})")
    return model.to(device), saved


def write_curve(path: Path, history: list[dict[str, float]]) -> None:
    """Per-epoch losses as CSV for `dvc plots`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(history).to_csv(path, index=False)


def task_of(params: Params, dataset: str) -> str:
    return params.split.task_name if dataset == "ptbxl" else params.split.mitdb_positive_class

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


def prepare(params: Params, dataset: str) -> Prepared:
    """Load ``dataset``, fit the normaliser on its training part and move train/val to the device."""
    set_threads(params.vae.threads)
    device = pick_device(params.vae.device)
    data = load_dataset(dataset, params)
    tr = data.role == "train"
    va = data.role == "val"
    if tr.sum() == 0 or va.sum() == 0:
        raise ValueError(f"{dataset}: empty train ({tr.sum()}) or validation ({va.sum()}) set")
    norm = Normaliser.fit(data.x[tr], data.rr[tr])
    va_idx = np.flatnonzero(va)
    cap = params.vae.max_val_items.get(dataset, 0)
    if cap and len(va_idx) > cap:
        va_idx = np.sort(np.random.default_rng(params.seed).choice(va_idx, cap, replace=False))
    tr_idx = np.flatnonzero(tr)

    def tensors(idx: np.ndarray) -> TensorSet:
        return TensorSet.from_numpy(norm.x(data.x[idx]), norm.rr(data.rr[idx]), data.y[idx], device)

    log.info("%s: %d train, %d val items on %s", dataset, len(tr_idx), len(va_idx), device)
    return Prepared(data, norm, tensors(tr_idx), tensors(va_idx), device)


def model_dir(params: Params, dataset: str, stage: str) -> Path:
    return Path(params.vae.models_dir) / dataset / stage


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

"""The β-VAE training loop: one phase (pretrain, head-only or end-to-end fine-tune) at a time.

The whole training set sits on the device as tensors and batches are index slices, so there
is no DataLoader overhead. Each epoch is checkpointed (model, optimiser, sampler RNG, early
stopping state, history), and a killed run resumes from its last completed epoch.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ecglatent.training.losses import vae_loss

from .small_vae import TaskVAE

log = logging.getLogger(__name__)
PHASES = ("pretrain", "finetune_head", "finetune")


@dataclass
class TensorSet:
    """Inputs on the training device: x (n, leads, T), rr (n, k), y (n,) with NaN = unlabelled."""

    x: torch.Tensor
    rr: torch.Tensor
    y: torch.Tensor

    @classmethod
    def from_numpy(cls, x, rr, y, device: torch.device) -> TensorSet:
        def as_t(a) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=device)

        return cls(as_t(x), as_t(rr), as_t(y))

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True)
class PhaseSpec:
    phase: str
    lr: float
    max_epochs: int
    beta: float
    gamma: float
    batch_size: int = 64
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    patience: int = 25
    max_train_items: int = 0  # items drawn per epoch; 0 = len(train)
    balanced: bool = False  # draw labelled classes equally often (fine-tuning)
    amp: bool = False


@dataclass
class FitResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_val: float = math.inf
    stopped_early: bool = False
    resumed_from: int | None = None


EpochCallback = Callable[[dict[str, float]], None]


def _epoch_indices(n: int, spec: PhaseSpec, y: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    k = spec.max_train_items or n
    if spec.balanced:
        yc = y.detach().cpu()
        labelled = ~torch.isnan(yc)
        weights = torch.zeros(n)
        for cls in (0.0, 1.0):
            members = labelled & (yc == cls)
            if members.any():
                weights[members] = 1.0 / members.sum()
        if weights.sum() > 0:
            return torch.multinomial(weights, k, replacement=True, generator=gen)
    if k >= n:
        return torch.randperm(n, generator=gen)
    return torch.randperm(n, generator=gen)[:k]


def _loss_over(model: TaskVAE, data: TensorSet, spec: PhaseSpec, batch: int) -> dict[str, float]:
    model.eval()
    sums: dict[str, float] = {}
    n_total = 0
    use_y = spec.phase != "pretrain"
    with torch.no_grad():
        for start in range(0, len(data), batch):
            sl = slice(start, start + batch)
            out = model(data.x[sl], data.rr[sl])
            terms = vae_loss(out, data.x[sl], data.y[sl] if use_y else None,
                             beta=spec.beta, gamma=spec.gamma if use_y else 0.0)  # fmt: skip
            b = data.x[sl].shape[0]
            for k, v in terms.as_floats().items():
                sums[k] = sums.get(k, 0.0) + v * b
            n_total += b
    return {k: v / max(n_total, 1) for k, v in sums.items()}


def fit_phase(
    model: TaskVAE,
    train: TensorSet,
    val: TensorSet,
    spec: PhaseSpec,
    checkpoint: Path,
    seed: int,
    on_epoch: EpochCallback | None = None,
    progress: bool = True,
) -> FitResult:
    """Train ``model`` for one phase with AdamW, clipping and early stopping on val loss.

    On return the model holds the weights of its best validation epoch. If ``checkpoint``
    exists from an interrupted run of the same phase, training resumes from it.
    """
    if spec.phase not in PHASES:
        raise ValueError(f"unknown phase {spec.phase!r}; one of {PHASES}")
    model.freeze_autoencoder(spec.phase == "finetune_head")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    result = FitResult()
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    bad_epochs, start_epoch = 0, 0
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location=train.x.device, weights_only=False)
        if state.get("phase") == spec.phase and not state.get("complete"):
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            gen.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            best_state = state["best_state"]
            result.history = state["history"]
            result.best_epoch, result.best_val = state["best_epoch"], state["best_val"]
            bad_epochs, start_epoch = state["bad_epochs"], state["epoch"] + 1
            result.resumed_from = start_epoch
            log.info("%s: resuming from epoch %d (%s)", spec.phase, start_epoch, checkpoint)
            for row in result.history:
                if on_epoch:
                    on_epoch(row)
    device_type = train.x.device.type
    use_y = spec.phase != "pretrain"
    bar = tqdm(range(start_epoch, spec.max_epochs), desc=spec.phase, unit="epoch",
               disable=not progress, initial=start_epoch, total=spec.max_epochs)  # fmt: skip
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        idx = _epoch_indices(len(train), spec, train.y, gen).to(train.x.device)
        sums: dict[str, float] = {}
        for start in range(0, len(idx), spec.batch_size):
            b = idx[start : start + spec.batch_size]
            if len(b) < 2:
                continue  # GroupNorm is fine with 1, but a 1-item step is noise
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=spec.amp):
                out = model(train.x[b], train.rr[b])
                terms = vae_loss(out, train.x[b], train.y[b] if use_y else None,
                                 beta=spec.beta, gamma=spec.gamma if use_y else 0.0)  # fmt: skip
            opt.zero_grad(set_to_none=True)
            terms.total.backward()
            if spec.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, spec.grad_clip)
            opt.step()
            for k, v in terms.as_floats().items():
                sums[k] = sums.get(k, 0.0) + v * len(b)
        n_seen = max(len(idx), 1)
        row: dict[str, float] = {"epoch": float(epoch)}
        row.update({f"train_{k}": v / n_seen for k, v in sums.items()})
        row.update({f"val_{k}": v for k, v in _loss_over(model, val, spec, 256).items()})
        row["seconds"] = time.perf_counter() - t0
        if not all(math.isfinite(v) for v in row.values()):
            raise FloatingPointError(
                f"{spec.phase}: non-finite loss at epoch {epoch} ({row}); lower the learning "
                f"rate or gamma"
            )
        result.history.append(row)
        if row["val_loss"] < result.best_val - 1e-6:
            result.best_val, result.best_epoch, bad_epochs = row["val_loss"], epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
        bar.set_postfix(train=f"{row['train_loss']:.3g}", val=f"{row['val_loss']:.3g}")
        if on_epoch:
            on_epoch(row)
        _save(checkpoint, {
            "phase": spec.phase, "epoch": epoch, "model": model.state_dict(),
            "optimizer": opt.state_dict(), "generator": gen.get_state(),
            "torch_rng": torch.get_rng_state(), "best_state": best_state,
            "history": result.history, "best_epoch": result.best_epoch,
            "best_val": result.best_val, "bad_epochs": bad_epochs, "complete": False,
        })  # fmt: skip
        if bad_epochs >= spec.patience:
            result.stopped_early = True
            break
    model.load_state_dict(best_state)
    model.freeze_autoencoder(False)
    _save(checkpoint, {"phase": spec.phase, "complete": True, "best_epoch": result.best_epoch})
    return result


def _save(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)

"""The β-VAE training loop: one phase (pretrain, head-only or end-to-end fine-tune) at a time.

The whole training set sits on the device as tensors and batches are index slices, so there
is no DataLoader overhead. Loss terms are summed on the device and read back once per epoch
(reading a CUDA scalar each step would stall the GPU pipeline). Each epoch is checkpointed (model, optimiser, sampler RNG, early
stopping state, history), and a killed run resumes from its last completed epoch.

A checkpoint carries a fingerprint of what the phase starts from (spec, seed, the model's
initial weights, the train/val tensors): one written by any other configuration (a changed
param, new data, another base model) is never resumed but overwritten, with a log line. A
finished phase leaves a ``complete`` checkpoint with its best weights and history, so a re-run
of the same configuration (a killed `dvc repro` re-run, which deletes the stage's outs first)
returns them without training again.
"""

from __future__ import annotations

import hashlib
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

from ecglatent.models.small_vae import TaskVAE
from ecglatent.training.losses import vae_loss
from ecglatent.training.optim import make_adamw

log = logging.getLogger(__name__)
PHASES = ("pretrain", "finetune_head", "finetune")
TERMS = ("loss", "recon", "kl", "bce", "mse")  # the order of LossTerms.as_floats()
# Validation runs without gradients, so it can afford much larger batches than training; the
# per-batch terms are batch means, weighted back by batch size, so the result is the same.
VAL_BATCH = 1024


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
    compile: bool = False  # torch.compile the training forward pass (pays 20-30 s up front)


@dataclass
class FitResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_val: float = math.inf
    stopped_early: bool = False
    resumed_from: int | None = None  # first epoch trained in this call (None: from scratch)
    reused: bool = False  # the phase had finished under this configuration: nothing retrained


def fingerprint(model: TaskVAE, train: TensorSet, val: TensorSet, spec: PhaseSpec,
                seed: int) -> str:  # fmt: skip
    """A digest of everything a phase's result depends on, taken before it trains."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((spec, seed)).encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    for t in (train.x, train.rr, train.y, val.x, val.rr, val.y):
        h.update(repr(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


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


def _term_vector(terms) -> torch.Tensor:
    """The logged terms as one detached device vector, in :data:`TERMS` order (no host sync).

    float64, so the epoch sums are exactly what summing Python floats gave.
    """
    return torch.stack([terms.total.detach(), terms.recon.detach(), terms.kl.detach(),
                        terms.bce.detach(), terms.mse.detach()]).double()  # fmt: skip


def _as_row(sums: torch.Tensor | None, n: int) -> dict[str, float]:
    if sums is None:
        return {}
    return dict(zip(TERMS, (sums / max(n, 1)).tolist(), strict=True))


def _loss_over(
    model: TaskVAE, data: TensorSet, spec: PhaseSpec, batch: int = VAL_BATCH
) -> dict[str, float]:
    model.eval()
    sums: torch.Tensor | None = None
    n_total = 0
    use_y = spec.phase != "pretrain"
    with torch.no_grad():
        for start in range(0, len(data), batch):
            sl = slice(start, start + batch)
            out = model(data.x[sl], data.rr[sl])
            terms = vae_loss(out, data.x[sl], data.y[sl] if use_y else None,
                             beta=spec.beta, gamma=spec.gamma if use_y else 0.0)  # fmt: skip
            b = data.x[sl].shape[0]
            v = _term_vector(terms) * b
            sums = v if sums is None else sums + v
            n_total += b
    return _as_row(sums, n_total)


def fit_phase(
    model: TaskVAE,
    train: TensorSet,
    val: TensorSet,
    spec: PhaseSpec,
    checkpoint: Path,
    seed: int,
    on_epoch: EpochCallback | None = None,
    progress: bool = True,
    label: str = "",
) -> FitResult:
    """Train ``model`` for one phase with AdamW, clipping and early stopping on val loss.

    On return the model holds the weights of its best validation epoch. If ``checkpoint``
    exists from an interrupted run of the same phase, training resumes from it.
    """
    if spec.phase not in PHASES:
        raise ValueError(f"unknown phase {spec.phase!r}; one of {PHASES}")
    model.freeze_autoencoder(spec.phase == "finetune_head")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_adamw(params, spec.lr, spec.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    result = FitResult()
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    bad_epochs, start_epoch = 0, 0
    key = fingerprint(model, train, val, spec, seed)
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location=train.x.device, weights_only=False)
        if state.get("key") != key:
            log.info("%s: %s was written by another configuration (params, data, seed or base "
                     "model); training from epoch 0 and overwriting it", spec.phase, checkpoint)  # fmt: skip
        elif state.get("complete"):
            model.load_state_dict(state["best_state"])
            model.freeze_autoencoder(False)
            result.history = state["history"]
            result.best_epoch, result.best_val = state["best_epoch"], state["best_val"]
            result.stopped_early, result.reused = state["stopped_early"], True
            # what follows (a new head's init) draws from torch's RNG as after training
            torch.set_rng_state(state["torch_rng"])
            log.info("%s: finished before under this configuration; best epoch %d kept (%s)",
                     spec.phase, result.best_epoch, checkpoint)  # fmt: skip
            for row in result.history:
                if on_epoch:
                    on_epoch(row)
            return result
        else:
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
    # compiled forward for training only; state_dicts and validation use the module itself
    forward = torch.compile(model) if spec.compile else model
    bar = tqdm(range(start_epoch, spec.max_epochs), unit="epoch",
               desc=f"{label} {spec.phase}" if label else spec.phase,
               disable=not progress, initial=start_epoch, total=spec.max_epochs)  # fmt: skip
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        idx = _epoch_indices(len(train), spec, train.y, gen).to(train.x.device)
        sums: torch.Tensor | None = None
        for start in range(0, len(idx), spec.batch_size):
            b = idx[start : start + spec.batch_size]
            if len(b) < 2:
                continue  # GroupNorm is fine with 1, but a 1-item step is noise
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=spec.amp):
                out = forward(train.x[b], train.rr[b])
                terms = vae_loss(out, train.x[b], train.y[b] if use_y else None,
                                 beta=spec.beta, gamma=spec.gamma if use_y else 0.0)  # fmt: skip
            opt.zero_grad(set_to_none=True)
            terms.total.backward()
            if spec.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, spec.grad_clip)
            opt.step()
            v = _term_vector(terms) * len(b)
            sums = v if sums is None else sums + v
        row: dict[str, float] = {"epoch": float(epoch)}
        row.update({f"train_{k}": v for k, v in _as_row(sums, len(idx)).items()})
        row.update({f"val_{k}": v for k, v in _loss_over(model, val, spec).items()})
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
            "key": key, "phase": spec.phase, "epoch": epoch, "model": model.state_dict(),
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
    _save(checkpoint, {"key": key, "phase": spec.phase, "complete": True,
                       "best_state": best_state, "history": result.history,
                       "best_epoch": result.best_epoch, "best_val": result.best_val,
                       "stopped_early": result.stopped_early,
                       "torch_rng": torch.get_rng_state()})  # fmt: skip
    return result


def _save(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)

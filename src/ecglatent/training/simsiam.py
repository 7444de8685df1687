"""SiliconNet training: SimSiam pretraining on 12-lead beats and the N-vs-V downstream classifier.

Data sit on the device as tensors and batches are index slices (no DataLoader); losses are
summed on the device and read back once per epoch, never per step. Both loops
stop early and hand back the model of their best validation epoch; nothing here ever sees the
test set, so epoch and threshold are chosen on validation only.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from ecglatent.datasets.single_lead import sample_two_leads
from ecglatent.evaluation.beat_metrics import beat_metrics, best_threshold
from ecglatent.models.siliconet import BeatClassifier, SiliconEmbedding, SimSiam, inference_copy
from ecglatent.training.optim import make_adamw
from ecglatent.training.precision import embeddings_in

log = logging.getLogger(__name__)

EpochCallback = Callable[[dict[str, float]], None]

# --- pretraining (paper §2.4 i) -----------------------------------------------------------------
PRETRAIN_LR = 1e-3
PRETRAIN_LR_STEP_EPOCHS = 10
PRETRAIN_LR_GAMMA = 0.75
PRETRAIN_MAX_EPOCHS = 100  # the paper gives no cap; early stopping usually ends it
PRETRAIN_BATCH = 256
# --- downstream (paper §2.4 ii, Table 1) --------------------------------------------------------
DOWNSTREAM_MAX_EPOCHS = 50
DOWNSTREAM_SCHEDULE_EPOCHS = 50  # length of the cosine decay
DOWNSTREAM_BATCH = 128
# --- both ---------------------------------------------------------------------------------------
PATIENCE = 20
WEIGHT_DECAY = 1e-2  # AdamW's default: the paper names AdamW but no decay
EVAL_BATCH = 2048
COS_EPS = 1e-8


# ================================================================================ SimSiam loss


def negative_cosine(p: Tensor, z: Tensor) -> Tensor:
    """D(p, z) = −mean cos(p, sg(z)): the target ``z`` is detached here whatever the caller did."""
    return -F.cosine_similarity(p, z.detach(), dim=-1, eps=COS_EPS).mean()


def simsiam_loss(p1: Tensor, p2: Tensor, z1: Tensor, z2: Tensor) -> Tensor:
    """½·D(p1, sg(z2)) + ½·D(p2, sg(z1)), in [−1, 1]; −1 when predictions match the targets.

    The paper's appendix writes 1 + ½d + ½d with d = 1 − cos: a constant shift with the same
    gradients.
    """
    return 0.5 * negative_cosine(p1, z2) + 0.5 * negative_cosine(p2, z1)


def _z_std(z: Tensor) -> float:
    # SimSiam's collapse monitor: per-dimension std of l2-normalised outputs, ≈ 1/sqrt(d) when
    # healthy, 0 when every beat maps to the same point.
    return float(F.normalize(z, dim=1).std(dim=0).mean())


# ================================================================================ pretraining


@dataclass
class PretrainResult:
    model: SimSiam
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_val_loss: float = math.inf
    stopped_early: bool = False


def _as_tensor(a: np.ndarray | Tensor, device: torch.device, dtype=torch.float32) -> Tensor:
    if isinstance(a, Tensor):
        return a.to(device, dtype)
    a = np.asarray(a)
    if not a.flags.writeable:
        a = a.copy()  # pandas' copy-on-write arrays are read-only, which torch warns about
    return torch.as_tensor(a, dtype=dtype).to(device)


def _batches(n: int, batch: int, gen: torch.Generator | None, min_last: int = 2):
    order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    for start in range(0, n, batch):
        idx = order[start : start + batch]
        # a 1-beat batch breaks BatchNorm in train mode
        if len(idx) >= min_last:
            yield idx


def _batched(fn: Callable[[Tensor], Tensor], x: Tensor, batch: int = EVAL_BATCH) -> Tensor:
    """fn over x in slices, without gradients (evaluation and frozen features)."""
    with torch.no_grad():
        return torch.cat([fn(x[s : s + batch]) for s in range(0, max(len(x), 1), batch)])


def _simsiam_val(model: SimSiam, v1: Tensor, v2: Tensor, batch: int) -> tuple[float, float]:
    model.eval()
    total, n, zs = None, 0, []
    with torch.no_grad():
        for start in range(0, len(v1), batch):
            p1, p2, z1, z2 = model(v1[start : start + batch], v2[start : start + batch])
            b = len(p1)
            t = simsiam_loss(p1, p2, z1, z2).double() * b
            total = t if total is None else total + t
            n += b
            zs.append(z1)
    mean = float(total) / max(n, 1) if total is not None else 0.0
    return mean, _z_std(torch.cat(zs)) if zs else float("nan")


def pretrain_simsiam(
    model: SimSiam,
    train_beats: np.ndarray | Tensor,
    val_beats: np.ndarray | Tensor,
    *,
    lr: float = PRETRAIN_LR,
    weight_decay: float = WEIGHT_DECAY,
    batch_size: int = PRETRAIN_BATCH,
    max_epochs: int = PRETRAIN_MAX_EPOCHS,
    patience: int = PATIENCE,
    lr_step_epochs: int = PRETRAIN_LR_STEP_EPOCHS,
    lr_gamma: float = PRETRAIN_LR_GAMMA,
    seed: int = 0,
    device: torch.device | str | None = None,
    on_epoch: EpochCallback | None = None,
    progress: bool = True,
    precision: str = "fp32",
) -> PretrainResult:
    """SimSiam on normalised multi-lead beats (n, L, T): views = two different leads per beat.

    AdamW, lr × ``lr_gamma`` every ``lr_step_epochs`` epochs, early stopping on validation loss.
    Training views are redrawn every epoch; validation views are drawn once (seeded) so the
    validation loss is comparable across epochs. On return the model holds its best weights.
    ``precision`` ('fp32' or 'bf16', see :mod:`ecglatent.training.precision`) is the
    embedding's. History rows: epoch, train_loss, val_loss, val_z_std, lr, seconds.
    """
    with embeddings_in(model, precision):
        dev = torch.device(device) if device is not None else next(model.parameters()).device
        model.to(dev)
        train = _as_tensor(train_beats, dev)
        val = _as_tensor(val_beats, dev)
        if len(train) < 2 or len(val) < 1:
            raise ValueError(
                f"need >= 2 training and >= 1 validation beats, got {len(train)}/{len(val)}"
            )
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        rng = np.random.default_rng(seed)
        v1, v2 = sample_two_leads(val, np.random.default_rng(seed + 1))
        opt = make_adamw(model.parameters(), lr=lr, weight_decay=weight_decay)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=lr_step_epochs, gamma=lr_gamma)
        result = PretrainResult(model=model)
        best_state = copy.deepcopy(model.state_dict())
        bad = 0
        bar = tqdm(range(max_epochs), desc="simsiam", unit="ep", disable=not progress)
        for epoch in bar:
            t0 = time.perf_counter()
            model.train()
            total, n = torch.zeros((), dtype=torch.float64, device=dev), 0
            for idx in _batches(len(train), batch_size, gen):
                x1, x2 = sample_two_leads(train[idx.to(dev)], rng)
                loss = simsiam_loss(*model(x1, x2))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach().double() * len(idx)
                n += len(idx)
            lr_now = opt.param_groups[0]["lr"]
            sched.step()
            val_loss, z_std = _simsiam_val(model, v1, v2, EVAL_BATCH)
            row = {"epoch": float(epoch), "train_loss": float(total) / max(n, 1), "val_loss": val_loss,
                   "val_z_std": z_std, "lr": lr_now, "seconds": time.perf_counter() - t0}  # fmt: skip
            result.history.append(row)
            if on_epoch:
                on_epoch(row)
            bar.set_postfix(train=f"{row['train_loss']:.3f}", val=f"{val_loss:.3f}")
            if val_loss < result.best_val_loss:
                result.best_val_loss, result.best_epoch, bad = val_loss, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad += 1
                if bad >= patience:
                    result.stopped_early = True
                    break
        model.load_state_dict(best_state)
        return result


# ================================================================================ downstream


@dataclass(frozen=True)
class DownstreamConfig:
    """One row of the paper's Table 1.

    The cosine schedule takes each parameter group from its base lr to base × final_lr_factor.
    ``recalibrate_bn`` re-estimates a frozen embedding's BatchNorm statistics on the training
    beats before training: a randomly initialised CNN in eval mode otherwise shrinks the signal
    by ~3× per layer (features ~1e-5) and the linear layer has nothing to learn from.
    """

    name: str
    pretrained: bool
    train_embedding: bool
    lr_embedding: float | None
    lr_classifier: float
    final_lr_factor: float
    recalibrate_bn: bool = False


# §2.4: 1e-3 decays to 8e-4 (×0.8). 2lr: Table 1 gives 1e-5 / 1e-2 while the text gives 1e-6 /
# 1e-2 "until a rate of 1e-3"; read as both groups decaying ×0.1 (1e-2 → 1e-3, 1e-5 → 1e-6).
CONFIGS: dict[str, DownstreamConfig] = {
    "randinit": DownstreamConfig("randinit", False, True, 1e-3, 1e-3, 0.8),
    "randfeatures": DownstreamConfig("randfeatures", False, False, None, 1e-3, 0.8, True),
    "pretrained": DownstreamConfig("pretrained", True, True, 1e-3, 1e-3, 0.8),
    "finetune": DownstreamConfig("finetune", True, False, None, 1e-3, 0.8),
    "2lr": DownstreamConfig("2lr", True, True, 1e-5, 1e-2, 0.1),
}


@dataclass
class ClassifierResult:
    model: BeatClassifier
    config: DownstreamConfig
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_val_f1: float = -1.0
    threshold: float = 0.5  # on P(positive); 0.5 = argmax of the softmax
    stopped_early: bool = False


def _config(config: str | DownstreamConfig) -> DownstreamConfig:
    if isinstance(config, DownstreamConfig):
        return config
    if config not in CONFIGS:
        raise ValueError(f"unknown configuration {config!r}; one of {sorted(CONFIGS)}")
    return CONFIGS[config]


def build_classifier(
    config: str | DownstreamConfig,
    pretrained_embedding: SiliconEmbedding | None = None,
    n_classes: int = 2,
    seed: int = 0,
) -> BeatClassifier:
    """A classifier for ``config``: a copy of the pretrained embedding or a fresh one, frozen or not."""
    cfg = _config(config)
    torch.manual_seed(seed)
    if cfg.pretrained:
        if pretrained_embedding is None:
            raise ValueError(f"configuration {cfg.name!r} needs a pretrained embedding")
        embedding = copy.deepcopy(pretrained_embedding)  # several configs/seeds share one
    else:
        embedding = SiliconEmbedding()
    return BeatClassifier(embedding, n_classes).freeze_embedding(not cfg.train_embedding)


def recalibrate_batchnorm(module: nn.Module, x: Tensor, batch_size: int = EVAL_BATCH) -> None:
    """Re-estimate every BatchNorm's running mean/var as the plain average over ``x``."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m, m.momentum, m.training) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over batches
        m.train()
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            module(x[start : start + batch_size])
    for m, momentum, training in saved:
        m.momentum = momentum
        m.train(training)


def _cosine_factor(epoch: int, total: int, final: float) -> float:
    t = min(epoch, total) / max(total, 1)
    return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * t))


def class_weights(y: np.ndarray | Tensor, n_classes: int = 2) -> Tensor:
    """'Balanced' weights n / (k · n_c): each class contributes equally to the loss."""
    counts = torch.bincount(torch.as_tensor(y).cpu().long(), minlength=n_classes).float()
    return counts.sum() / (n_classes * counts.clamp(min=1))


def predict_proba(
    model: nn.Module,
    x: np.ndarray | Tensor,
    batch_size: int = EVAL_BATCH,
    fold: bool = True,
    precision: str = "fp32",
) -> np.ndarray:
    """Softmax probabilities (n, n_classes) in eval mode.

    ``fold`` scores with :func:`~ecglatent.models.siliconet.inference_copy` (BatchNorm folded
    into the convolutions, same function); pass False for a model that is folded already.
    ``precision`` ('fp32' or 'bf16') is the embedding's; probabilities are float32 either way.
    """
    xt = _as_tensor(x, next(model.parameters()).device)
    model.eval()
    with embeddings_in(model, precision):
        net = inference_copy(model) if fold else model
        return torch.softmax(_batched(net, xt, batch_size), dim=1).cpu().numpy()


def predict(model: nn.Module, x: np.ndarray | Tensor, threshold: float = 0.5) -> np.ndarray:
    """Labels 0/1 with class 1 when P(1) >= ``threshold`` (0.5 = argmax for two classes)."""
    return (predict_proba(model, x)[:, 1] >= threshold).astype(np.int64)


def train_classifier(
    config: str | DownstreamConfig,
    train_x: np.ndarray | Tensor,
    train_y: np.ndarray | Tensor,
    val_x: np.ndarray | Tensor,
    val_y: np.ndarray | Tensor,
    *,
    pretrained_embedding: SiliconEmbedding | None = None,
    n_classes: int = 2,
    max_epochs: int = DOWNSTREAM_MAX_EPOCHS,
    schedule_epochs: int = DOWNSTREAM_SCHEDULE_EPOCHS,
    patience: int = PATIENCE,
    batch_size: int = DOWNSTREAM_BATCH,
    weight_decay: float = WEIGHT_DECAY,
    weighted_loss: bool = True,
    tune_threshold: bool = False,
    seed: int = 0,
    device: torch.device | str = "cpu",
    on_epoch: EpochCallback | None = None,
    progress: bool = True,
    precision: str = "fp32",
) -> ClassifierResult:
    """Train one Table 1 configuration on (n, 1, T) beats; early stopping on validation F1 of V.

    Class-weighted cross-entropy, AdamW with one parameter group per trained part (embedding,
    classifier), cosine decay per epoch over ``schedule_epochs``. A frozen embedding is run once
    to precompute features (it is in eval mode, so this is exact and ~10× faster). With
    ``tune_threshold`` the decision threshold on P(V) maximising validation F1 at the best epoch
    is returned; otherwise 0.5 (the paper's argmax). ``precision`` ('fp32' or 'bf16') is the
    embedding's, in training, validation and frozen features; the returned model is float32.
    History rows: epoch, train_loss, val_loss, val_f1, val_se, val_ppv, lr_embedding,
    lr_classifier, seconds.
    """
    cfg = _config(config)
    dev = torch.device(device)
    model = build_classifier(cfg, pretrained_embedding, n_classes, seed).to(dev)
    with embeddings_in(model, precision):
        xtr, xva = _as_tensor(train_x, dev), _as_tensor(val_x, dev)
        ytr = _as_tensor(train_y, dev, torch.long)
        yva_np = np.asarray(val_y.cpu() if isinstance(val_y, Tensor) else val_y)
        if not (yva_np == 1).any():
            raise ValueError(
                "the validation set holds no positive (V) beat: F1 cannot pick an epoch"
            )
        yva = _as_tensor(yva_np, dev, torch.long)
        if cfg.recalibrate_bn and not cfg.train_embedding:
            recalibrate_batchnorm(model.embedding, xtr)
        head: nn.Module = model
        if not cfg.train_embedding:
            # the frozen embedding is a fixed function: compute its features once
            model.eval()
            features = inference_copy(model.embedding)
            xtr, xva = _batched(features, xtr), _batched(features, xva)
            head = model.classifier
        groups = [
            {"params": model.classifier.parameters(), "lr": cfg.lr_classifier, "name": "classifier"}
        ]
        if cfg.train_embedding:
            groups.append(
                {
                    "params": model.embedding.parameters(),
                    "lr": cfg.lr_embedding,
                    "name": "embedding",
                }
            )
        opt = make_adamw(groups, weight_decay=weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda e: _cosine_factor(e, schedule_epochs, cfg.final_lr_factor)
        )
        weight = class_weights(ytr, n_classes).to(dev) if weighted_loss else None
        gen = torch.Generator().manual_seed(seed)
        result = ClassifierResult(model=model, config=cfg)
        best_state = copy.deepcopy(model.state_dict())
        best_p = np.empty(0)
        bad = 0
        bar = tqdm(range(max_epochs), desc=cfg.name, unit="ep", disable=not progress)
        for epoch in bar:
            t0 = time.perf_counter()
            model.train()
            total, n = torch.zeros((), dtype=torch.float64, device=dev), 0
            for idx in _batches(len(xtr), batch_size, gen):
                idx = idx.to(dev)
                loss = F.cross_entropy(head(xtr[idx]), ytr[idx], weight=weight)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach().double() * len(idx)
                n += len(idx)
            lrs = {g["name"]: g["lr"] for g in opt.param_groups}
            sched.step()
            model.eval()
            logits = _batched(inference_copy(head), xva)
            val_loss = float(F.cross_entropy(logits, yva, weight=weight))
            p_pos = torch.softmax(logits, dim=1)[:, 1].cpu().numpy()
            m = beat_metrics(yva_np, (p_pos >= 0.5).astype(np.int64))
            row = {"epoch": float(epoch), "train_loss": float(total) / max(n, 1), "val_loss": val_loss,
                   "val_f1": m.f1, "val_se": m.se, "val_ppv": m.ppv,
                   "lr_embedding": lrs.get("embedding", 0.0), "lr_classifier": lrs["classifier"],
                   "seconds": time.perf_counter() - t0}  # fmt: skip
            result.history.append(row)
            if on_epoch:
                on_epoch(row)
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_f1=f"{m.f1:.3f}")
            if m.f1 > result.best_val_f1:
                result.best_val_f1, result.best_epoch, bad = m.f1, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
                best_p = p_pos
            else:
                bad += 1
                if bad >= patience:
                    result.stopped_early = True
                    break
        model.load_state_dict(best_state)
        model.eval()
        if tune_threshold and len(best_p):
            result.threshold, _ = best_threshold(yva_np, best_p)
        return result

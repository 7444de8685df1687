"""The task-specific β-VAE: shared model interface and the paper's small VAE (§2.3).

Inputs are averaged beats ``(B, leads, T)``; the convolutions see them as a one-channel image
``(B, 1, leads, T)`` with kernels ``(1, k)`` that run along time within each lead, so leads are
mixed only by the flatten-to-latent linear layers (small VAE) or an explicit lead-mixing
convolution (FactorECG-style VAE, :mod:`ecglatent.models.factor_vae`).

Normalisation is GroupNorm, not BatchNorm, because
  * fine-tuning uses balanced sampling, so batch statistics shift between pretraining and
    fine-tuning, and small balanced batches give noisy BatchNorm estimates;
  * fine-tune step 1 freezes the autoencoder: BatchNorm running statistics would still drift
    in train mode even with ``requires_grad=False``; GroupNorm has no running state;
  * GroupNorm is per sample, so train and eval modes compute the same function (only dropout
    and the latent sampling differ), and samples in a batch never influence each other.
"""

from __future__ import annotations

import math
import threading
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ecglatent.models.heads import PredictionHead

NEG_SLOPE = 0.01  # LeakyReLU slope; also the `a` of the He initialisation below.

SMALL_CHANNELS: tuple[int, ...] = (8, 16, 32, 64)  # strided encoder convs, then residuals
SMALL_N_RESIDUAL = 3
SMALL_KERNEL = 5
# Soft bound on log σ²: Adam's first steps on the wide flatten-to-latent layer (19,200 inputs at
# 12 × 400) can move log σ² by ~20 at lr 1e-3; exp() of that overflows KL and sampling to inf
# and the run dies on NaN. ±10 (σ from 0.007 to 150) never binds in a healthy run, and unlike
# a hard clamp it keeps a gradient that pulls an outlier back.
LOGVAR_BOUND = 10.0
# The conv bodies run in the plain NCHW layout. Channels-last (NHWC) convolutions alone are
# 1.2-1.5x faster here, but GroupNorm has to run in NCHW (torch's NHWC GroupNorm kernel on the
# CPU computes the variance as E[x²]−E[x]² and rounds ~40x worse), and the four layout copies
# per GroupNorm and step cost more than the faster convolutions save: the whole training step
# was 4-11 % faster in NCHW (benchmarks/training_throughput.py, torch 2.13, oneDNN 3.12).


class VAEOutput(NamedTuple):
    """Everything one forward pass produces (a NamedTuple so torch.compile/jit handle it)."""

    x_hat: Tensor  # (B, leads, T), same shape as the input
    mu: Tensor  # (B, L)
    logvar: Tensor  # (B, L)
    z: Tensor  # (B, L): a sample in train mode, mu in eval mode
    logit: Tensor | None  # (B,), or None without a head / without rr


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _groups(channels: int) -> int:
    """GroupNorm groups: about 4 channels per group, at most 8 groups, always a divisor."""
    return math.gcd(channels, max(1, min(8, channels // 4)))


def norm(channels: int) -> nn.GroupNorm:
    """The normalisation layer used throughout (see the module docstring for why GroupNorm)."""
    return nn.GroupNorm(_groups(channels), channels)


def act() -> nn.LeakyReLU:
    """The activation used throughout; leaky so that no unit can die during fine-tuning."""
    return nn.LeakyReLU(NEG_SLOPE)


_MASK_BITS = 16  # keep-probability resolution of the CPU dropout mask: 2^-16
_U64 = (1 << 64) - 1
_mask_rng = threading.local()  # one numpy PCG64 per thread, re-seeded for every mask


def _seeded_pcg64() -> np.random.PCG64:
    """This thread's PCG64, its 128-bit state and increment drawn from torch's global RNG.

    Setting the state directly costs ~10 µs; constructing a seeded PCG64 goes through
    SeedSequence's hashing and cost ~100 µs per mask inside a training step.
    """
    a, b, c, d = torch.randint(-(2**63), 2**63 - 1, (4,)).tolist()
    bitgen = getattr(_mask_rng, "bitgen", None)
    if bitgen is None:
        bitgen = _mask_rng.bitgen = np.random.PCG64(0)
    bitgen.state = {
        "bit_generator": "PCG64",
        "state": {"state": (a & _U64) << 64 | (b & _U64), "inc": (c & _U64) << 64 | (d & _U64) | 1},
        "has_uint32": 0,
        "uinteger": 0,
    }
    return bitgen


def dropout_mask_cpu(x: Tensor, p: float) -> Tensor:
    """A scaled dropout mask for ``x``: 1/(1−p) with probability 1−p, else 0, x's shape.

    Same distribution as ``nn.Dropout``'s (keep-probability rounded to 2^-16), drawn with
    numpy's PCG64 seeded from torch's global generator, so ``torch.manual_seed`` (and a
    checkpoint's saved RNG state) still fixes every mask. One stream on the calling thread, so
    the mask does not depend on the thread count. (Two chunks on two threads were slower inside
    a training step: the second competes with torch's own worker thread.) PCG64 gives 64
    random bits per draw, four 16-bit uniforms: a whole mask took ~1.1 ns per element here,
    against ~10 ns for one element of torch's CPU ``bernoulli_`` (a serial Mersenne Twister).
    """
    n = x.numel()
    raw = _seeded_pcg64().random_raw((n + 3) // 4).view(np.uint16)[:n]
    keep_below = round((1.0 - p) * (1 << _MASK_BITS))
    out = torch.empty(x.shape, dtype=torch.float32)  # torch's allocator: aligned, reused
    np.multiply(raw < keep_below, np.float32(1.0 / (1.0 - p)), out=out.view(-1).numpy())
    return out


class Dropout(nn.Dropout):
    """``nn.Dropout`` with a cheaper mask on the CPU (see :func:`dropout_mask_cpu`).

    torch's CPU dropout draws each element from a serial Mersenne Twister; on the small VAE's
    fourteen dropout layers that took about half of every training step. Elsewhere (CUDA's
    fused kernel, eval mode, p = 0 or 1, inside torch.compile, which generates its own fused
    mask) this is exactly ``F.dropout``. No parameters, so
    state_dicts are the same as with ``nn.Dropout``.
    """

    def forward(self, x: Tensor) -> Tensor:
        if (not self.training or not 0.0 < self.p < 1.0 or x.device.type != "cpu"
                or x.dtype != torch.float32 or torch.compiler.is_compiling() or not x.is_contiguous()):  # fmt: skip
            return F.dropout(x, self.p, self.training, self.inplace)
        return x * dropout_mask_cpu(x, self.p)


class ConvBlock(nn.Sequential):
    """Conv2d → GroupNorm → LeakyReLU → Dropout."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: tuple[int, int],
        stride: tuple[int, int] = (1, 1),
        padding: tuple[int, int] | None = None,
        dropout: float = 0.0,
    ) -> None:
        if padding is None:
            padding = (kernel[0] // 2, kernel[1] // 2)
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding),
            norm(c_out),
            act(),
            Dropout(dropout),
        )


class UpBlock(nn.Sequential):
    """ConvTranspose2d → GroupNorm → LeakyReLU → Dropout; doubles time when ``stride=(1, 2)``."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: tuple[int, int],
        stride: tuple[int, int] = (1, 2),
        dropout: float = 0.0,
    ) -> None:
        super().__init__(
            transposed_conv(c_in, c_out, kernel, stride),
            norm(c_out),
            act(),
            Dropout(dropout),
        )


def transposed_conv(
    c_in: int, c_out: int, kernel: tuple[int, int], stride: tuple[int, int]
) -> nn.ConvTranspose2d:
    """Transposed conv whose output is exactly ``stride ×`` its input along each axis.

    With odd kernels, padding k//2 and output_padding s−1 give L_out = s·L_in; a kernel
    ``(n_leads, 1)`` with stride 1 and no padding instead grows a height-1 map to n_leads rows.
    """
    padding = tuple(k // 2 if s > 1 else 0 for k, s in zip(kernel, stride, strict=True))
    output_padding = tuple(s - 1 for s in stride)
    return nn.ConvTranspose2d(
        c_in, c_out, kernel, stride=stride, padding=padding, output_padding=output_padding
    )


class ResBlock(nn.Module):
    """Residual layer ``act(x + F(x))`` with F = ``n_convs`` × (conv, GroupNorm), shape-preserving."""

    def __init__(
        self, channels: int, kernel: tuple[int, int], n_convs: int = 1, dropout: float = 0.0
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(n_convs):
            layers += [
                nn.Conv2d(channels, channels, kernel, padding=(kernel[0] // 2, kernel[1] // 2)),
                norm(channels),
            ]
            if i < n_convs - 1:
                layers.append(act())
        self.body = nn.Sequential(*layers)
        self.act = act()
        self.drop = Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.act(x + self.body(x)))


def fit_length(x: Tensor, n_samples: int) -> Tensor:
    """Crop or zero-pad the last axis to exactly ``n_samples`` (decoders overshoot odd T)."""
    t = x.shape[-1]
    if t > n_samples:
        return x[..., :n_samples]
    if t < n_samples:
        return F.pad(x, (0, n_samples - t))
    return x


class LatentEncoder(nn.Module):
    """Conv body → flatten → two linear layers giving μ and log σ² (each of size L).

    log σ² is soft-bounded to ±``logvar_bound`` (``b·tanh(v/b)``; None disables it).
    """

    def __init__(
        self,
        body: nn.Module,
        feat_shape: tuple[int, ...],
        latent_dim: int,
        logvar_bound: float | None = LOGVAR_BOUND,
    ) -> None:
        super().__init__()
        self.body = body
        self.feat_shape = feat_shape
        self.logvar_bound = logvar_bound
        n_feat = math.prod(feat_shape)
        self.fc_mu = nn.Linear(n_feat, latent_dim)
        self.fc_logvar = nn.Linear(n_feat, latent_dim)
        for fc in (self.fc_mu, self.fc_logvar):
            # No activation follows, hence the "linear" gain: μ and log σ² start at O(1).
            nn.init.kaiming_normal_(fc.weight, nonlinearity="linear")
            nn.init.zeros_(fc.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.body(x.unsqueeze(1)).flatten(1)
        logvar = self.fc_logvar(h)
        if self.logvar_bound is not None:
            logvar = self.logvar_bound * torch.tanh(logvar / self.logvar_bound)
        return self.fc_mu(h), logvar


class LatentDecoder(nn.Module):
    """Linear → LeakyReLU → unflatten → conv body → (B, leads, T) cropped/padded to T."""

    def __init__(
        self, body: nn.Module, feat_shape: tuple[int, ...], latent_dim: int, n_samples: int
    ) -> None:
        super().__init__()
        self.body = body
        self.feat_shape = feat_shape
        self.n_samples = n_samples
        self.fc = nn.Linear(latent_dim, math.prod(feat_shape))
        self.act = act()
        nn.init.kaiming_normal_(self.fc.weight, a=NEG_SLOPE, nonlinearity="leaky_relu")
        nn.init.zeros_(self.fc.bias)

    def forward(self, z: Tensor) -> Tensor:
        h = self.act(self.fc(z)).view(z.shape[0], *self.feat_shape)
        return fit_length(self.body(h).squeeze(1), self.n_samples)


def he_init_convs(module: nn.Module) -> None:
    """He (kaiming-normal) init of every conv in ``module``, zero biases.

    Transposed convs use ``fan_out`` mode, which for them counts in_channels × kernel, the
    analogue of a forward conv's fan-in. GroupNorm follows nearly every conv, so the exact
    gain matters most for the plain output layer.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, a=NEG_SLOPE, mode="fan_in", nonlinearity="leaky_relu")
        elif isinstance(m, nn.ConvTranspose2d):
            nn.init.kaiming_normal_(
                m.weight, a=NEG_SLOPE, mode="fan_out", nonlinearity="leaky_relu"
            )
        else:
            continue
        if m.bias is not None:
            nn.init.zeros_(m.bias)


class TaskVAE(nn.Module):
    """β-VAE with an optional single-linear-layer prediction head on the latent means.

    ``latent_pred`` selects the variant: ``L`` = task specific, ``0 < latent_pred < L`` =
    split task (only the first ``latent_pred`` latents feed the head), ``None``/``0`` = task
    naive (no head; the logit is None). Built by :func:`ecglatent.models.build_vae`; the conv
    bodies come from the architecture modules, the latent layers and the head live here.
    """

    def __init__(
        self,
        encoder_body: nn.Module,
        decoder_body: nn.Module,
        n_leads: int,
        n_samples: int,
        latent_dim: int,
        latent_pred: int | None = None,
        n_extra: int = 2,
        arch: str = "",
        logvar_bound: float | None = LOGVAR_BOUND,
    ) -> None:
        super().__init__()
        for name, value in (("n_leads", n_leads), ("n_samples", n_samples)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        latent_pred = latent_pred or None
        if latent_pred is not None and not 1 <= latent_pred <= latent_dim:
            raise ValueError(
                f"latent_pred must be None/0 or in 1..latent_dim={latent_dim}, got {latent_pred}"
            )
        self.arch = arch
        self.n_leads = n_leads
        self.n_samples = n_samples
        self.latent_dim = latent_dim
        self.latent_pred = latent_pred
        self.n_extra = n_extra
        self._frozen = False
        self.build_config: dict[str, object] = {}  # filled by build_vae, for checkpoints

        he_init_convs(encoder_body)
        he_init_convs(decoder_body)
        # The flatten size depends on (leads, T) and the body; measure it rather than re-derive.
        with torch.no_grad():
            feat = encoder_body(torch.zeros(1, 1, n_leads, n_samples))
            feat_shape = tuple(feat.shape[1:])
            out = decoder_body(torch.zeros(1, *feat_shape))
        if out.shape[1:3] != (1, n_leads):
            raise ValueError(
                f"decoder body gives {tuple(out.shape)}, expected (1, 1, {n_leads}, ~{n_samples})"
            )
        self.encoder = LatentEncoder(encoder_body, feat_shape, latent_dim, logvar_bound)
        self.decoder = LatentDecoder(decoder_body, feat_shape, latent_dim, n_samples)
        self.head = PredictionHead(latent_pred, n_extra) if latent_pred else None

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(mu, logvar)``, each (B, L), for beats ``x`` of shape (B, leads, T)."""
        if x.dim() != 3 or x.shape[1:] != (self.n_leads, self.n_samples):
            raise ValueError(
                f"expected (B, {self.n_leads}, {self.n_samples}) input, got {tuple(x.shape)}"
            )
        return self.encoder(x)

    def reparameterize(self, mu: Tensor, logvar: Tensor) -> Tensor:
        """``mu + σ·ε`` with ε from torch's global RNG in train mode; exactly ``mu`` in eval."""
        if not self.training:
            return mu
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def decode(self, z: Tensor) -> Tensor:
        """Reconstruction (B, leads, T) from latents ``z`` (B, L) (also for factor traversals)."""
        return self.decoder(z)

    def predict_logit(self, mu: Tensor, rr: Tensor | None) -> Tensor | None:
        """Head logit (B,) from the first ``latent_pred`` means and ``rr`` (B, n_extra).

        None for a task-naive model. Logits only: apply the sigmoid outside, never twice.
        """
        if self.head is None:
            return None
        return self.head(mu, rr)

    def forward(self, x: Tensor, rr: Tensor | None = None) -> VAEOutput:
        """Encode, sample, decode and (if there is a head and ``rr`` is given) predict.

        Without ``rr`` the head is skipped (logit None) unless the head takes no extra
        features; :func:`ecglatent.training.losses.vae_loss` refuses labels without a logit.
        """
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        x_hat = self.decode(z)
        logit = None
        if self.head is not None and (rr is not None or self.n_extra == 0):
            logit = self.head(mu, rr)
        return VAEOutput(x_hat=x_hat, mu=mu, logvar=logvar, z=z, logit=logit)

    def freeze_autoencoder(self, flag: bool = True) -> None:
        """Freeze (``True``) or unfreeze the encoder and decoder; the head stays trainable.

        Fine-tune step 1 trains only the head. Frozen parts are also kept in eval mode (dropout
        off, see :meth:`train`), so the head learns on the same deterministic μ it will see.
        The latent sampling is unchanged, so the reconstruction term still reads as in training.
        Build the optimiser over ``requires_grad`` parameters, or use ``zero_grad(set_to_none=
        True)``, so that weight decay never touches frozen weights.
        """
        self._frozen = flag
        for part in (self.encoder, self.decoder):
            for p in part.parameters():
                p.requires_grad_(not flag)
        self.train(self.training)

    @property
    def autoencoder_frozen(self) -> bool:
        """Whether :meth:`freeze_autoencoder` is in effect."""
        return self._frozen

    def train(self, mode: bool = True) -> TaskVAE:
        """As ``nn.Module.train``, but a frozen encoder/decoder stays in eval mode."""
        super().train(mode)
        if self._frozen:
            self.encoder.eval()
            self.decoder.eval()
        return self


def small_bodies(
    n_leads: int, dropout: float = 0.0, kernel: int = SMALL_KERNEL
) -> tuple[nn.Sequential, nn.Sequential]:
    """Encoder and decoder conv bodies of the paper's small VAE.

    Encoder: four (1, k) convs with stride (1, 2), channels 1→8→16→32→64, then three residual
    64-channel layers. Decoder (mirror): three residual 64-channel layers, then four (1, k)
    transposed convs with stride (1, 2), channels 64→32→16→8→1; the last one is linear (no
    norm, activation or dropout) because ECG amplitudes are signed and unbounded.
    ``n_leads`` is unused (the kernels never span leads) but kept for a uniform signature.
    """
    del n_leads
    k = (1, kernel)
    down = (1, 2)
    chans = (1, *SMALL_CHANNELS)
    enc: list[nn.Module] = [
        ConvBlock(c_in, c_out, k, stride=down, dropout=dropout)
        for c_in, c_out in zip(chans[:-1], chans[1:], strict=True)
    ]
    enc += [ResBlock(chans[-1], k, dropout=dropout) for _ in range(SMALL_N_RESIDUAL)]
    dec: list[nn.Module] = [
        ResBlock(chans[-1], k, dropout=dropout) for _ in range(SMALL_N_RESIDUAL)
    ]
    rev = chans[::-1]  # 64, 32, 16, 8, 1
    dec += [
        UpBlock(c_in, c_out, k, stride=down, dropout=dropout)
        for c_in, c_out in zip(rev[:-2], rev[1:-1], strict=True)
    ]
    dec.append(transposed_conv(rev[-2], rev[-1], k, down))
    return nn.Sequential(*enc), nn.Sequential(*dec)


def build_small_vae(
    n_leads: int,
    n_samples: int,
    latent_dim: int,
    latent_pred: int | None = None,
    dropout: float = 0.0,
    n_extra: int = 2,
    kernel: int = SMALL_KERNEL,
    logvar_bound: float | None = LOGVAR_BOUND,
) -> TaskVAE:
    """The paper's small VAE (~300k parameters at L = 2 on 12 × 400 inputs)."""
    enc, dec = small_bodies(n_leads, dropout=dropout, kernel=kernel)
    return TaskVAE(
        enc,
        dec,
        n_leads,
        n_samples,
        latent_dim,
        latent_pred,
        n_extra,
        arch="small",
        logvar_bound=logvar_bound,
    )

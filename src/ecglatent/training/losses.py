"""Loss of the task-specific β-VAE: reconstruction + β·KL + γ·BCE (paper §2.4).

Conventions (all terms are per-sample quantities averaged over the batch, so they do not
change with the batch size and β, γ keep their meaning):
  * reconstruction: squared error summed over leads × time for each sample, divided by the
    number of leads, then averaged over the batch: the per-lead summed error, as in the paper's
    reference code (which divides the summed error by its 12 leads), so that the paper's β = 4
    and γ = 500 keep their weight. It treats a 2-lead × 288 MIT-BIH beat and a 12-lead × 400
    PTB-XL beat alike: each term is one lead's summed error, whatever the number of leads.
    Per-element MSE (= reconstruction / T) is reported separately for tables such as the
    paper's;
  * KL: KL(N(μ, σ²) ‖ N(0, I)) summed over latents, averaged over the batch;
  * BCE: binary cross-entropy on logits, averaged over the *labelled* samples only (labels may
    be NaN for unlabelled samples); 0 when no sample is labelled.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ecglatent.models.small_vae import VAEOutput


@dataclass(frozen=True)
class LossTerms:
    """The total loss and each of its terms (scalar tensors; only ``total`` needs backward).

    ``recon``, ``kl`` and ``bce`` keep their graphs (they make up ``total``); ``mse`` and
    ``kl_per_dim`` are detached, for reporting only.
    """

    total: Tensor
    recon: Tensor
    kl: Tensor
    bce: Tensor
    mse: Tensor
    kl_per_dim: Tensor  # (L,), batch mean of each latent's KL: low values = inactive latents
    n_labelled: int

    def as_floats(self) -> dict[str, float]:
        """Scalar terms as Python floats, for logging."""
        return {
            "loss": float(self.total.detach()),
            "recon": float(self.recon.detach()),
            "kl": float(self.kl.detach()),
            "bce": float(self.bce.detach()),
            "mse": float(self.mse),
        }


def _check_same_shape(x_hat: Tensor, x: Tensor) -> None:
    # Broadcasting (B, 1, T) against (B, leads, T) would silently give a wrong loss.
    if x_hat.shape != x.shape:
        raise ValueError(f"x_hat {tuple(x_hat.shape)} and x {tuple(x.shape)} differ in shape")


def reconstruction_loss(x_hat: Tensor, x: Tensor) -> Tensor:
    """Squared error summed over leads × time and divided by the number of leads (axis 1),
    averaged over the batch: the paper's reference reduction (summed error / 12 leads)."""
    _check_same_shape(x_hat, x)
    n_leads = x.shape[1] if x.dim() > 2 else 1
    return (x_hat - x).pow(2).flatten(1).sum(dim=1).mean() / n_leads


def mse_per_element(x_hat: Tensor, x: Tensor) -> Tensor:
    """Mean squared error over every element (batch × leads × time), for reporting."""
    _check_same_shape(x_hat, x)
    return (x_hat - x).pow(2).mean()


def kl_per_sample(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) per sample, (B,): −½ Σ_j (1 + log σ_j² − μ_j² − σ_j²)."""
    return -0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL to the standard normal, summed over latents, averaged over the batch."""
    return kl_per_sample(mu, logvar).mean()


def masked_bce_with_logits(
    logit: Tensor, y: Tensor, pos_weight: float | Tensor | None = None
) -> tuple[Tensor, int]:
    """BCE on logits averaged over samples whose label is not NaN; ``(loss, n_labelled)``.

    Unlabelled samples are dropped by indexing before the loss, never by multiplying by a
    mask (NaN·0 is NaN, in the value and in the gradient). With no labelled sample the loss is
    a constant 0 with no path to ``logit``, so backward never sees NaN. ``pos_weight``
    multiplies the positive-class term; the mean still divides by the number of samples.
    """
    if y.numel() != logit.numel():
        raise ValueError(f"{y.numel()} labels for {logit.numel()} logits")
    y = y.reshape(logit.shape).to(dtype=logit.dtype, device=logit.device)
    labelled = ~torch.isnan(y)
    n_labelled = int(labelled.sum())
    if n_labelled == 0:
        return logit.new_zeros(()), 0
    pw = None
    if pos_weight is not None:
        pw = torch.as_tensor(pos_weight, dtype=logit.dtype, device=logit.device)
    loss = F.binary_cross_entropy_with_logits(logit[labelled], y[labelled], pos_weight=pw)
    return loss, n_labelled


def vae_loss(
    out: VAEOutput,
    x: Tensor,
    y: Tensor | None = None,
    *,
    beta: float,
    gamma: float,
    pos_weight: float | Tensor | None = None,
) -> LossTerms:
    """``total = recon + beta·KL + gamma·BCE`` for one forward pass ``out`` of input ``x``.

    ``y``: (B,) labels in {0, 1}, NaN where unlabelled, or None (pretraining: BCE = 0).
    Raises ValueError when labels are given with ``gamma != 0`` but ``out.logit`` is None (a
    task-naive model, or a forward pass without ``rr``) rather than silently ignoring them.
    See the module docstring for the reduction conventions.
    """
    recon = reconstruction_loss(out.x_hat, x)
    per_dim = -0.5 * (1.0 + out.logvar - out.mu.pow(2) - out.logvar.exp())
    kl = per_dim.sum(dim=1).mean()
    n_labelled = 0
    if y is None:
        bce = recon.new_zeros(())
    elif out.logit is None:
        if gamma != 0:
            raise ValueError(
                "labels given with gamma != 0 but the model produced no logit "
                "(task-naive model, or forward() called without rr)"
            )
        bce = recon.new_zeros(())
    else:
        bce, n_labelled = masked_bce_with_logits(out.logit, y, pos_weight)
    total = recon + beta * kl + gamma * bce
    return LossTerms(
        total=total,
        recon=recon,
        kl=kl,
        bce=bce,
        mse=mse_per_element(out.x_hat.detach(), x),
        kl_per_dim=per_dim.detach().mean(dim=0),
        n_labelled=n_labelled,
    )

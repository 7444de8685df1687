"""Training pieces of the task-specific β-VAE."""

from ecglatent.training.losses import (
    LossTerms,
    kl_divergence,
    kl_per_sample,
    masked_bce_with_logits,
    mse_per_element,
    reconstruction_loss,
    vae_loss,
)

__all__ = [
    "LossTerms",
    "kl_divergence",
    "kl_per_sample",
    "masked_bce_with_logits",
    "mse_per_element",
    "reconstruction_loss",
    "vae_loss",
]

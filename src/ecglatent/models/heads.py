"""The single linear prediction head of the task-specific β-VAE (paper §2.3)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class PredictionHead(nn.Module):
    """One linear layer: first ``latent_pred`` latent means + ``n_extra`` features → 1 logit.

    Only one layer on purpose: a deeper head would make the prediction depend on weighted
    combinations of latents, and the per-latent factor traversals would stop being readable.
    The output is a logit; the loss applies the sigmoid (BCEWithLogits), nothing here does.
    The extra features (RR μ and σ) should be standardised by the caller: the head is linear,
    so their scale sets how fast their weights learn relative to the latents (which are ~N(0, 1)).
    """

    def __init__(self, latent_pred: int, n_extra: int = 2) -> None:
        super().__init__()
        if latent_pred < 1:
            raise ValueError(f"latent_pred must be >= 1 for a head, got {latent_pred}")
        if n_extra < 0:
            raise ValueError(f"n_extra must be >= 0, got {n_extra}")
        self.latent_pred = latent_pred
        self.n_extra = n_extra
        self.linear = nn.Linear(latent_pred + n_extra, 1)
        # Linear output, so the "linear" gain: logits start near 0 (p ≈ 0.5) at init.
        nn.init.kaiming_normal_(self.linear.weight, nonlinearity="linear")
        nn.init.zeros_(self.linear.bias)

    def forward(self, mu: Tensor, extra: Tensor | None = None) -> Tensor:
        """Logits (B,) from ``mu`` (B, L ≥ latent_pred) and ``extra`` (B, n_extra)."""
        if mu.dim() != 2 or mu.shape[1] < self.latent_pred:
            raise ValueError(
                f"mu must be (B, L) with L >= {self.latent_pred}, got {tuple(mu.shape)}"
            )
        feats = mu[:, : self.latent_pred]
        if self.n_extra:
            if extra is None:
                raise ValueError(f"the head needs {self.n_extra} extra features (RR μ, σ)")
            if extra.shape != (mu.shape[0], self.n_extra):
                raise ValueError(
                    f"extra must be ({mu.shape[0]}, {self.n_extra}), got {tuple(extra.shape)}"
                )
            feats = torch.cat([feats, extra.to(feats.dtype)], dim=1)
        return self.linear(feats).squeeze(-1)

"""Build a :class:`~ecglatent.models.small_vae.TaskVAE` by architecture name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ecglatent.models.factor_vae import build_factor_vae
from ecglatent.models.small_vae import TaskVAE, build_small_vae

ARCHITECTURES: dict[str, Callable[..., TaskVAE]] = {
    "small": build_small_vae,
    "factorecg": build_factor_vae,
}


def build_vae(
    arch: str,
    n_leads: int,
    n_samples: int,
    latent_dim: int,
    latent_pred: int | None = None,
    dropout: float = 0.0,
    *,
    n_extra: int = 2,
    **arch_kwargs: Any,
) -> TaskVAE:
    """A fresh, He-initialised VAE of architecture ``arch`` ("small" or "factorecg").

    ``latent_pred``: None/0 = task naive (no head), ``latent_dim`` = task specific, in between =
    split task. ``n_extra`` extra head inputs (RR μ and σ by default). ``arch_kwargs`` go to the
    architecture's builder (e.g. ``kernel`` for "small", ``widths``/``blocks`` for "factorecg").
    The build arguments are kept in ``model.build_config`` so a checkpoint can be rebuilt.
    """
    key = arch.strip().lower()
    if key not in ARCHITECTURES:
        raise ValueError(
            f"unknown VAE architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}"
        )
    model = ARCHITECTURES[key](
        n_leads=n_leads,
        n_samples=n_samples,
        latent_dim=latent_dim,
        latent_pred=latent_pred,
        dropout=dropout,
        n_extra=n_extra,
        **arch_kwargs,
    )
    model.build_config = {
        "arch": key,
        "n_leads": n_leads,
        "n_samples": n_samples,
        "latent_dim": latent_dim,
        "latent_pred": latent_pred or None,
        "dropout": dropout,
        "n_extra": n_extra,
        **arch_kwargs,
    }
    return model


def rebuild_vae(build_config: dict[str, Any]) -> TaskVAE:
    """A fresh model with the architecture recorded in ``model.build_config`` (weights not loaded)."""
    cfg = dict(build_config)
    return build_vae(
        cfg.pop("arch"),
        cfg.pop("n_leads"),
        cfg.pop("n_samples"),
        cfg.pop("latent_dim"),
        cfg.pop("latent_pred"),
        cfg.pop("dropout"),
        **cfg,
    )

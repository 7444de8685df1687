"""Torch models of the task-specific β-VAE: small VAE, FactorECG-style VAE, prediction head.

Imports only torch, so it can be used without the tracking stack (MLflow, DVC, Optuna).
"""

from ecglatent.models.factor_vae import build_factor_vae
from ecglatent.models.heads import PredictionHead
from ecglatent.models.registry import ARCHITECTURES, build_vae
from ecglatent.models.small_vae import TaskVAE, VAEOutput, build_small_vae, count_parameters

__all__ = [
    "ARCHITECTURES",
    "PredictionHead",
    "TaskVAE",
    "VAEOutput",
    "build_factor_vae",
    "build_small_vae",
    "build_vae",
    "count_parameters",
]

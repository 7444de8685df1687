"""Model registry: names derived from params, and the `champion` alias rule."""

from __future__ import annotations

import logging

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

log = logging.getLogger(__name__)
CHAMPION = "champion"
SCORE_TAG = "test_auroc"


def model_name(prefix: str, dataset: str, task: str) -> str:
    """e.g. ``ecg-task-vae-ptbxl-mi`` or ``ecg-task-vae-mitdb-v``."""
    return f"{prefix}-{dataset}-{task}".lower()


def register(
    model_uri: str, name: str, score: float, tags: dict[str, str] | None = None
) -> tuple[str, bool]:
    """Register ``model_uri`` under ``name``; move ``champion`` to it only if it scores higher.

    Returns (version, became_champion). The score is kept as a version tag so later
    comparisons need no access to the old run.
    """
    client = MlflowClient()
    mv = mlflow.register_model(model_uri, name)
    client.set_model_version_tag(name, mv.version, SCORE_TAG, f"{score:.6f}")
    for k, v in (tags or {}).items():
        client.set_model_version_tag(name, mv.version, k, v)
    current = champion_score(name)
    if current is None or score > current:
        client.set_registered_model_alias(name, CHAMPION, mv.version)
        log.info("registry: %s v%s is the new %s (test AUROC %.4f > %s)", name, mv.version,
                 CHAMPION, score, "none" if current is None else f"{current:.4f}")  # fmt: skip
        return str(mv.version), True
    log.info("registry: %s v%s (test AUROC %.4f) does not beat the champion (%.4f)",
             name, mv.version, score, current)  # fmt: skip
    return str(mv.version), False


def champion_score(name: str) -> float | None:
    """Test AUROC of the current champion, or None when there is none."""
    client = MlflowClient()
    try:
        mv = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    value = mv.tags.get(SCORE_TAG)
    return float(value) if value is not None else None

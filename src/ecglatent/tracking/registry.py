"""Model registry: names derived from params, and the `champion` alias rule.

The champion moves on a validation score only (issue 12, "evidence, not a draw"): a version's
test score may be recorded as a tag for the reader, but nothing that saw test labels may decide
the alias. :func:`register` refuses score names that say "test"; :func:`register_vae` scores a
β-VAE probe by its inner patient-grouped cross-validation AUROC on train+val.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

if TYPE_CHECKING:
    from ecglatent.evaluation.probes import FeatureEvaluation

log = logging.getLogger(__name__)
CHAMPION = "champion"
SCORE_TAG = "val_cv_auroc"  # the β-VAE models' score; other models name their own
TEST_TAG = "test_auroc"  # reported beside it, never compared
SCORE_METRIC_TAG = "score_metric"  # names the tag that holds a version's score


def model_name(prefix: str, dataset: str, task: str) -> str:
    """e.g. ``ecg-task-vae-ptbxl-mi`` or ``ecg-task-vae-mitdb-v``."""
    return f"{prefix}-{dataset}-{task}".lower()


def register(
    model_uri: str,
    name: str,
    score: float,
    tags: dict[str, str] | None = None,
    score_name: str = SCORE_TAG,
    description: str | None = None,
) -> tuple[str, bool]:
    """Register ``model_uri`` under ``name``; move ``champion`` to it only if it scores higher.

    The score is kept as the version tag ``score_name`` (``score_metric`` says which tag that
    is), so later comparisons need no access to the old run. Returns (version,
    became_champion). ``score`` must come from validation data: a ``score_name`` that starts
    with "test" is refused.
    """
    if score_name.lower().startswith("test"):
        raise ValueError(
            f"score_name {score_name!r}: the champion alias may move on validation scores only; "
            "record test metrics as tags instead"
        )
    client = MlflowClient()
    describe(client, name, description or default_description(name, score_name))
    mv = mlflow.register_model(model_uri, name)
    client.set_model_version_tag(name, mv.version, score_name, f"{score:.6f}")
    client.set_model_version_tag(name, mv.version, SCORE_METRIC_TAG, score_name)
    for k, v in (tags or {}).items():
        client.set_model_version_tag(name, mv.version, k, v)
    current = champion_score(name, score_name)
    if current is None or score > current:
        client.set_registered_model_alias(name, CHAMPION, mv.version)
        log.info("registry: %s v%s is the new %s (%s %.4f > %s)", name, mv.version, CHAMPION,
                 score_name, score, "none" if current is None else f"{current:.4f}")  # fmt: skip
        return str(mv.version), True
    log.info("registry: %s v%s (%s %.4f) does not beat the champion (%.4f)", name, mv.version,
             score_name, score, current)  # fmt: skip
    return str(mv.version), False


def default_description(name: str, score_name: str = SCORE_TAG) -> str:
    """What the registry page says about ``name`` when its caller gives no description."""
    return (
        f"{name}: an ecglatent model. Each version carries its "
        f"validation score in the version tag `{score_name}` (a test score, where recorded, is "
        f"only a tag); the `{CHAMPION}` alias points at the "
        f"best-scoring version. Serve it with `mlflow models serve -m "
        f"models:/{name}@{CHAMPION} --env-manager local`."
    )


def describe(client: MlflowClient, name: str, description: str) -> None:
    """Create registered model ``name`` with ``description``, or add it when it has none
    (a description someone wrote in the UI is kept)."""
    try:
        current = client.get_registered_model(name)
    except MlflowException:
        try:
            client.create_registered_model(name, description=description)
            return
        except MlflowException:  # another process created it meanwhile
            current = client.get_registered_model(name)
    if not current.description:
        client.update_registered_model(name, description=description)


def champion_score(name: str, score_name: str = SCORE_TAG) -> float | None:
    """The current champion's ``score_name`` tag, or None when there is no champion (or it was
    never scored on that metric, so any scored version may replace it)."""
    client = MlflowClient()
    try:
        mv = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    value = mv.tags.get(score_name)
    return float(value) if value is not None else None


def register_vae(
    model_uri: str,
    name: str,
    ev: FeatureEvaluation,
    tags: dict[str, str] | None = None,
    validation_auroc: float | None = None,
) -> tuple[str, bool]:
    """Register a β-VAE + probe; the champion rule reads validation AUROCs only.

    The validation score is the chosen probe's inner patient-grouped CV AUROC on train+val
    (:attr:`~ecglatent.evaluation.probes.FeatureEvaluation.validation_auroc`), or
    ``validation_auroc`` when given (the evaluate stage passes the mean of that score over a
    model's replicates); the test AUROC of ``ev`` is kept as the ``test_auroc`` tag so the
    registry shows it, and takes no part in the rule.
    """
    reported = {TEST_TAG: f"{ev.best.auroc.auc:.6f}", **(tags or {})}
    score = ev.validation_auroc if validation_auroc is None else validation_auroc
    return register(model_uri, name, float(score), reported, score_name=SCORE_TAG)

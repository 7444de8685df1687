"""The champion rule on a real MLflow registry (SQLite store in a temp dir)."""

from __future__ import annotations

import mlflow
import pytest
from mlflow import MlflowClient

from ecglatent.tracking import registry

NAME = "test-registry-model"


class _Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


@pytest.fixture
def model_uri(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("registry-test")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=_Constant())
    return info.model_uri


def _champion() -> str:
    return str(MlflowClient().get_model_version_by_alias(NAME, registry.CHAMPION).version)


def test_champion_moves_only_to_a_higher_score_under_its_own_metric(model_uri):
    assert registry.register(model_uri, NAME, 0.70, {"config": "a"}, score_name="val_f1") == (
        "1",
        True,
    )
    mv = MlflowClient().get_model_version(NAME, "1")
    assert mv.tags["val_f1"] == "0.700000" and mv.tags["score_metric"] == "val_f1"
    assert mv.tags["config"] == "a" and registry.SCORE_TAG not in mv.tags
    assert registry.register(model_uri, NAME, 0.60, score_name="val_f1") == ("2", False)
    assert registry.register(model_uri, NAME, 0.70, score_name="val_f1") == ("3", False)
    assert _champion() == "1"
    assert registry.register(model_uri, NAME, 0.80, score_name="val_f1") == ("4", True)
    assert _champion() == "4"
    assert registry.champion_score(NAME, "val_f1") == pytest.approx(0.8)
    # the champion was never scored on another metric: nothing to compare it with
    assert registry.champion_score(NAME, "test_auroc") is None


def test_default_score_is_test_auroc(model_uri):
    registry.register(model_uri, NAME, 0.9)
    mv = MlflowClient().get_model_version(NAME, "1")
    assert mv.tags["test_auroc"] == "0.900000" and mv.tags["score_metric"] == "test_auroc"
    assert registry.champion_score(NAME) == pytest.approx(0.9)


def test_no_champion_yet(model_uri):
    assert registry.champion_score("never-registered") is None

"""The champion rule on a real MLflow registry (SQLite store in a temp dir)."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from ecglatent.evaluation.probes import evaluate_features
from ecglatent.tracking import registry
from tests.conftest import empty_mlflow_store

NAME = "test-registry-model"


class _Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


@pytest.fixture
def model_uri(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{empty_mlflow_store(tmp_path / 'mlflow.db')}")
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


def test_default_score_is_the_validation_auroc_and_test_scores_are_refused(model_uri):
    registry.register(model_uri, NAME, 0.9)
    mv = MlflowClient().get_model_version(NAME, "1")
    assert mv.tags["val_cv_auroc"] == "0.900000" and mv.tags["score_metric"] == "val_cv_auroc"
    assert registry.champion_score(NAME) == pytest.approx(0.9)
    for name in ("test_auroc", "Test_F1"):
        with pytest.raises(ValueError, match="validation scores only"):
            registry.register(model_uri, NAME, 0.99, score_name=name)
    assert len(MlflowClient().search_model_versions(f"name='{NAME}'")) == 1


def test_no_champion_yet(model_uri):
    assert registry.champion_score("never-registered") is None


# ------------------------------------------------------------------------------------------
# The β-VAE champion rule never reads test labels (issue 12, acceptance 1).

CS = (0.01, 1.0, 100.0)
# Validation strength of each candidate model's features, in registration order, and how
# well it ranks the test rows. Validation and test disagree on purpose (model 2 validates
# worse than model 1 but tests better), so a rule that read test AUROCs would decide
# differently from the validation rule, and flipping the test labels reverses test order.
CANDIDATES = [(0.6, 0.5), (1.6, 0.8), (1.0, 2.5), (2.4, 1.2), (0.8, 3.0)]


def _candidates(test_labels: str, seed: int = 0):
    """Real probes (:func:`evaluate_features`) for each candidate; the test labels are the
    true ones, flipped, or permuted. Train+val rows come in groups of 4 (patients)."""
    rng = np.random.default_rng(seed)
    n_dev, n_te = 160, 100
    y_dev = (rng.random(n_dev) < 0.3).astype(int)
    y_te = (rng.random(n_te) < 0.3).astype(int)
    groups = np.arange(n_dev) // 4
    shown = {"true": y_te, "flipped": 1 - y_te, "permuted": rng.permutation(y_te)}[test_labels]
    evs = []
    for k, (val_strength, test_strength) in enumerate(CANDIDATES):
        r = np.random.default_rng(100 + k)
        X_dev = r.normal(size=(n_dev, 3)) + val_strength * y_dev[:, None] * [1, 0.5, 0]
        X_te = r.normal(size=(n_te, 3)) + test_strength * y_te[:, None] * [1, 0.5, 0]
        evs.append(evaluate_features(X_dev, y_dev, X_te, shown, seed=0, Cs=CS, groups=groups))
    return evs


@pytest.fixture(scope="module")
def one_store(tmp_path_factory) -> tuple[str, str]:
    """One real store and one logged model for every rule and label variant (each variant
    registers under its own name): creating SQLite stores is the slow part."""
    uri = f"sqlite:///{empty_mlflow_store(tmp_path_factory.mktemp('champion') / 'mlflow.db')}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("champion-rule")
    with mlflow.start_run():
        return uri, mlflow.pyfunc.log_model(name="model", python_model=_Constant()).model_uri


def _decisions(store: tuple[str, str], name: str, evs, rule) -> tuple[list, str, list]:
    mlflow.set_tracking_uri(store[0])
    out = [rule(store[1], name, ev) for ev in evs]
    client = MlflowClient()
    champion = str(client.get_model_version_by_alias(name, registry.CHAMPION).version)
    tests = [client.get_model_version(name, v).tags.get("test_auroc") for v, _ in out]
    return out, champion, tests


def _vae_rule(uri, name, ev):
    return registry.register_vae(uri, name, ev, {"model": "m"})


def _test_auroc_rule(uri, name, ev):  # the rule before issue 12: the test AUROC decides
    return registry.register(uri, name, ev.best.auroc.auc, score_name="auroc")


def test_champion_decisions_do_not_depend_on_test_labels(one_store):
    runs = {lab: _candidates(lab) for lab in ("true", "flipped", "permuted")}
    true, champ, tests = _decisions(one_store, "vae-true", runs["true"], _vae_rule)
    for lab in ("flipped", "permuted"):
        other, other_champ, other_tests = _decisions(one_store, f"vae-{lab}", runs[lab],
                                                     _vae_rule)  # fmt: skip
        assert other == true and other_champ == champ
        assert other_tests != tests  # the test labels did change what was measured...
    # ...and the test AUROC is reported on every version without deciding anything.
    assert all(t is not None for t in tests)
    # The champion is the best validation score; a better validation score moved it each time.
    vals = [ev.validation_auroc for ev in runs["true"]]
    assert champ == str(int(np.argmax(vals)) + 1)
    running = np.maximum.accumulate(vals)
    assert [moved for _, moved in true] == [True] + list(np.diff(running) > 0)
    assert [moved for _, moved in true] == [True, True, False, True, False]
    # Contrast: the pre-issue-12 rule (test AUROC) picks differently once test labels flip.
    t_true = _decisions(one_store, "old-true", runs["true"], _test_auroc_rule)
    t_flip = _decisions(one_store, "old-flipped", runs["flipped"], _test_auroc_rule)
    assert t_true[1] != t_flip[1]

"""Which MLflow store a run goes to: params, or the user's $MLFLOW_TRACKING_URI."""

from __future__ import annotations

import mlflow

from ecglatent.config import TrackingConfig
from ecglatent.tracking import runs


def _cfg(tmp_path, name: str) -> TrackingConfig:
    return TrackingConfig(tracking_uri=f"sqlite:///{tmp_path / name}",
                          artifact_root=str(tmp_path / "artifacts"))  # fmt: skip


def test_second_configuration_in_one_process_uses_its_own_store(tmp_path, monkeypatch):
    monkeypatch.delenv(runs.TRACKING_ENV, raising=False)
    a, b = _cfg(tmp_path, "a.db"), _cfg(tmp_path, "b.db")
    runs.configure(a, "exp-a")
    assert mlflow.get_tracking_uri() == a.tracking_uri
    # MLflow echoed a's URI into the environment; that is not the user's override
    runs.configure(b, "exp-b")
    assert mlflow.get_tracking_uri() == b.tracking_uri
    assert mlflow.get_experiment_by_name("exp-b") is not None


def test_user_environment_overrides_params(tmp_path, monkeypatch):
    server = f"sqlite:///{tmp_path / 'server.db'}"
    monkeypatch.setenv(runs.TRACKING_ENV, server)
    runs.configure(_cfg(tmp_path, "a.db"), "exp-a")
    assert mlflow.get_tracking_uri() == server
    runs.configure(_cfg(tmp_path, "b.db"), "exp-b")
    assert mlflow.get_tracking_uri() == server
    assert not (tmp_path / "a.db").exists() and not (tmp_path / "b.db").exists()


def test_reopening_a_run_this_store_lacks_starts_a_tagged_one(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv(runs.TRACKING_ENV, raising=False)
    runs.configure(_cfg(tmp_path, "a.db"), "exp-a")
    with runs.run("trained", {"lr": 0.1}) as first:
        kept = first.info.run_id
    with runs.run("ignored", run_id=kept) as again:  # an existing run is re-opened
        assert again.info.run_id == kept
        mlflow.log_metric("test/f1", 0.5)
    # model files pulled from another clone name a run that is not in this store
    runs.configure(_cfg(tmp_path, "b.db"), "exp-b")
    with runs.run("model/seed0", run_id=kept) as fresh:
        assert fresh.info.run_id != kept
        mlflow.log_metric("test/f1", 0.7)
    got = mlflow.MlflowClient().get_run(fresh.info.run_id)
    assert got.data.tags["trained_in_run"] == kept and got.info.run_name == "model/seed0"
    assert got.data.metrics["test/f1"] == 0.7
    assert "is not in" in caplog.text and kept in caplog.text

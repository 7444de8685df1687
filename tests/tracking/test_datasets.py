"""Training inputs logged as MLflow datasets, digest = the folder's hash in dvc.lock."""

from __future__ import annotations

import mlflow
import numpy as np
import yaml
from mlflow import MlflowClient

from ecglatent.config import TrackingConfig
from ecglatent.tracking import datasets, runs

BEATS_MD5 = "2908ef09fd69f47ba941f8699cc9fce4.dir"


def _project(tmp_path, monkeypatch, lock: bool):
    (tmp_path / ".dvc").mkdir()
    (tmp_path / "data/beats/ptb-xl").mkdir(parents=True)
    if lock:
        stages = {"beats": {"cmd": "ecglatent beats", "outs": [
            {"path": "data/beats/ptb-xl", "hash": "md5", "md5": BEATS_MD5},
            {"path": "data/beats/rejects.csv", "hash": "md5", "md5": "0" * 32}]}}  # fmt: skip
        (tmp_path / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": stages}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(runs.TRACKING_ENV, raising=False)
    runs.configure(TrackingConfig(experiment="exp-data"))


def _logged(run_id: str):
    got = MlflowClient().get_run(run_id).inputs.dataset_inputs
    assert len(got) == 1
    return got[0]


def test_digest_is_the_dvc_lock_hash_of_the_data_folder(tmp_path, monkeypatch):
    _project(tmp_path, monkeypatch, lock=True)
    assert datasets.dvc_hash("data/beats/ptb-xl") == BEATS_MD5
    assert datasets.dvc_hash(tmp_path / "data/beats/ptb-xl") == BEATS_MD5  # absolute path too
    assert datasets.dvc_hash("data/beats/mitdb") is None
    x = np.zeros((5, 12, 100), np.float32)
    with runs.run("train") as active:
        datasets.log_training_data("ptbxl", "data/beats/ptb-xl", x, np.arange(5.0))
    got = _logged(active.info.run_id)
    assert got.dataset.name == "ptbxl" and got.dataset.digest == BEATS_MD5
    tags = {t.key: t.value for t in got.tags}
    assert tags["mlflow.data.context"] == "training" and tags["digest_source"] == "dvc.lock"
    assert str(tmp_path / "data/beats/ptb-xl") in got.dataset.source
    # the store is the project's (relative default URI resolved against the project root)
    assert mlflow.get_tracking_uri() == f"sqlite:///{tmp_path.resolve()}/mlflow.db"


def test_without_dvc_lock_the_digest_is_a_content_hash(tmp_path, monkeypatch):
    _project(tmp_path, monkeypatch, lock=False)
    a, b = np.zeros((5, 2, 10), np.float32), np.ones((5, 2, 10), np.float32)
    with runs.run("a") as ra:
        datasets.log_training_data("d", "data/beats/ptb-xl", a)
    with runs.run("b") as rb:
        datasets.log_training_data("d", "data/beats/ptb-xl", b)
    da, db = _logged(ra.info.run_id), _logged(rb.info.run_id)
    assert {t.key: t.value for t in da.tags}["digest_source"] == "content"
    assert da.dataset.digest != db.dataset.digest

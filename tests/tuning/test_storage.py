"""Lost-trial detection on a real Optuna RDB storage (SQLite file, heartbeats on)."""

from __future__ import annotations

import time

import optuna
from optuna.trial import TrialState

from ecglatent.config import TuneConfig
from ecglatent.tuning.storage import LostTrialWatch, heartbeatless_running_trials, open_storage


def _study(tmp_path, max_retry: int = 1) -> optuna.Study:
    cfg = TuneConfig(heartbeat_interval=60, grace_period=120, max_retry=max_retry)
    storage = open_storage(f"sqlite:///{tmp_path / 'optuna.db'}", cfg)
    return optuna.create_study(study_name="lost", storage=storage)


def test_trial_without_heartbeat_fails_after_grace_and_is_queued_again(tmp_path):
    study = _study(tmp_path)
    # ask() creates a RUNNING trial; its worker "dies" before the first heartbeat.
    orphan = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    rdb = study._storage._backend
    assert heartbeatless_running_trials(rdb, study._study_id) == [orphan._trial_id]
    # Optuna's own check never fails it: there is no heartbeat to be stale.
    optuna.storages.fail_stale_trials(study)
    assert study.trials[orphan.number].state == TrialState.RUNNING

    watch = LostTrialWatch(grace_period=0.2)
    assert watch(study) == []  # first sight: it may still be starting
    assert study.trials[orphan.number].state == TrialState.RUNNING
    time.sleep(0.3)
    assert watch(study) == [orphan._trial_id]
    states = [t.state for t in study.trials]
    assert states[orphan.number] == TrialState.FAIL
    # the storage's stale callback (retry) queued the same params again
    assert states.count(TrialState.WAITING) == 1
    retried = next(t for t in study.trials if t.state == TrialState.WAITING)
    assert retried.params == study.trials[orphan.number].params
    assert watch(study) == []  # nothing is failed twice


def test_trial_with_heartbeat_or_finished_is_left_alone(tmp_path):
    study = _study(tmp_path)
    alive = study.ask()
    rdb = study._storage._backend
    rdb.record_heartbeat(alive._trial_id)
    done = study.ask()
    study.tell(done, 1.0)
    young = study.ask()

    watch = LostTrialWatch(grace_period=0.2)
    watch(study)
    time.sleep(0.3)
    study.tell(young, 2.0)  # it finished between two looks
    assert watch(study) == []
    states = {t.number: t.state for t in study.trials}
    assert states == {
        alive.number: TrialState.RUNNING,
        done.number: TrialState.COMPLETE,
        young.number: TrialState.COMPLETE,
    }


def test_storage_without_heartbeat_is_not_watched(tmp_path):
    cfg = TuneConfig(heartbeat_interval=60, grace_period=120, max_retry=1)
    storage = open_storage(f"sqlite:///{tmp_path / 'optuna.db'}", cfg, heartbeat=False)
    study = optuna.create_study(study_name="plain", storage=storage)
    trial = study.ask()
    watch = LostTrialWatch(grace_period=0.0)
    watch(study)
    time.sleep(0.05)
    assert watch(study) == []
    assert study.trials[trial.number].state == TrialState.RUNNING

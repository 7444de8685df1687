"""`ecglatent tune` on a tiny PTB-XL slice: real Optuna storage, MLflow store and worker processes.

The main test runs a 3-trial study with two worker processes on one SQLite storage, kills one
worker with SIGKILL in the middle of a trial, lets the study finish, re-runs the command and
checks that no complete trial was lost, the count is right, every finished trial has exactly
one nested MLflow run under one parent run, and the best model is registered as champion.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import mlflow
import optuna
import pytest
import yaml
from mlflow import MlflowClient

from ecglatent.cli import main
from ecglatent.config import TuneConfig, load_params
from ecglatent.tuning.storage import open_storage
from tests.conftest import empty_mlflow_store
from tests.tracking.conftest import tiny_params

MODEL = "ecg-task-vae-ptbxl-norm"
EXPERIMENT = "ecglatent-tune-ptbxl-norm"
N_TRIALS = 3  # one complete before the kill, one killed mid-trial, one after
STEP_TIMEOUT_S = 240
REPO = Path(__file__).resolve().parents[2]

SPACE = {
    "latent_dim": {"type": "int", "low": 2, "high": 4},
    "latent_pred": {"type": "int", "low": 1, "high": 2},
    "beta": {"type": "float", "low": 0.5, "high": 4.0, "log": True},
    "gamma": {"type": "float", "low": 10.0, "high": 200.0, "log": True},
    "pretrain_lr": {"type": "float", "low": 3.0e-4, "high": 3.0e-3, "log": True},
    "finetune_lr": {"type": "float", "low": 1.0e-4, "high": 1.0e-3, "log": True},
}


# ---------------------------------------------------------------------------------------------
# Helpers shared with test_postgres.py


def tune_params(work: Path, data: Path, mirror: Path, storage: str,
                tracking_uri: str | None = None, **tune: Any) -> Path:  # fmt: skip
    """params.yaml in ``work`` for a tiny study on the data in ``data`` (the tiny run's fetch →
    beats → split of 60 PTB-XL records, NORM vs rest): 1 fold, 4 epochs."""
    base = yaml.safe_load(tiny_params(data, mirror).read_text())
    if tracking_uri is None:
        empty_mlflow_store(work / "mlflow.db")
    base["tracking"].update(tracking_uri=tracking_uri or f"sqlite:///{work / 'mlflow.db'}",
                            artifact_root=str(work / "mlartifacts"),
                            reports_dir=str(work / "reports"))  # fmt: skip
    base["tune"].update(storage=storage, n_folds=1, pretrain_epochs=1, finetune_head_epochs=1,
                        finetune_epochs=2, heartbeat_interval=2, grace_period=4, max_retry=1,
                        reports_dir=str(work / "reports/tune"), space=SPACE, **tune)  # fmt: skip
    work.mkdir(parents=True, exist_ok=True)
    path = work / "params.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


def tune_cmd(params: Path, study: str, n_trials: int, workers: int) -> list[str]:
    return [sys.executable, "-m", "ecglatent.cli", "--params", str(params), "tune", "--study",
            study, "--n-trials", str(n_trials), "--workers", str(workers)]  # fmt: skip


def clean_env() -> dict[str, str]:
    """The environment without MLflow run/URI variables a developer may have set."""
    return {
        k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID")
    }


def run_ok(cmd: list[str], cwd: Path) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=clean_env(), capture_output=True, text=True,
                              timeout=STEP_TIMEOUT_S)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        # Say where it stuck: the workers' log lines, not just "timed out".
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        pytest.fail(f"{' '.join(cmd)} still running after {STEP_TIMEOUT_S} s; its log ends:\n"
                    f"{(err or '')[-6000:]}")  # fmt: skip
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr[-6000:]}"
    return proc.stderr


def load_study(storage: str, name: str) -> optuna.Study:
    """The study through ecglatent's storage opener (which picks the installed PG driver)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rdb = open_storage(storage, TuneConfig(), heartbeat=False)
    return optuna.load_study(study_name=name, storage=rdb)


def worker_pid(trial: optuna.trial.FrozenTrial) -> int:
    """The pid in a trial's ``worker`` attribute (``host:pid/wI``)."""
    return int(trial.user_attrs["worker"].rsplit(":", 1)[1].split("/")[0])


def heartbeat_trial_ids(rdb: optuna.storages.RDBStorage) -> set[int]:
    """Ids of the trials that have a heartbeat row in Optuna's RDB storage."""
    import sqlalchemy

    with rdb.engine.connect() as conn:
        rows = conn.execute(sqlalchemy.text("SELECT trial_id FROM trial_heartbeats"))
        return {int(r[0]) for r in rows}


def wait_mid_trial(proc: subprocess.Popen, storage: str, name: str,
                   running: int = 1) -> tuple[dict[int, float], list[optuna.trial.FrozenTrial]]:  # fmt: skip
    """Block until one trial is complete and ``running`` trials are under way in workers.

    Returns the complete trials' values and the running trials.
    """
    deadline = time.monotonic() + STEP_TIMEOUT_S
    # One storage (one connection pool) for the whole wait: opening one per poll leaves a pool
    # behind each time, and PostgreSQL refuses clients past max_connections.
    rdb = open_storage(storage, TuneConfig(), heartbeat=False)
    try:
        return _poll_mid_trial(proc, rdb, name, running, deadline)
    finally:
        rdb.engine.dispose()


def _poll_mid_trial(proc: subprocess.Popen, rdb, name: str, running: int, deadline: float):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the study ended before a worker could be killed"
        time.sleep(0.3)
        try:
            trials = optuna.load_study(study_name=name, storage=rdb).get_trials(deepcopy=False)
        except KeyError:  # not created yet
            continue
        done = {t.number: t.values[0] for t in trials if t.state.name == "COMPLETE"}
        # Training has begun once the trial's MLflow run exists. Not while a trial is between
        # Optuna's ask and its first heartbeat: Optuna's stale check skips a RUNNING trial that
        # never sent one, so a kill there leaves it RUNNING. The condition is the heartbeat row
        # itself in the storage, not a delay.
        running_now = [t for t in trials if t.state.name == "RUNNING"]
        beating = heartbeat_trial_ids(rdb)
        busy = [t for t in running_now
                if "mlflow_run_id" in t.user_attrs and t._trial_id in beating]  # fmt: skip
        if done and len(busy) >= running and len(busy) == len(running_now):
            return done, busy
    raise AssertionError("no worker was mid-trial within the time limit")


def check_study(storage: str, name: str, n_trials: int, before: dict[int, float],
                killed: list[int]) -> optuna.Study:  # fmt: skip
    """No complete trial lost, the finished count right, every killed trial failed and retried."""
    study = load_study(storage, name)
    trials = study.get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}
    for number, value in before.items():
        assert by_number[number].state.name == "COMPLETE", f"complete trial {number} was lost"
        assert by_number[number].values[0] == value
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == n_trials, [(t.number, t.state.name) for t in trials]
    assert not [t for t in trials if t.state.name == "RUNNING"]
    for number in killed:
        assert by_number[number].state.name == "FAIL"
        retries = [t for t in trials if t.system_attrs.get("failed_trial") == number]
        assert len(retries) == 1, f"killed trial {number} was not retried once"
        assert retries[0].state.name in ("COMPLETE", "PRUNED")
        assert retries[0].params == by_number[number].params
    return study


def check_mlflow(tracking_uri: str, name: str, study: optuna.Study, killed: list[int]) -> str:
    """One parent run; one nested run per finished trial; killed trials' runs closed; champion."""
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient()
    exp = client.get_experiment_by_name(EXPERIMENT)
    parents = client.search_runs([exp.experiment_id],
                                 f"tags.optuna_study = '{name}' and tags.optuna_role = 'study'")  # fmt: skip
    assert len(parents) == 1, "re-running the command must not start a second parent run"
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert study.user_attrs["mlflow_parent_run_id"] == parent.info.run_id
    children = client.search_runs([exp.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'")  # fmt: skip
    finished = {t.number: t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")}
    ok = [r for r in children if r.data.tags.get("optuna_state") in ("COMPLETE", "PRUNED")]
    assert sorted(int(r.data.tags["optuna_trial"]) for r in ok) == sorted(finished)
    for run in ok:
        trial = finished[int(run.data.tags["optuna_trial"])]
        assert run.data.tags["optuna_state"] == trial.state.name
        assert trial.user_attrs["mlflow_run_id"] == run.info.run_id
        assert float(run.data.params["sampled.beta"]) == pytest.approx(trial.params["beta"])
        if trial.state.name == "COMPLETE":
            assert run.data.metrics["val_auroc"] == pytest.approx(trial.values[0])
            assert "val_mse" in run.data.metrics and "val_auroc_fold0" in run.data.metrics
            for phase, steps in (("pretrain", [0]), ("finetune", [0, 1])):
                losses = client.get_metric_history(run.info.run_id, f"fold0/{phase}/val_loss")
                assert [m.step for m in losses] == steps
            assert "plots/curves.png" in {a.path for a in client.list_artifacts(run.info.run_id,
                                                                                "plots")}  # fmt: skip
    for number in killed:
        # A trial killed before its MLflow run started has no run; any other has one, closed.
        runs = [r for r in children if r.data.tags.get("optuna_trial") == str(number)]
        assert len(runs) == ("mlflow_run_id" in study.trials[number].user_attrs)
        assert all(
            r.info.status == "KILLED" and r.data.tags["optuna_state"] == "FAIL" for r in runs
        )
    report = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/report.md", "report/trials.csv", "report/best.json", "report/history.png",
            "report/pareto.png"} <= report  # fmt: skip
    best = max((t for t in finished.values() if t.state.name == "COMPLETE"),
               key=lambda t: t.values[0])  # fmt: skip
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert champion.run_id == parent.info.run_id
    assert champion.tags["optuna_study"] == name
    assert study.trials[int(champion.tags["optuna_trial"])].values[0] == best.values[0]
    assert 0.0 <= float(champion.tags["test_auroc"]) <= 1.0
    assert len(client.search_model_versions(f"name='{MODEL}'")) == 1
    return parent.info.run_id


# ---------------------------------------------------------------------------------------------
# Tests


@pytest.fixture(scope="module")
def data(tiny_vae_data) -> Path:
    return tiny_vae_data[0]


def test_two_workers_survive_a_killed_worker_and_rerun_resumes(data, mirror, tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    params = tune_params(tmp_path, data, mirror, storage)
    cmd = tune_cmd(params, "kill", N_TRIALS, workers=2)
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        before, busy = wait_mid_trial(proc, storage, "kill")
        victim = busy[0]
        os.kill(worker_pid(victim), signal.SIGKILL)
        out, _ = proc.communicate(timeout=STEP_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    # The surviving worker notices the stale trial, retries it and finishes the study.
    assert proc.returncode == 0, out[-6000:]
    assert "killed by SIGKILL" in out
    # Re-running the command resumes: nothing left to run, nothing registered twice.
    log = run_ok(cmd, tmp_path)
    assert "no trial to run" in log and "registered already" in log
    study = check_study(storage, "kill", N_TRIALS, before, [victim.number])
    check_mlflow(f"sqlite:///{tmp_path / 'mlflow.db'}", "kill", study, [victim.number])
    for name in ("trials.csv", "best.json", "history.png", "pareto.png", "summary.json"):
        assert (tmp_path / "reports/tune/kill" / name).stat().st_size > 0
    md = (tmp_path / "reports/tune/kill/report.md").read_text()
    assert f"{N_TRIALS} finished" in md and "1 failed" in md and "champion" in md

    # The best params, as JSON and as `dvc exp run` arguments.
    best = json.loads(
        _cli_out(capsys, params, "tune-best", "--study", "kill", "--storage", storage)
    )
    assert best["objective"]["val_auroc"] == study.best_value
    assert best["trial"] == study.best_trial.number
    line = _cli_out(
        capsys, params, "tune-best", "--study", "kill", "--storage", storage, "--dvc-args"
    )
    check_dvc_line(line, best["settings"])


def check_dvc_line(line: str, s: dict[str, Any]) -> None:
    """The `dvc exp run` line, applied as DVC applies `-S` (Hydra overrides) to params.yaml,
    yields pipeline params that train the best trial's model next to the paper's rows."""
    from dvc.utils.hydra import apply_overrides

    words = shlex.split(line)
    assert words[:3] == ["dvc", "exp", "run"] and words[3::2] == ["-S"] * len(words[4::2])
    params = Path(tempfile.mkdtemp(prefix="dvc-args-")) / "params.yaml"
    shutil.copy(REPO / "params.yaml", params)
    before = load_params(params).vae
    apply_overrides(params, words[4::2])
    v = load_params(params).vae
    base, tuned = (
        f"tuned_L{s['latent_dim']}",
        f"tuned_L{s['latent_dim']}_"
        + ("split" if s["latent_pred"] < s["latent_dim"] else "specific"),
    )
    assert v.pretrain_models[base].latent_dim == s["latent_dim"]
    assert v.finetune_models[tuned].base == base
    assert v.finetune_models[tuned].latent_pred == s["latent_pred"]
    for got, want in ((v.beta, s["beta"]), (v.gamma, s["gamma"]),
                      (v.pretrain.lr, s["pretrain_lr"]), (v.finetune.lr, s["finetune_lr"])):  # fmt: skip
        assert got == pytest.approx(want, rel=1e-5)
    # The paper's rows are untouched, so Table 1 keeps its meaning.
    assert set(before.pretrain_models) | {base} == set(v.pretrain_models)
    assert set(before.finetune_models) | {tuned} == set(v.finetune_models)


def _cli_out(capsys, params: Path, *args: str) -> str:
    capsys.readouterr()
    assert main(["--params", str(params), *args]) == 0
    return capsys.readouterr().out.strip()


def test_pruned_trial_is_marked_in_mlflow(data, mirror, tmp_path):
    """A real Optuna pruner that prunes at the first report; the nested run says PRUNED."""
    import torch

    from ecglatent.datasets.arrays import load_dataset
    from ecglatent.tuning.mlflow_log import configure, ensure_parent_run
    from ecglatent.tuning.objective import Objective

    p = load_params(tune_params(tmp_path, data, mirror, "sqlite:///unused.db"))
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'optuna.db'}", study_name="prune", direction="maximize",
        pruner=optuna.pruners.ThresholdPruner(lower=1.01),  # every AUROC is below: prune
    )  # fmt: skip
    parent = ensure_parent_run(p, study, "sqlite:///x", False)
    configure(p)
    torch.set_num_threads(1)
    objective = Objective(p, load_dataset("ptbxl", p), torch.device("cpu"), False, parent, "t")
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state.name == "PRUNED" and trial.last_step == 0
    run = MlflowClient().get_run(trial.user_attrs["mlflow_run_id"])
    assert run.data.tags["optuna_state"] == "PRUNED" and run.info.status == "FINISHED"
    assert run.data.tags["mlflow.parentRunId"] == parent
    assert run.data.metrics["pruned_at_step"] == 0


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"beta": {"type": "gaussian", "low": 0.1, "high": 1.0}}, "unknown type 'gaussian'"),
        ({}, "tune.space is empty"),
        ({"betta": {"type": "float", "low": 0.1, "high": 1.0}}, "unknown dimension"),
        ({"beta": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}, "needs low > 0"),
    ],
)
def test_bad_search_space_is_a_message(tmp_path, space, message, capsys):
    params = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    params["tune"]["space"] = space
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    assert main(["--params", str(path), "tune", "--study", "x", "--n-trials", "1"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unreachable_storage_is_a_message(data, mirror, tmp_path, capsys):
    params = tune_params(tmp_path, data, mirror, "sqlite:///unused.db")
    url = "postgresql://ecg:secret@127.0.0.1:1/optuna"  # nothing listens on port 1
    rc = main(
        ["--params", str(params), "tune", "--study", "x", "--n-trials", "1", "--storage", url]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "cannot open Optuna storage" in err and "database server is running" in err
    assert "secret" not in err  # the password is masked
    rc = main(["--params", str(params), "tune-best", "--study", "nope", "--storage",
               f"sqlite:///{tmp_path / 'missing.db'}"])  # fmt: skip
    assert rc == 2 and "no Optuna database" in capsys.readouterr().err


def test_dvc_args_map_onto_new_pipeline_models():
    from ecglatent.tuning.space import Settings, dvc_args

    split = Settings(latent_dim=7, latent_pred=2, beta=2.5, gamma=120.0, pretrain_lr=2e-4,
                     finetune_lr=5e-5)  # fmt: skip
    assert dvc_args(split) == [
        "vae.beta=2.5", "vae.gamma=120", "vae.pretrain.lr=0.0002", "vae.finetune.lr=5e-05",
        "++vae.pretrain_models.tuned_L7={latent_dim:7}",
        "++vae.finetune_models.tuned_L7_split={base:tuned_L7,latent_pred:2}",
    ]  # fmt: skip
    specific = Settings(3, 3, 1.0, 10.0, 1e-3, 1e-4)
    assert dvc_args(specific)[-1] == (
        "++vae.finetune_models.tuned_L3_specific={base:tuned_L3,latent_pred:3}"
    )


def test_two_objective_report_and_best(tmp_path, capsys):
    """A real two-objective study (trials added with known values): the Pareto front, the
    trial picked as best, the markdown report and `tune-best` on it."""
    from ecglatent.tuning.report import write_report

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(storage=storage, study_name="mo",
                                directions=["maximize", "minimize"])  # fmt: skip
    dists = {
        "latent_dim": optuna.distributions.IntDistribution(2, 16),
        "latent_pred": optuna.distributions.IntDistribution(1, 4),
        "beta": optuna.distributions.FloatDistribution(0.1, 10.0, log=True),
    }
    # (AUROC, MSE): 0, 1 and 3 are the front; 2 is dominated by 1; 4 failed.
    points = [(0.80, 0.020), (0.85, 0.030), (0.84, 0.035), (0.70, 0.010)]
    for i, values in enumerate(points):
        study.add_trial(optuna.create_trial(
            params={"latent_dim": 4 + i, "latent_pred": 2, "beta": 1.0 + i}, distributions=dists,
            values=list(values), user_attrs={"val_auroc_folds": [values[0]]},
        ))  # fmt: skip
    study.add_trial(optuna.create_trial(state=optuna.trial.TrialState.FAIL))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["tune"].update(storage=storage, reports_dir=str(tmp_path / "reports"))
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    p = load_params(path)

    paths = write_report(study, p, tmp_path / "reports/mo", {"command": "ecglatent tune ..."})
    summary = json.loads(paths["summary.json"].read_text())
    assert [t["trial"] for t in summary["pareto_front"]] == [1, 0, 3]
    assert summary["best"]["trial"] == 1 and summary["trials"]["fail"] == 1
    md = paths["report.md"].read_text()
    assert "4 finished (4 complete, 0 pruned), 1 failed" in md
    assert "## Best trial: #1" in md and "| 2 | 0.8400 |" not in md.split("## Pareto")[1]
    assert paths["pareto.png"].stat().st_size > 0

    best = json.loads(_cli_out(capsys, path, "tune-best", "--study", "mo"))
    assert best["trial"] == 1 and best["objective"] == {"val_auroc": 0.85, "val_mse": 0.03}
    check_dvc_line(_cli_out(capsys, path, "tune-best", "--study", "mo", "--dvc-args"),
                   best["settings"])  # fmt: skip

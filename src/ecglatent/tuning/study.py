"""`ecglatent tune` and `ecglatent tune-best`: launch, resume and report an Optuna study.

``run_tune`` creates (or resumes) the study, its MLflow parent run, runs the workers, then
writes the report and registers the best trial's model. Re-running the same command resumes
the study and tops it up to ``--n-trials`` finished trials; the finishing steps are skipped
for work already done (same best trial, already registered).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import mlflow
import optuna
from mlflow import MlflowClient
from optuna.exceptions import ExperimentalWarning

from ecglatent.config import Params
from ecglatent.datasets.arrays import load_dataset
from ecglatent.errors import EcglatentError

from .best_model import retrain_and_register
from .mlflow_log import StaleTrialHandler, ensure_parent_run, log_study_metrics, set_tags
from .objective import check_fold, n_folds_of
from .report import best_of, counts, dvc_command, write_report
from .space import validate_space
from .storage import masked
from .studies import build_pruner, build_sampler, create_or_load, load_existing
from .worker import WorkerSpec, work

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 30.0
DONE_TAG = "best_model_trial"  # on the parent run: the trial whose model is registered
CLAIM_TAG = "best_model_claim"
MODEL_TAG = "best_model"  # on the parent run: the registered version and its test AUROC
CLAIM_SETTLE_S = 2.0
CLAIM_FRESH_S = 1800.0


def run_tune(params: Params, study: str, n_trials: int = 20, storage: str | None = None,
             workers: int = 1, timeout: float | None = None,
             multi_objective: bool = False) -> dict[str, Any]:  # fmt: skip
    """Run study ``study`` until it holds ``n_trials`` finished trials; report and register.

    ``storage`` None means ``tune.storage``; ``workers`` processes share it (1 = this
    process); ``timeout`` is seconds per worker. Returns counts, the parent run id and what
    the finishing step did.
    """
    if n_trials < 1:
        raise EcglatentError("--n-trials must be >= 1 (finished trials wanted in the study)")
    if workers < 1:
        raise EcglatentError("--workers must be >= 1")
    if timeout is not None and timeout <= 0:
        raise EcglatentError("--timeout must be a positive number of seconds")
    validate_space(params.tune.space)
    build_sampler(params, multi_objective, params.seed)  # unknown names fail before any work
    build_pruner(params, multi_objective)
    url = storage or params.tune.storage
    # Missing stage outputs or a fold the probe cannot score fail here, not in K workers.
    data = load_dataset(params.tune.dataset, params)
    for k in range(n_folds_of(params, data)):
        check_fold(data, k)
    del data

    requested = multi_objective or params.tune.multi_objective
    handler = StaleTrialHandler(params.tune.max_retry)
    st, multi = create_or_load(params, study, url, requested, handler)
    parent = ensure_parent_run(params, st, url, multi)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(st)
    c = counts(st)
    spec = WorkerSpec(params, study, url, n_trials, timeout, workers,
                      logging.getLogger().isEnabledFor(logging.DEBUG))  # fmt: skip
    lost: list[str] = []
    if c["finished"] >= n_trials:
        log.info("study %s already holds %d finished trials (>= %d): no trial to run",
                 study, c["finished"], n_trials)  # fmt: skip
    elif workers == 1:
        work(spec, 0, progress=sys.stderr.isatty())
    else:
        lost = _run_workers(spec, min(workers, n_trials - c["finished"]), st)
    c = counts(st)
    log.info("study %s: %d/%d finished (%d complete, %d pruned), %d failed, %d running",
             study, c["finished"], n_trials, c["complete"], c["pruned"], c["fail"],
             c["running"])  # fmt: skip
    result: dict[str, Any] = {"study": study, "storage": masked(url), "counts": c,
                              "parent_run_id": parent, "multi_objective": multi,
                              "lost_workers": lost}  # fmt: skip
    if c["complete"]:
        result.update(
            finish(
                params,
                st,
                parent,
                url,
                command_line(study, n_trials, storage, workers, timeout, multi_objective),
            )
        )
    if lost:
        log.warning("worker(s) ended abnormally: %s. Their running trials were marked FAIL "
                    "after the grace period (%d s) and queued again.", "; ".join(lost),
                    params.tune.grace_period)  # fmt: skip
    if c["finished"] < n_trials and timeout is None:
        raise EcglatentError(
            f"study {study}: {c['finished']} of {n_trials} trials finished"
            + (f"; worker(s) ended abnormally: {'; '.join(lost)}" if lost else "")
            + ". Re-run the same command to resume the study"
        )
    return result


def _describe(rc: int) -> str:
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit status {rc}"


def _run_workers(spec: WorkerSpec, k: int, study: optuna.Study) -> list[str]:
    """K worker processes on this machine; returns a line per worker that did not end well."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory(prefix="ecglatent-tune-") as tmp:
        spec_path = Path(tmp) / "spec.pkl"
        spec_path.write_bytes(pickle.dumps(spec))
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "ecglatent.tuning.worker", str(spec_path), str(i)], env=env
            )  # fmt: skip
            for i in range(k)
        ]
        log.info("study %s: %d worker processes (pids %s) on %s", spec.study, k,
                 ", ".join(str(p.pid) for p in procs), socket.gethostname())  # fmt: skip
        try:
            next_report = time.monotonic() + PROGRESS_EVERY_S
            while any(p.poll() is None for p in procs):
                time.sleep(0.5)
                if time.monotonic() >= next_report:
                    next_report += PROGRESS_EVERY_S
                    _progress(study, spec.n_trials)
        except KeyboardInterrupt:
            # Workers in our process group got the Ctrl-C as well; make sure, then wait.
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)
            for p in procs:
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
            raise
    return [f"w{i} (pid {p.pid}) {_describe(p.returncode)}"
            for i, p in enumerate(procs) if p.returncode != 0]  # fmt: skip


def _progress(study: optuna.Study, n_trials: int) -> None:
    try:
        c = counts(study)
        best = ""
        if c["complete"]:
            trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            top = max(trials, key=lambda t: t.values[0])
            best = f", best val AUROC {top.values[0]:.4f} (trial {top.number})"
        log.info("study %s: %d/%d finished, %d running, %d failed%s", study.study_name,
                 c["finished"], n_trials, c["running"], c["fail"], best)  # fmt: skip
    except Exception as exc:  # progress lines must never stop the run
        log.debug("progress unavailable: %s", exc)


def _claim(client: MlflowClient, run_id: str, trial: int) -> bool:
    """Whether this process should retrain and register ``trial``'s model.

    Every machine's command finishes the same study at about the same time; the last writer
    of the claim tag wins, the others see someone else's claim and skip.
    """
    tags = client.get_run(run_id).data.tags
    if tags.get(DONE_TAG) == str(trial):
        log.info("best trial %d's model is registered already", trial)
        return False
    claim = tags.get(CLAIM_TAG, "").split("|")
    if len(claim) == 3 and claim[0] == str(trial) and time.time() - float(claim[2]) < CLAIM_FRESH_S:
        log.info("best trial %d's model is being registered by %s", trial, claim[1])
        return False
    me = f"{trial}|{socket.gethostname()}:{os.getpid()}|{time.time():.0f}"
    client.set_tag(run_id, CLAIM_TAG, me)
    time.sleep(CLAIM_SETTLE_S)
    return client.get_run(run_id).data.tags.get(CLAIM_TAG) == me


def command_line(study: str, n_trials: int, storage: str | None, workers: int,
                 timeout: float | None, multi_objective: bool) -> str:  # fmt: skip
    """The `ecglatent tune` command that (re)runs this study, password masked."""
    cmd = ["ecglatent", "tune", "--study", study, "--n-trials", str(n_trials)]
    if storage:
        cmd += ["--storage", masked(storage)]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    if timeout:
        cmd += ["--timeout", f"{timeout:g}"]
    if multi_objective:
        cmd.append("--multi-objective")
    return shlex.join(cmd)


def finish(params: Params, study: optuna.Study, parent: str, storage: str = "",
           command: str = "") -> dict[str, Any]:  # fmt: skip
    """Register the best trial's model; report to ``tune.reports_dir/<study>/`` and MLflow.

    The report is written (and logged to the parent run) even when registering fails.
    """
    out_dir = Path(params.tune.reports_dir) / study.study_name
    best = best_of(study, params)
    c = counts(study)
    client = MlflowClient()
    result: dict[str, Any] = {"report_dir": str(out_dir), "best_trial": best.trial.number}
    try:
        if _claim(client, parent, best.trial.number):
            try:
                result["best_model"] = retrain_and_register(
                    params, best.settings, study.study_name, best.trial.number, parent
                )
            except BaseException:
                client.set_tag(parent, CLAIM_TAG, "")  # let the next run try again
                raise
            model = result["best_model"]
            tags = {DONE_TAG: best.trial.number,
                    MODEL_TAG: f"{model.get('model_uri')} (test AUROC "
                               f"{model['test_auroc']:.4f})"}  # fmt: skip
            if "version" in model:
                tags[MODEL_TAG] = (
                    f"models:/{model['registered_model']}/{model['version']} (test AUROC "
                    f"{model['test_auroc']:.4f}{', champion' if model['champion'] else ''})"
                )
            set_tags(client, parent, tags)
    finally:
        meta = {"command": command, "storage": masked(storage) if storage else "",
                "parent_run_id": parent,
                "model": client.get_run(parent).data.tags.get(MODEL_TAG, "")}  # fmt: skip
        paths = write_report(study, params, out_dir, meta)
        for path in paths.values():
            client.log_artifact(parent, str(path), artifact_path="report")
        log_study_metrics(client, parent, {
            "trials_finished": c["finished"], "trials_complete": c["complete"],
            "trials_pruned": c["pruned"], "trials_failed": c["fail"],
            "best_val_auroc": best.trial.values[0], "best_trial": best.trial.number,
        }, step=len(study.trials))  # fmt: skip
        set_tags(client, parent, {"best_trial": best.trial.number,
                                  "best_params": json.dumps(best.settings.as_dict())})  # fmt: skip
        log.info("report: %s (best trial %d, val AUROC %.4f); into the pipeline: %s", out_dir,
                 best.trial.number, best.trial.values[0], dvc_command(best.settings))  # fmt: skip
    client.set_terminated(parent, "FINISHED")
    mlflow.end_run()  # nothing of ours stays active in this process
    return result


def best_params(params: Params, study: str, storage: str | None = None,
                as_dvc_args: bool = False) -> str:  # fmt: skip
    """The best trial as JSON, or as a shell-quoted ``dvc exp run -S key=value ...`` line.

    Two-objective studies: the Pareto-optimal trial with the highest val AUROC.
    """
    st = load_existing(params, study, storage or params.tune.storage)
    best = best_of(st, params)
    if as_dvc_args:
        return dvc_command(best.settings)
    return json.dumps(best.as_dict(st), indent=2)

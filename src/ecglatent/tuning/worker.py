"""One Optuna worker: runs trials of a study until it holds ``n_trials`` finished trials.

``ecglatent tune --workers K`` starts K of these as processes (``python -m
ecglatent.tuning.worker SPEC INDEX``); ``--workers 1`` runs one in the command's own process.
Workers on other machines are just more ``ecglatent tune`` commands on the same storage.

The budget is global: a worker stops when finished (COMPLETE + PRUNED) plus running trials
reach ``n_trials``, then waits while other workers' trials run, because one of them may have
lost its worker. Such a trial is marked FAIL once its heartbeat is older than the grace
period, or once it has gone without any heartbeat for that long (a worker lost before its
first heartbeat), and re-queued (``tune.max_retry``); a waiting worker takes it. So a killed worker
costs at most its running trial, and the others still finish the study.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import sys
import time
from dataclasses import dataclass

import optuna
import torch
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from ecglatent.config import Params
from ecglatent.datasets.arrays import load_dataset
from ecglatent.errors import EcglatentError
from ecglatent.training.device import pick_device, set_threads

from .mlflow_log import PARENT_ATTR, StaleTrialHandler, configure
from .objective import Objective
from .report import counts
from .storage import LostTrialWatch
from .studies import load_for_work

log = logging.getLogger(__name__)
# Exceptions that fail one trial (diverged loss, a degenerate fold, GPU out of memory), not
# the worker; any other exception is a bug and stops it.
TRIAL_ERRORS = (FloatingPointError, ValueError, RuntimeError)
MAX_FAILURES_IN_A_ROW = 3


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process needs; pickled to a file by the launching command."""

    params: Params
    study: str
    storage: str
    n_trials: int
    timeout: float | None
    workers: int
    verbose: bool = False


class Budget:
    """After each trial: fail stale trials, stop at the global budget, stop on repeated failure."""

    def __init__(self, n_trials: int, watch: LostTrialWatch) -> None:
        # RUNNING counts too, so workers do not all start the last trial.
        self.max_trials = MaxTrialsCallback(
            n_trials, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        )
        self.watch = watch
        self.failures = 0
        self.last_error: str | None = None

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.watch(study)
        if trial.state == TrialState.FAIL:
            self.failures += 1
            self.last_error = str(trial.user_attrs.get("error", "see the log above"))
            if self.failures >= MAX_FAILURES_IN_A_ROW:
                study.stop()
                return
        else:
            self.failures = 0
        self.max_trials(study, trial)


def work(spec: WorkerSpec, index: int, progress: bool = False) -> dict[str, int]:
    """Run trials until the study holds ``spec.n_trials`` finished ones (or the timeout)."""
    params = spec.params
    if spec.workers > 1:
        torch.set_num_threads(1)  # K processes share the cores; more threads only contend
    else:
        set_threads(params.vae.threads)
    label = f"{socket.gethostname()}:{os.getpid()}/w{index}"
    handler = StaleTrialHandler(params.tune.max_retry)
    study = load_for_work(params, spec.study, spec.storage, handler, index, spec.workers)
    parent = study.user_attrs.get(PARENT_ATTR)
    if not parent:
        raise EcglatentError(f"study {spec.study!r} has no MLflow parent run; start it with "
                             f"`ecglatent tune --study {spec.study}`")  # fmt: skip
    configure(params)
    device = pick_device(params.vae.device)
    data = load_dataset(params.tune.dataset, params)
    objective = Objective(params, data, device, len(study.directions) > 1, parent, label,
                          progress)  # fmt: skip
    watch = LostTrialWatch(params.tune.grace_period)
    budget = Budget(spec.n_trials, watch)
    deadline = time.monotonic() + spec.timeout if spec.timeout else None
    wait = max(1.0, params.tune.heartbeat_interval / 2)
    log.info("worker %s: study %s, %d finished trials wanted", label, spec.study, spec.n_trials)
    while True:
        watch(study)
        c = counts(study)
        left = None if deadline is None else deadline - time.monotonic()
        if c["finished"] >= spec.n_trials or (left is not None and left <= 0):
            break
        if budget.failures >= MAX_FAILURES_IN_A_ROW:
            raise EcglatentError(
                f"worker {label}: {budget.failures} trials in a row failed (last: "
                f"{budget.last_error}); see the log, fix the cause and re-run to resume"
            )
        if c["finished"] + c["running"] >= spec.n_trials:
            # The last trials are running elsewhere; wait in case one of them lost its worker.
            time.sleep(wait if left is None else max(0.0, min(wait, left)))
            continue
        try:
            study.optimize(objective, timeout=left, callbacks=[budget], catch=TRIAL_ERRORS,
                           gc_after_trial=True)  # fmt: skip
        except KeyboardInterrupt:
            _requeue(study, objective.current, handler)
            raise
    c = counts(study)
    log.info("worker %s done: %d finished (%d complete, %d pruned), %d failed", label,
             c["finished"], c["complete"], c["pruned"], c["fail"])  # fmt: skip
    return c


def _requeue(study: optuna.Study, number: int | None, handler: StaleTrialHandler) -> None:
    """Ctrl-C fails the running trial at once (no heartbeat involved): queue it again too."""
    if number is None:
        return
    trial = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
    if trial is not None and trial.state == TrialState.FAIL:
        handler.retry(study, trial)
        log.warning("trial %d interrupted: queued again for the next run", number)


def main(argv: list[str] | None = None) -> int:
    """Entry point of a worker process: ``python -m ecglatent.tuning.worker SPEC INDEX``."""
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0], "rb") as fh:
        spec: WorkerSpec = pickle.load(fh)
    index = int(argv[1])
    logging.basicConfig(
        level=logging.DEBUG if spec.verbose else logging.INFO,
        format=f"%(asctime)s %(levelname)s [w{index}] %(name)s: %(message)s",
    )
    for noisy in ("alembic", "mlflow.store", "urllib3", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        work(spec, index)
    except EcglatentError as exc:
        print(f"ecglatent tune [w{index}]: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    # Through the package module, so log records carry its name rather than __main__.
    from ecglatent.tuning.worker import main as _main

    sys.exit(_main())

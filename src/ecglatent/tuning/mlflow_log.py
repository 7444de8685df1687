"""MLflow layout of a study: one parent run per study, one nested run per trial.

The parent run's id is kept in the study's user attributes (``mlflow_parent_run_id``), so
every worker on every machine, and every re-run of the command, logs under the same parent;
its tag ``optuna_study=<name>`` finds it again if that attribute is missing. Each trial's run
id goes into the trial's user attributes, which links optuna-dashboard back to MLflow.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import mlflow
import optuna
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from optuna.trial import FrozenTrial, TrialState

from ecglatent.config import Params
from ecglatent.pipeline.vae_common import task_of
from ecglatent.tracking import runs

from .storage import masked

log = logging.getLogger(__name__)
PARENT_ATTR = "mlflow_parent_run_id"
RUN_ATTR = "mlflow_run_id"
STATE_TAG = "optuna_state"
STUDY_TAG = "optuna_study"
ROLE_TAG = "optuna_role"
PARENT_SETTLE_S = 1.0


def experiment_name(params: Params) -> str:
    """e.g. ``ecglatent-tune-ptbxl-mi``: next to the pipeline's ``ecglatent-vae-ptbxl-mi``."""
    dataset = params.tune.dataset
    return f"ecglatent-tune-{dataset}-{task_of(params, dataset)}".lower()


def configure(params: Params) -> str:
    """Point MLflow at the tracking store (``$MLFLOW_TRACKING_URI`` wins) and the experiment."""
    return runs.configure(params.tracking, experiment_name(params))


def study_params(params: Params, multi_objective: bool) -> dict[str, Any]:
    """What a study fixes (logged once on the parent run; params cannot change later)."""
    t = asdict(params.tune)
    t.pop("storage")  # may hold a password; the masked URL is a tag
    v = params.vae
    return runs.flatten("", {
        "seed": params.seed, "task": task_of(params, params.tune.dataset),
        "multi_objective": multi_objective, "tune": t,
        "vae": {"arch": v.arch, "dropout": v.dropout, "batch_size": v.batch_size,
                "weight_decay": v.weight_decay, "grad_clip": v.grad_clip, "patience": v.patience,
                "finetune_head_lr": v.finetune_head.lr},
    })  # fmt: skip


def ensure_parent_run(params: Params, study: optuna.Study, storage_url: str,
                      multi_objective: bool) -> str:  # fmt: skip
    """The study's parent run id: found again on resume, created on the first run."""
    exp_id = configure(params)
    client = MlflowClient()
    run_id = study.user_attrs.get(PARENT_ATTR)
    if run_id:
        try:
            run = client.get_run(run_id)
            if run.info.lifecycle_stage == "active":
                client.update_run(run_id, status="RUNNING")
                return run_id
            log.warning("MLflow parent run %s of study %s was deleted; starting a new one",
                        run_id, study.study_name)  # fmt: skip
        except mlflow.exceptions.MlflowException:
            log.warning("MLflow parent run %s of study %s is not in this tracking store "
                        "(%s); starting a new one", run_id, study.study_name,
                        mlflow.get_tracking_uri())  # fmt: skip
    elif study.trials:
        # Trials but no link: a study from before this attribute; its tag still finds it.
        found = client.search_runs(
            [exp_id],
            f"tags.{STUDY_TAG} = '{study.study_name}' and tags.{ROLE_TAG} = 'study'",
            order_by=["attributes.start_time ASC"],
            max_results=1,
        )
        if found:
            study.set_user_attr(PARENT_ATTR, found[0].info.run_id)
            client.update_run(found[0].info.run_id, status="RUNNING")
            return found[0].info.run_id
    tags = {**runs.provenance(), STUDY_TAG: study.study_name, ROLE_TAG: "study",
            "optuna_storage": masked(storage_url),
            "optuna_directions": ",".join(d.name.lower() for d in study.directions)}  # fmt: skip
    if runs.project_run_id():  # under `mlflow run`: the study nests under its project run
        tags["mlflow.parentRunId"] = runs.project_run_id()
    run = client.create_run(exp_id, run_name=f"study/{study.study_name}", tags=tags)
    items = [Param(k, str(v)) for k, v in study_params(params, multi_objective).items()]
    for i in range(0, len(items), 100):  # MLflow caps a batch at 100 params
        client.log_batch(run.info.run_id, params=items[i : i + 100])
    study.set_user_attr(PARENT_ATTR, run.info.run_id)
    # Commands started at once on several machines may each have created one: the last
    # attribute written wins, the others delete theirs.
    time.sleep(PARENT_SETTLE_S)
    winner = optuna.load_study(study_name=study.study_name,
                               storage=study._storage).user_attrs.get(PARENT_ATTR)  # fmt: skip
    if winner and winner != run.info.run_id:
        client.delete_run(run.info.run_id)
        log.info("MLflow: study %s got its parent run %s from another command", study.study_name,
                 winner)  # fmt: skip
        return winner
    log.info("MLflow: parent run %s for study %s in experiment %s", run.info.run_id,
             study.study_name, experiment_name(params))  # fmt: skip
    return run.info.run_id


@contextmanager
def trial_run(parent_run_id: str, study_name: str, trial: optuna.Trial, tags: Mapping[str, str],
              params: Mapping[str, Any]) -> Iterator[mlflow.ActiveRun]:  # fmt: skip
    """A nested run for ``trial`` whose state tag and status follow the trial's outcome."""
    run = mlflow.start_run(
        run_name=f"trial-{trial.number:03d}",
        parent_run_id=parent_run_id,
        tags={**runs.provenance(), STUDY_TAG: study_name, ROLE_TAG: "trial",
              "optuna_trial": str(trial.number), STATE_TAG: "RUNNING", **tags},
    )  # fmt: skip
    trial.set_user_attr(RUN_ATTR, run.info.run_id)
    try:
        items = list(runs.flatten("", dict(params)).items())
        for i in range(0, len(items), 100):
            mlflow.log_params(dict(items[i : i + 100]))
        yield run
    except optuna.TrialPruned:
        mlflow.set_tag(STATE_TAG, "PRUNED")
        mlflow.end_run("FINISHED")
        raise
    except KeyboardInterrupt:
        mlflow.set_tag(STATE_TAG, "FAIL")
        mlflow.end_run("KILLED")
        raise
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"[:4000]
        trial.set_user_attr("error", error)
        mlflow.set_tags({STATE_TAG: "FAIL", "error": error})
        mlflow.end_run("FAILED")
        raise
    else:
        mlflow.set_tag(STATE_TAG, "COMPLETE")
        mlflow.end_run("FINISHED")


class StaleTrialHandler:
    """Heartbeat-stale trial (its worker died): close its MLflow run as KILLED, then retry it.

    Runs in whichever worker notices the stale trial, so it must never raise.
    """

    def __init__(self, max_retry: int) -> None:
        self.max_retry = max_retry

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        log.warning("trial %d lost its worker (%s): marked FAIL; retrying it (max %s retries)",
                    trial.number, trial.user_attrs.get("worker", "?"), self.max_retry)  # fmt: skip
        run_id = trial.user_attrs.get(RUN_ATTR)
        if run_id:
            try:
                client = MlflowClient()
                client.set_tag(run_id, STATE_TAG, "FAIL")
                client.set_tag(run_id, "error", "worker lost (heartbeat stale)")
                client.set_terminated(run_id, "KILLED")
            except Exception as exc:  # tracking server down: the trial retry matters more
                log.warning("could not close MLflow run %s of trial %d: %s", run_id,
                            trial.number, exc)  # fmt: skip
        self.retry(study, trial)

    def retry(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Queue ``trial``'s params again, as Optuna's retry callback does (same
        ``failed_trial``/``retry_history`` system attributes), minus the dead trial's MLflow
        run and worker, which must not look like the retry's own."""
        system_attrs: dict[str, Any] = {"failed_trial": trial.number, **trial.system_attrs}
        history = [*system_attrs.get("retry_history", []), trial.number]
        system_attrs["retry_history"] = history
        if len(history) > self.max_retry:
            log.warning("trial %d: not retried (tune.max_retry=%d reached)", trial.number,
                        self.max_retry)  # fmt: skip
            return
        keep = {k: v for k, v in trial.user_attrs.items() if k not in (RUN_ATTR, "worker", "error")}
        study.add_trial(optuna.create_trial(state=TrialState.WAITING, params=trial.params,
                                            distributions=trial.distributions, user_attrs=keep,
                                            system_attrs=system_attrs))  # fmt: skip


def log_study_metrics(client: MlflowClient, run_id: str, metrics: Mapping[str, float],
                      step: int = 0) -> None:  # fmt: skip
    ts = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, float(v), ts, step) for k, v in metrics.items()],
                     tags=[])  # fmt: skip


def set_tags(client: MlflowClient, run_id: str, tags: Mapping[str, str]) -> None:
    client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

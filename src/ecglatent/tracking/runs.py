"""MLflow set-up and run helpers: one place knows the tracking URI and experiment layout."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException

from ecglatent.config import TrackingConfig

log = logging.getLogger(__name__)
TRACKING_ENV = "MLFLOW_TRACKING_URI"
# `mlflow run` exports its project run's id as $MLFLOW_RUN_ID; we keep it under our own name
# so that it reaches subprocesses (tuning workers) but no mlflow.start_run() re-opens it.
PROJECT_RUN_ENV = "ECGLATENT_PROJECT_RUN_ID"
# MLflow 3's UI opens an experiment on what this tag names; untagged ones open on the (empty)
# GenAI traces overview instead of the training runs.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
_parent_run_id: str | None = None
_experiment_id: str | None = None  # the one configure() made active
# mlflow.set_tracking_uri also writes $MLFLOW_TRACKING_URI; a URI we took from params and
# MLflow echoed there is not a user override.
_echoed_params_uri: str | None = None


def user_tracking_uri() -> str | None:
    """``$MLFLOW_TRACKING_URI`` when the user (or ``mlflow run``) set it; None when it is only
    the echo of an earlier :func:`configure` in this process."""
    value = os.environ.get(TRACKING_ENV)
    return value if value and value != _echoed_params_uri else None


def project_root(start: Path | None = None) -> Path:
    """The project folder relative paths in ``tracking`` mean: the nearest folder at or above
    ``start`` (default: the working directory) holding ``.dvc`` or ``.git``, else ``start``.

    `dvc exp run --temp` and `--queue` run in a copy at ``<project>/.dvc/tmp/exps/<tmp>/``:
    there it is ``<project>``, so their runs land in the project's store, not the copy's.
    """
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if d.name == "exps" and d.parent.name == "tmp" and d.parent.parent.name == ".dvc":
            return d.parent.parent.parent
    for d in (here, *here.parents):
        if (d / ".dvc").is_dir() or (d / ".git").exists():
            return d
    return here


def resolve_uri(uri: str, root: Path | None = None) -> str:
    """``sqlite:///relative.db`` → an absolute SQLite URI under :func:`project_root`; other
    URIs (servers, absolute paths) unchanged."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/") and ":memory:" not in uri:
        path = uri[len(prefix) :]
        return f"{prefix}{(root or project_root()) / path}"
    return uri


def resolve_path(path: str, root: Path | None = None) -> Path:
    """A relative ``tracking`` folder (artifact root) under :func:`project_root`."""
    p = Path(path)
    return p if p.is_absolute() else (root or project_root()) / p


def project_run_id() -> str | None:
    """The id of the run `mlflow run` started for this command, if any."""
    return _parent_run_id or os.environ.get(PROJECT_RUN_ENV)


def configure(cfg: TrackingConfig, experiment: str | None = None) -> str:
    """Point MLflow at the configured store and experiment; returns the experiment id.

    ``$MLFLOW_TRACKING_URI`` overrides ``tracking.tracking_uri`` so users can aim a whole
    pipeline at a shared server without editing params. A relative SQLite URI and artifact
    root are resolved against :func:`project_root`. New experiments keep artifacts under
    ``tracking.artifact_root`` (a local folder by default).

    Under `mlflow run`, the experiment is the one holding the project run `mlflow run`
    started (its ``--experiment-name``, else Default): every model run nests under the
    project run there, where the UI shows them together.
    """
    global _parent_run_id, _echoed_params_uri, _experiment_id
    launched = os.environ.pop("MLFLOW_RUN_ID", None)
    if launched:
        os.environ[PROJECT_RUN_ENV] = launched
    _parent_run_id = os.environ.get(PROJECT_RUN_ENV) or None
    user = user_tracking_uri()
    uri = user or resolve_uri(cfg.tracking_uri)
    mlflow.set_tracking_uri(uri)
    _echoed_params_uri = None if user else os.environ.get(TRACKING_ENV)
    client = mlflow.MlflowClient()
    if _parent_run_id:
        exp_id = client.get_run(_parent_run_id).info.experiment_id
    else:
        name = experiment or cfg.experiment
        exp = mlflow.get_experiment_by_name(name)
        if exp is None:
            location = None
            if uri.startswith("sqlite:") or uri.startswith("file:") or "://" not in uri:
                location = resolve_path(cfg.artifact_root).resolve().as_uri()
            exp_id = mlflow.create_experiment(name, artifact_location=location)
        else:
            exp_id = exp.experiment_id
    if client.get_experiment(exp_id).tags.get(EXPERIMENT_KIND_TAG) is None:
        client.set_experiment_tag(exp_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    mlflow.set_experiment(experiment_id=exp_id)
    _experiment_id = exp_id
    return exp_id


def provenance() -> dict[str, str]:
    """Git commit and the hash of dvc.lock (which pins the data) for run tags."""
    tags: dict[str, str] = {}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=False).stdout.strip()  # fmt: skip
        if commit:
            tags["mlflow.source.git.commit"] = commit
            tags["git_commit"] = commit
    except (OSError, subprocess.SubprocessError):
        pass
    lock = Path("dvc.lock")
    if lock.exists():
        tags["dvc_lock_md5"] = hashlib.md5(lock.read_bytes()).hexdigest()
    return tags


def flatten(prefix: str, obj: Any) -> dict[str, Any]:
    """Nested dicts/dataclass dicts → flat ``a.b.c`` keys for ``mlflow.log_params``."""
    out: dict[str, Any] = {}
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            out.update(flatten(f"{prefix}.{k}" if prefix else str(k), v))
    else:
        out[prefix] = obj
    return out


@contextmanager
def run(name: str, params: Mapping[str, Any] | None = None, tags: Mapping[str, str] | None = None,
        run_id: str | None = None, nested: bool = False) -> Iterator[mlflow.ActiveRun]:  # fmt: skip
    """An MLflow run with provenance tags; ``run_id`` re-opens an existing run.

    A ``run_id`` that this store does not hold (model files pulled with DVC from another
    clone's run, or a deleted run) gets a new run named ``name`` instead, tagged with the
    missing id. Inside `mlflow run` the run is nested under the project's run.
    """
    if run_id is not None and not _run_exists(run_id):
        log.warning("MLflow run %s (where this model was trained) is not in %s: the model "
                    "files come from another store (e.g. `dvc pull` from another clone); "
                    "logging to a new run %r instead", run_id, mlflow.get_tracking_uri(), name)  # fmt: skip
        tags = {**(tags or {}), "trained_in_run": run_id}
        run_id = None
    if run_id is not None:
        with reopen(run_id, nested=nested) as active:
            yield active
        return
    parent = project_run_id() if mlflow.active_run() is None else None
    with mlflow.start_run(run_name=name, nested=nested, parent_run_id=parent) as active:
        mlflow.set_tags({**provenance(), **(tags or {})})
        if params:
            flat = flatten("", dict(params))
            items = list(flat.items())
            for i in range(0, len(items), 100):  # MLflow caps a batch at 100 params
                mlflow.log_params(dict(items[i : i + 100]))
        yield active


@contextmanager
def reopen(run_id: str, nested: bool = False) -> Iterator[mlflow.ActiveRun]:
    """Re-open an existing run to add metrics, tags or artifacts, whichever experiment holds it.

    MLflow refuses to re-open a run outside the active experiment (e.g. evaluating under
    `mlflow run` models that `dvc repro` trained); the active experiment is put back after.
    """
    active_exp = _experiment_id
    run_exp = mlflow.MlflowClient().get_run(run_id).info.experiment_id
    if active_exp is not None and active_exp != run_exp:
        mlflow.set_experiment(experiment_id=run_exp)
    try:
        with mlflow.start_run(run_id=run_id, nested=nested) as active:
            yield active
    finally:
        if active_exp is not None and active_exp != run_exp:
            mlflow.set_experiment(experiment_id=active_exp)


def _run_exists(run_id: str) -> bool:
    try:
        return mlflow.MlflowClient().get_run(run_id).info.lifecycle_stage == "active"
    except MlflowException:
        return False


def epoch_logger(prefix: str):
    """A trainer callback that logs each epoch's losses as MLflow metrics (step = epoch)."""

    def log_epoch(row: Mapping[str, float]) -> None:
        step = int(row["epoch"])
        mlflow.log_metrics(
            {f"{prefix}/{k}": float(v) for k, v in row.items() if k != "epoch"}, step=step
        )

    return log_epoch

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
# Under `mlflow run`, MLflow exports the project run's id; our per-model runs nest under it.
_parent_run_id: str | None = None
# mlflow.set_tracking_uri also writes $MLFLOW_TRACKING_URI; a URI we took from params and
# MLflow echoed there is not a user override.
_echoed_params_uri: str | None = None


def user_tracking_uri() -> str | None:
    """``$MLFLOW_TRACKING_URI`` when the user (or ``mlflow run``) set it; None when it is only
    the echo of an earlier :func:`configure` in this process."""
    value = os.environ.get(TRACKING_ENV)
    return value if value and value != _echoed_params_uri else None


def configure(cfg: TrackingConfig, experiment: str | None = None) -> str:
    """Point MLflow at the configured store and experiment; returns the experiment id.

    ``$MLFLOW_TRACKING_URI`` overrides ``tracking.tracking_uri`` so users can aim a whole
    pipeline at a shared server without editing params. New experiments keep artifacts under
    ``tracking.artifact_root`` (a local folder by default).
    """
    global _parent_run_id, _echoed_params_uri
    # mlflow.start_run() would otherwise re-open that one run for every model we train.
    _parent_run_id = os.environ.pop("MLFLOW_RUN_ID", None) or _parent_run_id
    user = user_tracking_uri()
    uri = user or cfg.tracking_uri
    mlflow.set_tracking_uri(uri)
    _echoed_params_uri = None if user else os.environ.get(TRACKING_ENV)
    name = experiment or cfg.experiment
    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        location = None
        if uri.startswith("sqlite:") or uri.startswith("file:") or "://" not in uri:
            location = Path(cfg.artifact_root).resolve().as_uri()
        exp_id = mlflow.create_experiment(name, artifact_location=location)
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
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
    if _parent_run_id and mlflow.active_run() is None:
        with (
            mlflow.start_run(run_id=_parent_run_id),
            run(name, params, tags, run_id, True) as child,
        ):
            yield child
        return
    with mlflow.start_run(
        run_id=run_id, run_name=None if run_id else name, nested=nested
    ) as active:
        if run_id is None:
            mlflow.set_tags({**provenance(), **(tags or {})})
            if params:
                flat = flatten("", dict(params))
                items = list(flat.items())
                for i in range(0, len(items), 100):  # MLflow caps a batch at 100 params
                    mlflow.log_params(dict(items[i : i + 100]))
        yield active


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

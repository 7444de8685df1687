"""Optuna's RDB storage with heartbeats: SQLite on one machine, PostgreSQL for many.

Every worker of a study, on any machine, opens the same URL; Optuna's own distributed mode
needs nothing else. A worker's running trial sends a heartbeat every
``tune.heartbeat_interval`` s; once it is older than ``tune.grace_period`` s, the next
worker that starts a trial marks it FAIL and ``on_stale`` runs (retry + MLflow clean-up).
:class:`LostTrialWatch` adds the case Optuna's check skips: a trial whose worker died before
its first heartbeat.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import optuna
import sqlalchemy
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from ecglatent.config import TuneConfig
from ecglatent.errors import EcglatentError

log = logging.getLogger(__name__)
StaleCallback = Callable[[optuna.Study, FrozenTrial], None]

try:  # Optuna >= 4.9 renamed the retry callback and its storage argument.
    from optuna.storages import RetryHeartbeatStaleTrialCallback as RetryCallback
except ImportError:  # pragma: no cover - older Optuna
    from optuna.storages import RetryFailedTrialCallback as RetryCallback

_STALE_KW = (
    "heartbeat_stale_trial_callback"
    if "heartbeat_stale_trial_callback" in inspect.signature(optuna.storages.RDBStorage).parameters
    else "failed_trial_callback"
)
POSTGRES_HINT = "postgresql://USER:PASSWORD@HOST:5432/DBNAME"


def masked(url: str) -> str:
    """``url`` with its password hidden, for logs, messages and MLflow tags."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1] if "@" in url else url


def _with_installed_driver(url: sqlalchemy.engine.URL) -> sqlalchemy.engine.URL:
    """A plain ``postgresql://`` URL with the PostgreSQL driver that is installed.

    SQLAlchemy 2.1 maps ``postgresql://`` to psycopg 3, while ``ecglatent[postgres]`` installs
    psycopg2; without this, the URL every PostgreSQL guide shows would not work.
    """
    if url.drivername != "postgresql":
        return url
    for module, driver in (("psycopg", "psycopg"), ("psycopg2", "psycopg2")):
        if importlib.util.find_spec(module) is not None:
            return url.set(drivername=f"postgresql+{driver}")
    return url


def _engine_kwargs(url: sqlalchemy.engine.URL) -> dict:
    backend = url.get_backend_name()
    if backend == "sqlite":
        # Several local workers share one file: wait for a lock instead of failing at once.
        return {"connect_args": {"timeout": 60}}
    if backend == "postgresql":
        # Fail fast on a wrong host and survive a restarted server between trials.
        return {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    return {"pool_pre_ping": True}


def open_storage(
    url: str, cfg: TuneConfig, on_stale: StaleCallback | None = None, heartbeat: bool = True
) -> optuna.storages.RDBStorage:
    """The study database at ``url``, or an :class:`EcglatentError` that says how to fix it."""
    if not url or "://" not in url:
        raise EcglatentError(
            f"Optuna storage {url!r} is not a database URL; use sqlite:///optuna.db "
            f"(one machine) or {POSTGRES_HINT} (many workers or machines)"
        )
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except Exception as exc:
        raise EcglatentError(
            f"Optuna storage {url!r} is not a valid URL ({exc}); e.g. sqlite:///optuna.db or "
            f"{POSTGRES_HINT}"
        ) from None
    parsed = _with_installed_driver(parsed)
    url = parsed.render_as_string(hide_password=False)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict = {"engine_kwargs": _engine_kwargs(parsed)}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            warnings.simplefilter("ignore", FutureWarning)
            if heartbeat:
                kwargs.update(
                    heartbeat_interval=cfg.heartbeat_interval, grace_period=cfg.grace_period
                )
                kwargs[_STALE_KW] = on_stale or RetryCallback(max_retry=cfg.max_retry)
            return optuna.storages.RDBStorage(url, **kwargs)
    except ImportError as exc:
        hint = (
            "pip install 'ecglatent[postgres]' (psycopg2-binary)"
            if parsed.get_backend_name() == "postgresql"
            else "install the database driver for this URL"
        )
        raise EcglatentError(f"Optuna storage {masked(url)}: {exc}; {hint}") from None
    except (sqlalchemy.exc.SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise EcglatentError(
            f"cannot open Optuna storage {masked(url)}: {reason}. Check that the database "
            f"server is running and reachable from this machine and that the URL is right "
            f"({POSTGRES_HINT}, the database created with `createdb`), or use the local "
            f"default sqlite:///optuna.db"
        ) from None


class LostTrialWatch:
    """Fails the running trials whose worker is gone, and runs the storage's stale callback.

    Optuna's own check (``optuna.storages.fail_stale_trials``) fails a trial whose heartbeat
    is older than the grace period, but it skips a RUNNING trial with no heartbeat at all
    (``RDBStorage._get_stale_trial_ids``). A worker killed between creating a trial and its
    first heartbeat, a window of milliseconds, would leave that trial RUNNING for ever and the
    study's other workers waiting for it. This watch also fails such a trial once *this*
    process has seen it without a heartbeat for longer than the grace period. It measures
    that time on its own monotonic clock, so clocks of different machines never meet.
    """

    def __init__(self, grace_period: float) -> None:
        self.grace_period = grace_period
        self._first_seen: dict[int, float] = {}

    def __call__(self, study: optuna.Study) -> list[int]:
        """Fail stale and heartbeat-less lost trials of ``study``; returns the trial ids failed here."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        storage = study._storage
        rdb = getattr(storage, "_backend", storage)  # Optuna wraps RDBStorage in a cache
        if not isinstance(rdb, optuna.storages.RDBStorage) or rdb.heartbeat_interval is None:
            return []
        now = time.monotonic()
        ids = heartbeatless_running_trials(rdb, study._study_id)
        self._first_seen = {i: self._first_seen.get(i, now) for i in ids}
        lost = [i for i, seen in self._first_seen.items() if now - seen > self.grace_period]
        failed = []
        for trial_id in lost:
            try:
                if storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                    failed.append(trial_id)
            except UpdateFinishedTrialError:
                pass  # it finished, or another worker failed it first
            self._first_seen.pop(trial_id, None)
        callback = rdb.get_heartbeat_stale_trial_callback()
        for trial_id in failed:
            trial = storage.get_trial(trial_id)
            log.warning("trial %d: RUNNING without a heartbeat for over %.0f s (its worker was "
                        "lost before the first heartbeat); marked FAIL", trial.number,
                        self.grace_period)  # fmt: skip
            if callback is not None:
                callback(study, trial)
        return failed


def heartbeatless_running_trials(storage: optuna.storages.RDBStorage, study_id: int) -> list[int]:
    """Ids of the study's RUNNING trials that have no heartbeat row in Optuna's schema."""
    from optuna.storages._rdb import models

    session = storage.scoped_session()
    try:
        rows = (
            session.query(models.TrialModel.trial_id)
            .outerjoin(
                models.TrialHeartbeatModel,
                models.TrialHeartbeatModel.trial_id == models.TrialModel.trial_id,
            )
            .filter(models.TrialModel.study_id == study_id)
            .filter(models.TrialModel.state == TrialState.RUNNING)
            .filter(models.TrialHeartbeatModel.trial_heartbeat_id.is_(None))
            .all()
        )
    finally:
        session.close()
    return [int(r[0]) for r in rows]

"""Create, load and check a study: directions, sampler, pruner and the objective it measures."""

from __future__ import annotations

import logging
import socket
import warnings
import zlib
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.exceptions import ExperimentalWarning

from ecglatent.config import Params
from ecglatent.errors import EcglatentError
from ecglatent.pipeline.vae_common import task_of

from .storage import StaleCallback, masked, open_storage

log = logging.getLogger(__name__)
OBJECTIVE_ATTR = "objective"
METRICS = ("val_auroc", "val_mse")
SAMPLERS = ("tpe", "random", "nsga2")
PRUNERS = ("median", "hyperband", "none")
# Small studies on a CPU: leave the random start-up phases short.
TPE_STARTUP_TRIALS = 5
NSGA2_POPULATION = 8
MEDIAN_STARTUP_TRIALS = 4
MEDIAN_WARMUP_STEPS = 2


def objective_config(params: Params) -> dict[str, Any]:
    """What makes two trials' values comparable; a study refuses to mix different ones."""
    t = params.tune
    return {"dataset": t.dataset, "task": task_of(params, t.dataset), "n_folds": t.n_folds,
            "pretrain_epochs": t.pretrain_epochs, "finetune_head_epochs": t.finetune_head_epochs,
            "finetune_epochs": t.finetune_epochs, "seed": params.seed, "arch": params.vae.arch}  # fmt: skip


def build_sampler(params: Params, multi_objective: bool, seed: int) -> optuna.samplers.BaseSampler:
    name = params.tune.sampler.strip().lower()
    if name not in SAMPLERS:
        raise EcglatentError(
            f"params.yaml: tune.sampler {params.tune.sampler!r} is unknown; use one of {SAMPLERS}"
        )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if multi_objective or name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=NSGA2_POPULATION, seed=seed)
    return optuna.samplers.TPESampler(n_startup_trials=TPE_STARTUP_TRIALS, seed=seed)


def build_pruner(params: Params, multi_objective: bool) -> optuna.pruners.BasePruner:
    t = params.tune
    name = t.pruner.strip().lower()
    if name not in PRUNERS:
        raise EcglatentError(
            f"params.yaml: tune.pruner {t.pruner!r} is unknown; use one of {PRUNERS}"
        )
    if multi_objective or name == "none":
        return optuna.pruners.NopPruner()  # Optuna cannot prune multi-objective trials
    if name == "hyperband":
        # Resource = fine-tune epochs, counted on across folds (see objective.Objective._fold).
        return optuna.pruners.HyperbandPruner(
            min_resource=min(2, t.finetune_epochs), max_resource=max(1, t.n_folds * t.finetune_epochs),
            reduction_factor=3,
        )  # fmt: skip
    return optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_STARTUP_TRIALS,
                                       n_warmup_steps=MEDIAN_WARMUP_STEPS)  # fmt: skip


def sampler_seed(base: int, n_existing: int, index: int, workers: int) -> int:
    """Seed of one worker's sampler.

    One worker: ``seed + trials already in the study``, so a fresh study replays exactly and a
    resumed one does not redraw its first random points. Several workers get distinct seeds
    (mixed with the host name for several machines); their trial order is not deterministic.
    """
    if workers == 1:
        return base + n_existing
    key = f"{base}:{n_existing}:{socket.gethostname()}:{index}"
    return zlib.crc32(key.encode()) % (2**31)


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return sorted(s.study_name for s in optuna.study.get_all_study_summaries(storage))


def _check_objective(params: Params, study: optuna.Study) -> None:
    stored = study.user_attrs.get(OBJECTIVE_ATTR)
    if stored is None:
        return
    now = objective_config(params)
    diff = {k: (stored.get(k), v) for k, v in now.items() if stored.get(k) != v}
    if diff:
        pretty = ", ".join(f"{k}: study {a!r} vs params {b!r}" for k, (a, b) in diff.items())
        raise EcglatentError(
            f"study {study.study_name!r} measures a different objective ({pretty}); its trials "
            f"would not be comparable. Restore those params or start a new --study name"
        )


def create_or_load(params: Params, name: str, url: str, multi_requested: bool,
                   on_stale: StaleCallback | None = None) -> tuple[optuna.Study, bool]:  # fmt: skip
    """The study ``name`` at ``url``, created on first use; returns it and whether it has two
    objectives (an existing study keeps the directions it was created with)."""
    storage = open_storage(url, params.tune, on_stale)
    exists = name in study_names(storage)
    multi = multi_requested
    if exists:
        probe = optuna.load_study(study_name=name, storage=storage)
        multi = len(probe.directions) > 1
        if multi_requested and not multi:
            raise EcglatentError(
                f"study {name!r} in {masked(url)} is single-objective; drop --multi-objective "
                f"(and tune.multi_objective) to resume it, or start a new --study name"
            )
        _check_objective(params, probe)
    pruner = build_pruner(params, multi)
    sampler = build_sampler(params, multi, params.seed)
    directions = ["maximize", "minimize"] if multi else ["maximize"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        study = optuna.create_study(storage=storage, study_name=name, directions=directions,
                                    sampler=sampler, pruner=pruner, load_if_exists=True)  # fmt: skip
        if not exists:
            study.set_metric_names(list(METRICS[: len(directions)]))
            study.set_user_attr(OBJECTIVE_ATTR, objective_config(params))
            log.info("study %s created in %s (%s)", name, masked(url),
                     "maximise val AUROC, minimise val MSE" if multi else "maximise val AUROC")  # fmt: skip
        else:
            log.info("study %s resumed from %s: %d trials so far", name, masked(url),
                     len(study.trials))  # fmt: skip
    return study, multi


def load_for_work(params: Params, name: str, url: str, on_stale: StaleCallback, index: int,
                  workers: int) -> optuna.Study:  # fmt: skip
    """The study as a worker uses it: its own seeded sampler, the study's pruner."""
    storage = open_storage(url, params.tune, on_stale)
    try:
        probe = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise EcglatentError(f"no study {name!r} in {masked(url)}") from None
    multi = len(probe.directions) > 1
    seed = sampler_seed(params.seed, len(probe.trials), index, workers)
    return optuna.load_study(study_name=name, storage=storage,
                             sampler=build_sampler(params, multi, seed),
                             pruner=build_pruner(params, multi))  # fmt: skip


def load_existing(params: Params, name: str, url: str) -> optuna.Study:
    """A study that must exist already (for reading), with the fix when it does not."""
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except Exception:
        parsed = None
    sqlite = parsed is not None and parsed.get_backend_name() == "sqlite" and parsed.database
    if sqlite and not Path(parsed.database).expanduser().exists():
        raise EcglatentError(
            f"no Optuna database at {parsed.database}; run `ecglatent tune --study {name}` "
            f"first or pass --storage URL"
        )
    storage = open_storage(url, params.tune, heartbeat=False)
    names = study_names(storage)
    if name not in names:
        raise EcglatentError(
            f"no study {name!r} in {masked(url)}; studies there: {', '.join(names) or 'none'} "
            f"(pass --storage URL for another database)"
        )
    return optuna.load_study(study_name=name, storage=storage)

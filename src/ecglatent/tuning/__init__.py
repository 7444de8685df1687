"""Optuna studies over the β-VAE recipe, tracked in MLflow (`ecglatent tune`, `tune-best`).

Modules: ``space`` (search space from params.yaml), ``storage`` (RDB storage, heartbeats),
``studies`` (create/load, sampler, pruner), ``objective`` (CV-fold training and probing),
``worker`` (one worker process), ``mlflow_log`` (parent and nested runs), ``report``
(trials table, plots, Pareto front), ``best_model`` (retrain and register the best trial),
``study`` (the two commands).
"""

from __future__ import annotations

__all__ = ["best_params", "run_tune"]


def __getattr__(name: str):
    # Lazy: `import ecglatent.tuning` must not pull torch and MLflow in.
    if name in __all__:
        from . import study

        return getattr(study, name)
    raise AttributeError(name)

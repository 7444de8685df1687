"""The best trial's model: retrained, probed on the test set, logged and registered.

Registration competes on the probe's inner patient-grouped CV AUROC on train+val (as the
evaluate stage does); the test AUROC is reported (metric and version tag), never compared.

The trial's own fold models are not kept (a trial is a score, not a model). The best params
are retrained on fold 0's train/val roles (the pipeline's default roles) with the study's
epoch caps; the probe is fitted on train+val and scored on the untouched test set, as the
evaluate stage does, so the registered version competes fairly for the `champion` alias of
the pipeline's registered model (``ecg-task-vae-<dataset>-<task>``).
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from ecglatent.config import Params
from ecglatent.datasets.arrays import load_dataset
from ecglatent.evaluation.baselines import reconstruction_metrics
from ecglatent.evaluation.probes import evaluate_features
from ecglatent.pipeline.vae_common import task_of
from ecglatent.pipeline.vae_evaluate import _log_pyfunc
from ecglatent.tracking import registry, runs
from ecglatent.training.device import pick_device
from ecglatent.training.trainer import TensorSet

from .objective import PROBE_FOLDS, features, prepare_fold, train_vae
from .space import Settings

log = logging.getLogger(__name__)


def retrain_and_register(params: Params, settings: Settings, study_name: str, trial_number: int,
                         parent_run_id: str) -> dict[str, Any]:  # fmt: skip
    """Retrain ``settings`` on fold 0, log the served pyfunc into the parent run, register it.

    Returns the test metrics and, when ``tracking.register``, the registered version.
    """
    dataset = params.tune.dataset
    device = pick_device(params.vae.device)
    data = load_dataset(dataset, params)
    fd = prepare_fold(params, data, 0, device)
    prefix = f"best/trial{trial_number}"
    with runs.reopen(parent_run_id):

        def on_epoch(phase: str, model, row: dict[str, float]) -> None:
            runs.epoch_logger(f"{prefix}/{phase}")(row)

        with tempfile.TemporaryDirectory(prefix="ecglatent-best-") as tmp:
            model = train_vae(params, settings, fd, Path(tmp), on_epoch)
        model = model.cpu().eval()
        # Probe on every train+val item (fold 0's scaling), scored once on the test set.
        dev = np.isin(data.role, ["train", "val"])
        test = data.role == "test"

        def tensors(mask: np.ndarray) -> TensorSet:
            return TensorSet.from_numpy(fd.norm.x(data.x[mask]), fd.norm.rr(data.rr[mask]),
                                        data.y[mask], torch.device("cpu"))  # fmt: skip

        f_dev, _ = features(model, tensors(dev))
        f_te, rec_te = features(model, tensors(test))
        ok_dev, ok_te = np.isfinite(data.y[dev]), np.isfinite(data.y[test])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ev = evaluate_features(f_dev[ok_dev], data.y[dev][ok_dev], f_te[ok_te],
                                   data.y[test][ok_te], seed=params.seed, n_folds=PROBE_FOLDS,
                                   groups=data.groups[dev][ok_dev])  # fmt: skip
        mse, corr = reconstruction_metrics(data.x[test], fd.norm.x_inverse(rec_te))
        b = ev.best
        metrics = {"val_cv_auroc": ev.validation_auroc, "test_auroc": b.auroc.auc,
                   "test_auroc_lo": b.auroc.lo,
                   "test_auroc_hi": b.auroc.hi, "test_f1": b.f1_macro, "test_mse": mse,
                   "test_corr": corr}  # fmt: skip
        mlflow.log_metrics({f"best/{k}": float(v) for k, v in metrics.items()}, step=trial_number)
        info = _log_pyfunc(params, dataset, model, fd.norm, ev, data)
        out: dict[str, Any] = {**metrics, "model_uri": info.model_uri, "probe": b.penalty}
        mlflow.set_tags({"best_trial": str(trial_number), "best_model_uri": info.model_uri})
        if params.tracking.register:
            name = registry.model_name(
                params.tracking.model_prefix, dataset, task_of(params, dataset)
            )
            # the validation (inner-CV) AUROC decides the alias; the test AUROC is a tag
            version, champion = registry.register_vae(info.model_uri, name, ev, {
                "model": f"tune/{study_name}/trial-{trial_number}", "dataset": dataset,
                "optuna_study": study_name, "optuna_trial": str(trial_number),
                "settings": str(settings.as_dict())})  # fmt: skip
            out.update(registered_model=name, version=version, champion=champion)
    log.info("best trial %d retrained: test AUROC %.4f [%.4f, %.4f], MSE %.4g%s", trial_number,
             b.auroc.auc, b.auroc.lo, b.auroc.hi, mse,
             f"; registered {out['registered_model']} v{out['version']}"
             + (" (champion)" if out["champion"] else "") if "version" in out else "")  # fmt: skip
    return out

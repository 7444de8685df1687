"""`pretrain` and `finetune` stages of the task-specific β-VAE, one MLflow run per model."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import mlflow
import torch

from ecglatent.config import Params
from ecglatent.models.registry import build_vae
from ecglatent.models.small_vae import count_parameters
from ecglatent.pipeline.vae_common import (
    Prepared,
    load_model,
    model_dir,
    prepare,
    save_model,
    task_of,
    write_curve,
)
from ecglatent.tracking import datasets, runs
from ecglatent.training.trainer import PhaseSpec, fit_phase

log = logging.getLogger(__name__)


def _spec(params: Params, phase: str, beta: float, dataset: str, balanced: bool,
          cuda: bool) -> PhaseSpec:  # fmt: skip
    v = params.vae
    ph = getattr(v, phase)
    return PhaseSpec(phase=phase, lr=ph.lr, max_epochs=ph.max_epochs, beta=beta, gamma=v.gamma,
                     batch_size=v.batch_size, weight_decay=v.weight_decay, grad_clip=v.grad_clip,
                     patience=v.patience, max_train_items=v.max_train_items.get(dataset, 0),
                     balanced=balanced, amp=v.amp and cuda, compile=v.compile)  # fmt: skip


def experiment_name(params: Params, dataset: str) -> str:
    return f"{params.tracking.experiment}-{dataset}-{task_of(params, dataset)}".lower()


def _common_params(params: Params, dataset: str, prep: Prepared) -> dict:
    return {"dataset": dataset, "seed": params.seed, "vae": asdict(params.vae),
            "n_train": len(prep.train), "n_val": len(prep.val)}  # fmt: skip


def run_pretrain(params: Params, dataset: str) -> dict[str, float]:
    """Pretrain every model of ``vae.pretrain_models`` on reconstruction + β·KL."""
    prep = prepare(params, dataset)
    runs.configure(params.tracking, experiment_name(params, dataset))
    out_dir = model_dir(params, dataset, "pretrain")
    best = {}
    for name, spec in params.vae.pretrain_models.items():
        beta = params.vae.beta if spec.beta is None else spec.beta
        # torch seeds its default generator at random on start-up: without this the init
        # (and so every result) would change from run to run
        torch.manual_seed(params.seed)
        model = build_vae(params.vae.arch, prep.data.x.shape[1], prep.data.x.shape[2],
                          spec.latent_dim, None, params.vae.dropout).to(prep.device)  # fmt: skip
        n_params = count_parameters(model)
        log.info("pretrain %s/%s: %s VAE, L=%d, beta=%g, %d parameters", dataset, name,
                 params.vae.arch, spec.latent_dim, beta, n_params)  # fmt: skip
        with runs.run(f"{dataset}/pretrain/{name}", _common_params(params, dataset, prep),
                      {"stage": "pretrain", "model": name, "dataset": dataset}) as active:  # fmt: skip
            datasets.log_beats(params, dataset, prep.data)
            mlflow.log_params({"latent_dim": spec.latent_dim, "latent_pred": 0, "beta_used": beta,
                               "n_parameters": n_params})  # fmt: skip
            result = fit_phase(model, prep.train, prep.val,
                               _spec(params, "pretrain", beta, dataset, False, prep.device.type == "cuda"),
                               out_dir / f"{name}.ckpt", params.seed,
                               runs.epoch_logger("pretrain"))  # fmt: skip
            mlflow.log_metrics({"pretrain/best_val_loss": result.best_val,
                                "pretrain/best_epoch": result.best_epoch})  # fmt: skip
            save_model(out_dir / f"{name}.pt", model, prep.normaliser,
                       {"beta": beta, "run_id": active.info.run_id, "history": result.history,
                        "dataset": dataset, "name": name, "n_parameters": n_params})  # fmt: skip
        write_curve(Path(params.tracking.reports_dir) / "curves" / dataset / "pretrain" / f"{name}.csv",
                    result.history)  # fmt: skip
        best[name] = result.best_val
    return best


def run_finetune(params: Params, dataset: str) -> dict[str, float]:
    """Two-step fine-tune of each ``vae.finetune_models`` entry: head only, then end to end."""
    prep = prepare(params, dataset)
    runs.configure(params.tracking, experiment_name(params, dataset))
    src_dir = model_dir(params, dataset, "pretrain")
    out_dir = model_dir(params, dataset, "finetune")
    best = {}
    for name, spec in params.vae.finetune_models.items():
        torch.manual_seed(params.seed)  # the new prediction head's init
        model, base = load_model(src_dir / f"{spec.base}.pt", spec.latent_pred, prep.device)
        beta = float(base["beta"])
        n_params = count_parameters(model)
        with runs.run(f"{dataset}/finetune/{name}", _common_params(params, dataset, prep),
                      {"stage": "finetune", "model": name, "dataset": dataset,
                       "pretrain_run_id": base["run_id"]}) as active:  # fmt: skip
            datasets.log_beats(params, dataset, prep.data)
            mlflow.log_params({"latent_dim": model.latent_dim, "latent_pred": spec.latent_pred,
                               "base": spec.base, "beta_used": beta, "n_parameters": n_params})  # fmt: skip
            history = []
            for phase in ("finetune_head", "finetune"):
                result = fit_phase(model, prep.train, prep.val,
                                   _spec(params, phase, beta, dataset, True, prep.device.type == "cuda"),
                                   out_dir / f"{name}.{phase}.ckpt", params.seed,
                                   runs.epoch_logger(phase))  # fmt: skip
                mlflow.log_metrics({f"{phase}/best_val_loss": result.best_val,
                                    f"{phase}/best_epoch": result.best_epoch})  # fmt: skip
                history += [{"phase": phase, **row} for row in result.history]
                best[name] = result.best_val
            save_model(out_dir / f"{name}.pt", model, prep.normaliser,
                       {"beta": beta, "run_id": active.info.run_id, "history": history,
                        "dataset": dataset, "name": name, "base": spec.base,
                        "n_parameters": n_params})  # fmt: skip
        write_curve(Path(params.tracking.reports_dir) / "curves" / dataset / "finetune" / f"{name}.csv",
                    [{k: v for k, v in row.items() if k != "phase"} for row in history
                     if row["phase"] == "finetune"])  # fmt: skip
    return best

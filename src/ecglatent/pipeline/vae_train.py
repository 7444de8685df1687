"""`pretrain` and `finetune` stages of the task-specific β-VAE, one MLflow run per model."""

from __future__ import annotations

import logging
from dataclasses import asdict, replace

import mlflow
import torch

from ecglatent.config import Params
from ecglatent.models.registry import build_vae
from ecglatent.models.small_vae import count_parameters
from ecglatent.pipeline.vae_common import (
    NAIVE_SUFFIX,
    Prepared,
    checkpoint_dir,
    curve_path,
    load_model,
    model_dir,
    naive_epochs,
    prepare,
    replicate_seed,
    replicates,
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


def naive_spec(params: Params, beta: float, dataset: str, cuda: bool) -> PhaseSpec:
    """Continued pretraining of the task-naive control: the pretraining objective (no head,
    no labels) at the end-to-end fine-tuning rate, for as many epochs as fine-tuning's caps add
    (``naive_epochs``), with the same early stopping on validation loss."""
    base = _spec(params, "pretrain", beta, dataset, False, cuda)
    return replace(base, lr=params.vae.finetune.lr, max_epochs=naive_epochs(params))


def experiment_name(params: Params, dataset: str) -> str:
    return f"{params.tracking.experiment}-{dataset}-{task_of(params, dataset)}".lower()


def _common_params(params: Params, dataset: str, prep: Prepared, replicate: int) -> dict:
    return {"dataset": dataset, "seed": replicate_seed(params, replicate), "replicate": replicate,
            "vae": asdict(params.vae), "n_train": len(prep.train), "n_val": len(prep.val)}  # fmt: skip


def run_pretrain(params: Params, dataset: str) -> dict[str, float]:
    """Pretrain every ``vae.pretrain_models`` model in every replicate; each also continues
    into its task-naive control (``<name>.naive.pt``, see ``naive_spec``)."""
    best = {}
    for k in replicates(params, dataset):
        best.update(_pretrain_replicate(params, dataset, k))
    return best


def _pretrain_replicate(params: Params, dataset: str, k: int) -> dict[str, float]:
    prep = prepare(params, dataset, k)
    seed = replicate_seed(params, k)
    runs.configure(params.tracking, experiment_name(params, dataset))
    out_dir = model_dir(params, dataset, "pretrain", k)
    ckpt_dir = checkpoint_dir(params, dataset, "pretrain", k)
    cuda = prep.device.type == "cuda"
    best = {}
    for name, spec in params.vae.pretrain_models.items():
        beta = params.vae.beta if spec.beta is None else spec.beta
        # torch seeds its default generator at random on start-up: without this the init
        # (and so every result) would change from run to run
        torch.manual_seed(seed)
        model = build_vae(params.vae.arch, prep.data.x.shape[1], prep.data.x.shape[2],
                          spec.latent_dim, None, params.vae.dropout).to(prep.device)  # fmt: skip
        n_params = count_parameters(model)
        log.info("pretrain %s/rep%d/%s: %s VAE, L=%d, beta=%g, %d parameters", dataset, k, name,
                 params.vae.arch, spec.latent_dim, beta, n_params)  # fmt: skip
        with runs.run(f"{dataset}/rep{k}/pretrain/{name}",
                      _common_params(params, dataset, prep, k),
                      {"stage": "pretrain", "model": name, "dataset": dataset,
                       "replicate": str(k)}) as active:  # fmt: skip
            datasets.log_beats(params, dataset, prep.data)
            mlflow.log_params({"latent_dim": spec.latent_dim, "latent_pred": 0, "beta_used": beta,
                               "n_parameters": n_params})  # fmt: skip
            result = fit_phase(model, prep.train, prep.val,
                               _spec(params, "pretrain", beta, dataset, False, cuda),
                               ckpt_dir / f"{name}.ckpt", seed,
                               runs.epoch_logger("pretrain"),
                               label=f"{dataset}/rep{k}/{name}")  # fmt: skip
            mlflow.log_metrics({"pretrain/best_val_loss": result.best_val,
                                "pretrain/best_epoch": result.best_epoch})  # fmt: skip
            meta = {"beta": beta, "run_id": active.info.run_id, "dataset": dataset,
                    "name": name, "n_parameters": n_params, "replicate": k}  # fmt: skip
            # the base every fine-tune of this model starts from
            save_model(out_dir / f"{name}.pt", model, prep.normaliser,
                       {**meta, "history": result.history})  # fmt: skip
            history = [{"phase": "pretrain", **row} for row in result.history]
            more = fit_phase(model, prep.train, prep.val, naive_spec(params, beta, dataset, cuda),
                             ckpt_dir / f"{name}.naive.ckpt", seed,
                             runs.epoch_logger("naive_continue"),
                             label=f"{dataset}/rep{k}/{name} naive")  # fmt: skip
            mlflow.log_metrics({"naive_continue/best_val_loss": more.best_val,
                                "naive_continue/best_epoch": more.best_epoch})  # fmt: skip
            history += [{"phase": "naive_continue", **row} for row in more.history]
            save_model(out_dir / f"{name}{NAIVE_SUFFIX}", model, prep.normaliser,
                       {**meta, "history": history})  # fmt: skip
        write_curve(curve_path(params, dataset, "pretrain", k, name), result.history)
        write_curve(curve_path(params, dataset, "pretrain", k, f"{name}_naive"), more.history)
        best[f"rep{k}/{name}"] = more.best_val
    return best


def run_finetune(params: Params, dataset: str) -> dict[str, float]:
    """Two-step fine-tune of each ``vae.finetune_models`` entry in every replicate."""
    best = {}
    for k in replicates(params, dataset):
        best.update(_finetune_replicate(params, dataset, k))
    return best


def _finetune_replicate(params: Params, dataset: str, k: int) -> dict[str, float]:
    prep = prepare(params, dataset, k)
    seed = replicate_seed(params, k)
    runs.configure(params.tracking, experiment_name(params, dataset))
    src_dir = model_dir(params, dataset, "pretrain", k)
    out_dir = model_dir(params, dataset, "finetune", k)
    ckpt_dir = checkpoint_dir(params, dataset, "finetune", k)
    best = {}
    for name, spec in params.vae.finetune_models.items():
        torch.manual_seed(seed)  # the new prediction head's init
        model, base = load_model(src_dir / f"{spec.base}.pt", spec.latent_pred, prep.device)
        beta = float(base["beta"])
        n_params = count_parameters(model)
        with runs.run(f"{dataset}/rep{k}/finetune/{name}",
                      _common_params(params, dataset, prep, k),
                      {"stage": "finetune", "model": name, "dataset": dataset,
                       "replicate": str(k), "pretrain_run_id": base["run_id"]}) as active:  # fmt: skip
            datasets.log_beats(params, dataset, prep.data)
            mlflow.log_params({"latent_dim": model.latent_dim, "latent_pred": spec.latent_pred,
                               "base": spec.base, "beta_used": beta, "n_parameters": n_params})  # fmt: skip
            history = [{"phase": "pretrain", **row} for row in base["history"]]
            for phase in ("finetune_head", "finetune"):
                result = fit_phase(model, prep.train, prep.val,
                                   _spec(params, phase, beta, dataset, True, prep.device.type == "cuda"),
                                   ckpt_dir / f"{name}.{phase}.ckpt", seed,
                                   runs.epoch_logger(phase),
                                   label=f"{dataset}/rep{k}/{name}")  # fmt: skip
                mlflow.log_metrics({f"{phase}/best_val_loss": result.best_val,
                                    f"{phase}/best_epoch": result.best_epoch})  # fmt: skip
                history += [{"phase": phase, **row} for row in result.history]
                best[f"rep{k}/{name}"] = result.best_val
            save_model(out_dir / f"{name}.pt", model, prep.normaliser,
                       {"beta": beta, "run_id": active.info.run_id, "history": history,
                        "dataset": dataset, "name": name, "base": spec.base,
                        "n_parameters": n_params, "replicate": k})  # fmt: skip
        write_curve(curve_path(params, dataset, "finetune", k, name),
                    [{k2: v for k2, v in row.items() if k2 != "phase"} for row in history
                     if row["phase"] == "finetune"])  # fmt: skip
    return best

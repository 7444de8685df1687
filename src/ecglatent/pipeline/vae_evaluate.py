"""`evaluate` stage: Table 1 for every dataset, plots, MLflow metrics and model registration.

Features (latent means + the two RR features) are judged by l1/l2 logistic-regression probes
fitted on train+validation and scored on the test set; the head's output is never used.
"""

from __future__ import annotations

import json
import logging
import pickle
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ecglatent.config import Params  # noqa: E402
from ecglatent.datasets.arrays import BeatArrays, load_dataset  # noqa: E402
from ecglatent.evaluation.baselines import (  # noqa: E402
    pca_features,
    reconstruction_metrics,
    sex_age_features,
)
from ecglatent.evaluation.clustered import auroc_difference  # noqa: E402
from ecglatent.evaluation.plots import factor_traversal, latent_scatter  # noqa: E402
from ecglatent.evaluation.probes import (  # noqa: E402
    FeatureEvaluation,
    evaluate_features,
    probe_latents,
)
from ecglatent.evaluation.replicate_report import POOLED, DatasetSummary  # noqa: E402
from ecglatent.evaluation.report import (  # noqa: E402
    Comparison,
    EvidenceScope,
    ResultRow,
    evidence_markdown,
    table1_markdown,
)
from ecglatent.explorer.latents import explorer_artifacts  # noqa: E402
from ecglatent.explorer.static_page import log_static_page as explorer_page  # noqa: E402
from ecglatent.pipeline.vae_common import (  # noqa: E402
    NAIVE_SUFFIX,
    load_model,
    model_dir,
    replicate_seed,
    replicates,
    task_of,
)
from ecglatent.pipeline.vae_train import experiment_name  # noqa: E402
from ecglatent.tracking import registry, runs  # noqa: E402
from ecglatent.tracking.vae_pyfunc import BUNDLE, PROBE, VAEFeatureModel, save_bundle  # noqa: E402
from ecglatent.training.normalise import Normaliser  # noqa: E402

log = logging.getLogger(__name__)
SCATTER_POINTS = 4000
# Records in the full PTB-XL database (v1.0.3); the default run uses a subset of them.
PTBXL_RECORDS = 21799


def _encode(model, x: np.ndarray, batch: int = 1024) -> np.ndarray:
    """Latent means in eval mode."""
    model.eval()
    with torch.no_grad():
        return np.concatenate([model.encode(torch.as_tensor(x[s : s + batch]))[0].numpy()
                               for s in range(0, len(x), batch)])  # fmt: skip


def _decode(model, mu: np.ndarray, batch: int = 1024) -> np.ndarray:
    """Reconstructions from latent means in eval mode."""
    model.eval()
    with torch.no_grad():
        return np.concatenate([model.decode(torch.as_tensor(mu[s : s + batch])).numpy()
                               for s in range(0, len(mu), batch)])  # fmt: skip


def _cap(mask: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """``mask`` with at most ``cap`` True items, drawn at random (0 = no cap)."""
    idx = np.flatnonzero(mask)
    if not cap or len(idx) <= cap:
        return mask
    out = np.zeros_like(mask)
    out[rng.choice(idx, cap, replace=False)] = True
    return out


def run_evaluate(params: Params) -> dict[str, Any]:
    """Evaluate every replicate of every dataset of ``vae.datasets``; writes reports/ (Table 1
    as mean ± sd over replicates, per-replicate values in metrics.json) and registers models."""
    reports = Path(params.tracking.reports_dir)
    sections: list[str] = []
    scopes: list[EvidenceScope] = []
    kinds: list[str] = []
    n_reps: list[int] = []
    n_comparisons = 0
    metrics: dict[str, Any] = {}
    for dataset in params.vae.datasets:
        summary, scope = evaluate_dataset(params, dataset, reports)
        rows = summary.rows()
        n = max(r.n_replicates or 0 for r in rows.values())
        kind = ("outer folds of strat_fold" if dataset in POOLED else "seeds, DS1 → DS2")
        sections.append(table1_markdown(
            rows.values(), title=f"{scope.dataset}: mean ± sd over {n} {kind}",
            significance=summary.alpha))  # fmt: skip
        n_comparisons += sum(r.across is not None for r in rows.values())
        scopes.append(scope)
        kinds.append(f"{scope.dataset}: {n} {kind}")
        n_reps.append(n)
        metrics[dataset] = {**summary.metrics(rows), "test_set": asdict(scope)}
    table = "\n".join(["# Table 1: reconstruction and prediction on the test sets", "", *sections])
    table += "\n" + evidence_markdown(scopes, n_replicates=min(n_reps, default=0) or None,
                                      replicate_kind="; ".join(kinds),
                                      n_comparisons=n_comparisons or None, notes=NOTES)  # fmt: skip
    (reports / "table1.md").write_text(table)
    (reports / "metrics.json").write_text(
        json.dumps(_finite(metrics), indent=2, sort_keys=True) + "\n"
    )
    log.info("evaluate: wrote %s", reports / "table1.md")
    return metrics


NOTES = (
    "\"Δ across replicates\": mean of specific − naive over replicates with a paired t "
    "interval (the star rests on it). \"Replicates sig. better / worse\": replicates whose own "
    "test (PTB-XL: Hanley & McNeil 1983 when every patient has one test ECG, else a bootstrap "
    "over patients; MIT-BIH: bootstrap over DS2 records) found the specific model significantly "
    "better / worse. PTB-XL's pooled column scores the out-of-fold predictions of all folds "
    "together (every record once).",
    "Task-naive rows had the same epoch budget as the task-specific ones (continued "
    "pretraining), so naive vs specific is not confounded with training length.",
    "Nothing here was chosen on a test set: probes, their C and penalty, and the registered "
    "model are chosen by inner cross-validation on train + validation.",
)


def _finite(obj: Any) -> Any:
    """NaN/inf as null, so `dvc metrics show` and strict JSON parsers can read the file."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def evaluate_dataset(params: Params, dataset: str, reports: Path) -> tuple[DatasetSummary, EvidenceScope]:  # fmt: skip
    summary = DatasetSummary(dataset, seed=params.seed, n_boot=params.vae.bootstrap_samples)
    runs.configure(params.tracking, experiment_name(params, dataset))
    candidates: list[tuple] = []
    n_available = 0
    for k in replicates(params, dataset):
        found, n_available = _evaluate_replicate(params, dataset, k, reports, summary)
        candidates += found
    _register(params, dataset, candidates)
    return summary, evidence_scope(dataset, summary, n_available)


def evidence_scope(dataset: str, summary: DatasetSummary, n_available: int) -> EvidenceScope:
    """Test units and items over all replicates (PTB-XL: the union of the outer folds' test
    sets, every record once; MIT-BIH: DS2, the same in every replicate)."""
    m = next(iter(summary.models.values()))
    ks = sorted(m.groups) if dataset in POOLED else sorted(m.groups)[:1]
    n_units = int(np.unique(np.concatenate([m.groups[k] for k in ks])).size)
    n_items = int(sum(len(m.y[k]) for k in ks))
    if dataset == "ptbxl":
        return EvidenceScope("PTB-XL", n_units, "patients", n_items, "ECGs (records)",
                             n_available, PTBXL_RECORDS, "Hanley & McNeil 1983 when every "
                             "patient has one test ECG, else a bootstrap over patients",
                             population_unit="records")  # fmt: skip
    return EvidenceScope("MIT-BIH DS2", n_units, "records", n_items, "beats",
                         method="bootstrap over records")  # fmt: skip


def _evaluate_replicate(params: Params, dataset: str, k: int, reports: Path,
                        summary: DatasetSummary) -> tuple[list, int]:  # fmt: skip
    data = load_dataset(dataset, params, k)
    seed = replicate_seed(params, k)
    rng = np.random.default_rng(seed)
    # MIT-BIH's ~50k DS1 beats: the probes learn from a random sample of them (their fits and
    # the encoding dominate the stage); every test beat is scored.
    dev = _cap(np.isin(data.role, ["train", "val"]), params.vae.probe_max_items.get(dataset, 0), rng)
    test = data.role == "test"
    if not test.any():
        raise ValueError(f"{dataset} rep{k}: no test items; check the split stage")
    # reconstruction MSE/correlation on a random sample of the test items (a mean: a sample of
    # 10k estimates it closely), so not every test beat is decoded for every model
    n_test = int(test.sum())
    rec_cap = params.vae.recon_max_items.get(dataset, 0)
    rec_sub = np.sort(rng.choice(n_test, rec_cap, replace=False)) if rec_cap and n_test > rec_cap else np.arange(n_test)
    y_tr, y_te = data.y[dev], data.y[test]
    groups = data.groups[dev]
    units = data.groups[test]  # patients (PTB-XL) or records (MIT-BIH): the independent units
    test_ids = units if dataset == "mitdb" else data.meta["record_id"].to_numpy()[test]
    plots = reports / "plots" / dataset
    if k == 0:
        plots.mkdir(parents=True, exist_ok=True)

    def probe(feat_tr: np.ndarray, feat_te: np.ndarray) -> FeatureEvaluation:
        return evaluate_features(feat_tr, y_tr, feat_te, y_te, seed=seed, groups=groups)

    def add(name: str, label: str, L, L_pred, beta, mse, corr, ev: FeatureEvaluation,
            base: str | None = None) -> dict[str, Any]:  # fmt: skip
        vs_naive, entry = None, _metric_dict(ev, mse, corr)
        if base is not None:
            # signed specific − naive; a bootstrap over units when a unit holds several items
            vs_naive = Comparison.from_auc_diff(auroc_difference(
                y_te, evals[base].best.test_logits, ev.best.test_logits, groups=units,
                n_boot=params.vae.bootstrap_samples, seed=seed))  # fmt: skip
            entry.update(diff_vs_naive=round(vs_naive.diff, 6), p_vs_naive=vs_naive.p_value,
                         diff_vs_naive_lo=round(vs_naive.lo, 6),
                         diff_vs_naive_hi=round(vs_naive.hi, 6))  # fmt: skip
        b = ev.best
        row = ResultRow(dataset=dataset, model=label, L=L, L_pred=L_pred, beta=beta, mse=mse,
                        corr=corr, auroc=b.auroc.auc, auroc_lo=b.auroc.lo, auroc_hi=b.auroc.hi,
                        f1=b.f1_macro, vs_naive=vs_naive, replicate=k)  # fmt: skip
        summary.add(name, k, row, entry, b.test_logits, y_te, test_ids, units, base)
        return entry

    evals: dict[str, FeatureEvaluation] = {}
    norm = Normaliser.fit(data.x[dev], data.rr[dev])
    rr_tr, rr_te = norm.rr(data.rr[dev]), norm.rr(data.rr[test])
    if dataset == "ptbxl":
        sa_tr, fill = sex_age_features(data.meta[dev])
        sa_te, _ = sex_age_features(data.meta[test], age_fill=fill)
        add("sex_age", "Sex and age", 2, None, None, None, None, probe(sa_tr, sa_te))
    for L in sorted({m.latent_dim for m in params.vae.pretrain_models.values()}):
        f_tr, f_te, mse, corr = pca_features(data.x[dev], data.x[test], L, seed)
        ev = probe(np.hstack([f_tr, rr_tr]), np.hstack([f_te, rr_te]))
        add(f"pca_L{L}", "PCA", L, None, None, mse, corr, ev)

    candidates = []
    models = [("pretrain", n) for n in params.vae.pretrain_models] + [
        ("finetune", n) for n in params.vae.finetune_models
    ]
    for i, (stage, name) in enumerate(models, 1):
        # minutes per model on a CPU: say which one (model, replicate) is being scored
        log.info("evaluate %s/rep%d: model %d/%d %s (%s): encode, decode, probe", dataset, k, i,
                 len(models), name, "naive" if stage == "pretrain" else "task specific")  # fmt: skip
        fname = f"{name}{NAIVE_SUFFIX}" if stage == "pretrain" else f"{name}.pt"
        model, saved = load_model(model_dir(params, dataset, stage, k) / fname)
        mnorm = Normaliser.from_dict(saved["normaliser"])
        mu_tr = _encode(model, mnorm.x(data.x[dev]))
        mu_te = _encode(model, mnorm.x(data.x[test]))
        rec_te = _decode(model, mu_te[rec_sub])
        mse, corr = reconstruction_metrics(data.x[test][rec_sub], mnorm.x_inverse(rec_te))
        # split-task models ("2 (10)") are probed on their L_pred prediction latents + RR
        lp = model.latent_pred
        ev = probe(np.hstack([probe_latents(mu_tr, lp), mnorm.rr(data.rr[dev])]),
                   np.hstack([probe_latents(mu_te, lp), mnorm.rr(data.rr[test])]))  # fmt: skip
        evals[name] = ev
        beta = float(saved["beta"])
        label = _label(params, stage, name, model.latent_dim, model.latent_pred, beta)
        base = params.vae.finetune_models[name].base if stage == "finetune" else None
        m = add(name, label, model.latent_dim, model.latent_pred, beta, mse, corr, ev, base)
        figs = _plots(model, mu_tr, mu_te, y_te, data, mnorm, name, plots, params) if k == 0 else []
        uri, model_id = None, None
        if stage == "finetune" and k == 0:
            uri, model_id = _log_explorable(params, dataset, name, model, saved, mnorm, ev, data)
        _track(params, stage, name, saved, ev, m, figs, model_id)
        if stage == "finetune":
            candidates.append((ev.validation_auroc, k, name, (uri, ev)))
    return candidates, len(data.y)


def _log_explorable(params: Params, dataset: str, name: str, model, saved: dict, norm: Normaliser,
                    ev: FeatureEvaluation, data: BeatArrays) -> tuple[str, str]:  # fmt: skip
    """Log replicate 0's fine-tuned model as a pyfunc (with the explorer's latents.npz) into
    its run and write its static explorer page, ``reports/explorer/<dataset>/<name>.html`` (also
    a run artifact). One page per fine-tuned model whatever the number of replicates: the pages
    show what a factor encodes, which replicate 0 shows as well as any. Returns the model URI
    and the logged model's id."""
    page = Path(params.tracking.reports_dir) / "explorer" / dataset / f"{name}.html"
    with runs.run(name, run_id=saved["run_id"]):
        info = _log_pyfunc(params, dataset, model, norm, ev, data)
        explorer_page(info.model_uri, page, f"{dataset} {name}")
    return info.model_uri, info.model_id


def _metric_dict(ev: FeatureEvaluation, mse: float | None, corr: float | None) -> dict[str, Any]:
    b = ev.best
    out = {"auroc": b.auroc.auc, "auroc_lo": b.auroc.lo, "auroc_hi": b.auroc.hi, "f1": b.f1_macro,
           "penalty": b.penalty, "auroc_l1": ev.l1.auroc.auc, "auroc_l2": ev.l2.auroc.auc,
           "val_cv_auroc": ev.validation_auroc}  # fmt: skip
    if mse is not None:
        out.update(mse=mse, corr=corr)
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in out.items()}


def _register(params: Params, dataset: str, candidates: list) -> None:
    """One registered model per dataset and evaluate run: the fine-tuned model whose probe has
    the best mean validation (inner-CV) AUROC over replicates; that mean is the version's score.
    The version is that model's replicate 0 (fixed in advance: PTB-XL's folds have different
    validation sets, so their scores do not rank replicates). Test AUROCs are tags only."""
    if not (params.tracking.register and candidates):
        return
    by_name: dict[str, list[float]] = {}
    for cv, _, name, _ in candidates:
        by_name.setdefault(name, []).append(cv)
    name = max(by_name, key=lambda n: (float(np.mean(by_name[n])), n))
    uri, ev = next(c[3] for c in candidates if c[2] == name and c[1] == 0)
    reg_name = registry.model_name(params.tracking.model_prefix, dataset, task_of(params, dataset))
    registry.register_vae(uri, reg_name, ev,
                          {"model": name, "dataset": dataset, "replicate": "0"},
                          validation_auroc=float(np.mean(by_name[name])))  # fmt: skip


def _label(params: Params, stage: str, name: str, L: int, L_pred: int | None, beta: float) -> str:
    arch = "Small VAE" if params.vae.arch == "small" else "FactorECG VAE"
    if stage == "pretrain":
        kind = "task naive"
    elif L_pred is not None and L_pred < L:
        kind = "split task"
    else:
        kind = "task specific"
    extra = f" β = {beta:g}" if beta != params.vae.beta else ""
    return f"{arch} {kind}{extra} [{name}]"


def _plots(model, mu_tr, mu_te, y_te, data: BeatArrays, norm: Normaliser, name: str, out: Path,
           params: Params) -> list[Path]:  # fmt: skip
    def decode(z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return norm.x_inverse(model.decode(torch.as_tensor(z)).numpy())

    paths = []
    leads = data.lead_names
    show = [lead for lead in ("I", "II", "V1", "V5") if lead in leads] or None
    fig = factor_traversal(decode, mu_tr.mean(0), mu_tr.std(0), leads, params.vae.traversal_steps,
                           leads_to_show=show, fs=data.fs, path=out / f"traversal_{name}.png",
                           title=f"{data.name} {name}: factor traversals (μ ± 3σ)")  # fmt: skip
    plt.close(fig)
    paths.append(out / f"traversal_{name}.png")
    if mu_te.shape[1] >= 2:
        rng = np.random.default_rng(params.seed)
        idx = rng.choice(len(mu_te), min(SCATTER_POINTS, len(mu_te)), replace=False)
        fig = latent_scatter(mu_te[idx], y_te[idx], dims=(0, 1),
                             label_names=("rest", task_of(params, data.name)))  # fmt: skip
        fig.savefig(out / f"scatter_{name}.png", dpi=120)
        plt.close(fig)
        paths.append(out / f"scatter_{name}.png")
    return paths


def _track(params: Params, stage: str, name: str, saved: dict, ev: FeatureEvaluation,
           metrics: dict, figs: list[Path], model_id: str | None = None) -> None:  # fmt: skip
    """Log test metrics, the validation score and plots into the model's training run; with
    ``model_id`` the metrics are linked to that logged model too (its page and its registry
    versions show them)."""
    with runs.run(name, run_id=saved["run_id"]):
        mlflow.log_metrics({("val/cv_auroc" if k == "val_cv_auroc" else f"test/{k}"): float(v)
                            for k, v in metrics.items() if isinstance(v, (int, float))},
                           model_id=model_id)  # fmt: skip
        # a tag, not a param: a re-evaluation with another probe may overwrite it
        mlflow.set_tag("probe_penalty", ev.best.penalty)
        for fig in figs:
            mlflow.log_artifact(str(fig), artifact_path="plots")


def _log_pyfunc(params: Params, dataset: str, model, norm: Normaliser, ev: FeatureEvaluation,
                data: BeatArrays):  # fmt: skip
    from ecglatent.tracking.vae_model_io import input_example, signature_for

    mode = "record" if dataset == "ptbxl" else "beat"
    target_fs = data.fs
    with tempfile.TemporaryDirectory() as tmp:
        bundle = save_bundle(Path(tmp) / "vae.pt", model, norm, params.preprocess, target_fs,
                             data.lead_names, mode)  # fmt: skip
        probe_path = Path(tmp) / "probe.pkl"
        probe_path.write_bytes(pickle.dumps(ev.best.pipeline))
        example = input_example(mode, data, params)
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=VAEFeatureModel(),
            artifacts={BUNDLE: str(bundle), PROBE: str(probe_path),
                       **explorer_artifacts(tmp, model, norm, data, task_of(params, dataset), params.seed)},  # fmt: skip
            signature=signature_for(mode, model.latent_dim),
            input_example=example,
            pip_requirements=_requirements(),
            # The package travels with the model, so a fresh environment can load it.
            code_paths=[str(Path(__file__).resolve().parents[1])],
        )


def _requirements() -> list[str]:
    from importlib.metadata import version

    pkgs = [
        "torch",
        "numpy",
        "scipy",
        "pandas",
        "scikit-learn",
        "wfdb",
        "mlflow",
        "pyyaml",
        "neurokit2",
    ]
    return [f"{p}=={version(p).split('+')[0]}" for p in pkgs]

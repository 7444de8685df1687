"""Golden values: every figure the β-VAE pipeline reports, recomputed here from what it saved.

From the tiny run's saved models, splits and beats (``tiny_vae_run``, 2 outer folds, 1 thread,
seed 42), this test recomputes, replicate by replicate, with numpy/scikit-learn/scipy written
out below, not with the project's evaluation functions: the reconstruction MSE in mV on the
replicate's test fold, the probes (L1 and L2 logistic regression, C by patient-grouped inner CV
on the train+val records only; split-task models on their first L_pred latents), the test
AUROC, its Hanley-McNeil 1982 CI, the macro F1 and the signed difference of each fine-tuned
model to its own task-naive base (``<name>.naive.pt``) with its p-value (Hanley & McNeil 1983
when every test patient has one ECG, else a bootstrap over patients, resampled here
independently). Over replicates: mean, sd, the paired t-test and the AUROC of the pooled
out-of-fold predictions. It then checks them against reports/metrics.json and the MLflow runs.
It also checks serve = evaluate: the registered pyfunc, fed the raw WFDB recordings of test
records, returns the latents and probability the evaluation computed from stored beats.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from mlflow import MlflowClient
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ecglatent.pipeline.vae_common import load_model
from ecglatent.sources import ptbxl
from ecglatent.sources.records import read_record
from tests.evaluation.test_auroc_table import _hm1983_by_hand

MODEL = "ecg-task-vae-ptbxl-norm"
CS = np.logspace(-4, 4, 17)


def _probe(X_tr, y_tr, groups, X_te, seed: int, penalty: str):
    """Standardise + class-balanced liblinear logistic regression, C by 5-fold grouped CV."""
    pipe = Pipeline([("s", StandardScaler()),
                     ("lr", LogisticRegression(solver="liblinear", class_weight="balanced",
                                               random_state=seed, max_iter=1000,
                                               l1_ratio=1.0 if penalty == "l1" else 0.0))])  # fmt: skip
    cv = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=seed)
    search = GridSearchCV(pipe, {"lr__C": list(CS)}, scoring="roc_auc", cv=cv, refit=True)
    search.fit(X_tr, y_tr, groups=groups)
    best = search.best_estimator_
    return search.best_score_, best.predict_proba(X_te)[:, 1], best.decision_function(X_te), best


def encode_saved(path: Path, x: np.ndarray, rr: np.ndarray):
    """A saved model, its latent means and reconstructions (mV) of ``x``, and the RR features,
    with the normaliser saved beside it. Returns (model, mu, rec, z_rr)."""
    model, saved = load_model(path)
    model.eval()
    norm = saved["normaliser"]
    z_rr = np.nan_to_num((rr - np.array(norm["rr_mean"])) / np.array(norm["rr_std"]))
    with torch.no_grad():
        mu, _ = model.encode(torch.as_tensor(x / norm["x_scale"]))
        rec = model.decode(mu).numpy() * norm["x_scale"]
    return model, mu.numpy(), rec, z_rr


def best_probe(feats, y, groups, dev, test, seed: int):
    """l1 and l2 probes fitted on ``dev``; the one with the better inner-CV AUROC (ties: l2).
    Returns (penalty, (cv, proba, logit, pipeline))."""
    probes = {pen: _probe(feats[dev], y[dev], groups[dev], feats[test], seed, pen)
              for pen in ("l1", "l2")}  # fmt: skip
    pen = "l1" if probes["l1"][0] > probes["l2"][0] else "l2"
    return pen, probes[pen]


def _ci(auc: float, n_pos: int, n_neg: int) -> tuple[float, float]:
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    se = np.sqrt((auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2))
                 / (n_pos * n_neg))  # fmt: skip
    half = stats.norm.ppf(0.975) * se
    return max(0.0, auc - half), min(1.0, auc + half)


def cluster_bootstrap_diff(y, a, b, groups, n_boot: int, seed: int) -> tuple[float, float, float]:
    """(lo, hi, p) of AUROC(b) − AUROC(a), whole units resampled with replacement.

    Written independently of evaluation/clustered.py: each draw weights every item by how often
    its unit was drawn (sklearn's weighted AUROC, ties ½); the draws are the multinomial counts
    of ``numpy.random.default_rng(seed)``, as the pipeline documents; draws without a positive or
    a negative are skipped; p inverts the percentile interval (+1/(B+1) on each side).
    """
    units, codes = np.unique(groups, return_inverse=True)
    n = len(units)
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=n_boot)
    diffs = []
    for c in counts:
        w = c[codes].astype(float)
        if w[y == 1].sum() == 0 or w[y == 0].sum() == 0:
            continue
        diffs.append(roc_auc_score(y, b, sample_weight=w) - roc_auc_score(y, a, sample_weight=w))
    diffs = np.asarray(diffs)
    # a draw where both models order every pair alike has a difference of exactly 0, which
    # counts on both sides of 0; sklearn's two float sums leave ~1e-16 there instead
    diffs[np.abs(diffs) < 1e-12] = 0.0
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    below = (np.sum(diffs <= 0) + 1) / (len(diffs) + 1)
    above = (np.sum(diffs >= 0) + 1) / (len(diffs) + 1)
    return float(lo), float(hi), float(min(1.0, 2 * min(below, above)))


def check_vs_naive(r: dict, y, naive_logit, logit, groups, n_boot: int, seed: int) -> None:
    """The reported signed difference specific − naive, its interval and p, recomputed."""
    diff = roc_auc_score(y, logit) - roc_auc_score(y, naive_logit)
    assert r["diff_vs_naive"] == pytest.approx(diff, abs=2e-6)
    if len(np.unique(groups)) == len(groups):  # one test item per unit: Hanley & McNeil 1983
        p_hand = _hm1983_by_hand(y, naive_logit, logit)
        assert r["p_vs_naive"] == pytest.approx(p_hand, rel=1e-4, abs=1e-9)
        assert r["diff_vs_naive_lo"] <= r["diff_vs_naive"] <= r["diff_vs_naive_hi"]
        return
    lo, hi, p = cluster_bootstrap_diff(y, naive_logit, logit, groups, n_boot, seed)
    assert (r["diff_vs_naive_lo"], r["diff_vs_naive_hi"]) == pytest.approx((lo, hi), abs=2e-6)
    assert r["p_vs_naive"] == pytest.approx(p, abs=1e-9)


@pytest.fixture(scope="module")
def golden(tiny_vae_run):
    work, params_path = tiny_vae_run
    p = yaml.safe_load(params_path.read_text())
    records = pd.read_csv(work / "data/beats/ptb-xl/records.csv")
    x = np.load(work / "data/beats/ptb-xl/median_beats.npy").astype(np.float32)
    split = pd.read_csv(work / "data/splits/ptb-xl.csv").set_index("record_id")
    split = split.loc[records["record_id"]]
    y = split["label"].to_numpy().astype(int)
    groups = records["patient_id"].to_numpy()
    rr = records[["rr_mean_s", "rr_std_s"]].to_numpy(np.float64)
    out = {}
    for k in range(p["split"]["outer_folds"]):
        role = split[f"rep{k}"].to_numpy()
        test, dev = role == "test", np.isin(role, ["train", "val"])
        seed = int(p["seed"]) + k  # each replicate its own seed
        for stage, names in (("pretrain", p["vae"]["pretrain_models"]),
                             ("finetune", p["vae"]["finetune_models"])):  # fmt: skip
            for name in names:
                fname = f"{name}.naive.pt" if stage == "pretrain" else f"{name}.pt"
                model, mu, rec, z_rr = encode_saved(
                    work / "models/ptbxl" / stage / f"rep{k}" / fname, x, rr)  # fmt: skip
                lp = model.latent_pred or model.latent_dim  # split task: its L_pred latents
                feats = np.hstack([mu[:, :lp], z_rr])
                pen, (cv, proba, logit, pipe) = best_probe(feats, y, groups, dev, test, seed)
                out[(k, name)] = {"mse": float(np.mean((x[test] - rec[test]) ** 2)), "penalty": pen,
                                  "proba": proba, "logit": logit, "mu": mu[test], "cv": cv,
                                  "pipe": pipe, "stage": stage, "y": y[test],
                                  "groups": groups[test], "seed": seed,
                                  "records": records[test].reset_index(drop=True)}  # fmt: skip
    return work, p, out


def test_reported_figures_equal_the_recomputed_ones(golden):
    work, p, out = golden
    reported = json.loads((work / "reports/metrics.json").read_text())["ptbxl"]
    n_boot = p["vae"]["bootstrap_samples"]
    for (k, name), g in out.items():
        r = reported[name][f"rep{k}"]
        y_te = g["y"]
        assert r["penalty"] == g["penalty"], (k, name)
        assert r["val_cv_auroc"] == pytest.approx(g["cv"], abs=2e-6), (k, name)
        assert r["mse"] == pytest.approx(g["mse"], rel=1e-4, abs=2e-6), (k, name)
        auc = roc_auc_score(y_te, g["proba"])
        assert r["auroc"] == pytest.approx(auc, abs=2e-6), (k, name)
        lo, hi = _ci(auc, int(y_te.sum()), int((1 - y_te).sum()))
        assert (r["auroc_lo"], r["auroc_hi"]) == pytest.approx((lo, hi), abs=2e-6), (k, name)
        f1 = f1_score(y_te, (g["logit"] > 0).astype(int), average="macro", zero_division=0)
        assert r["f1"] == pytest.approx(f1, abs=2e-6), (k, name)
        if g["stage"] == "finetune":
            base = p["vae"]["finetune_models"][name]["base"]
            check_vs_naive(r, y_te, out[(k, base)]["logit"], g["logit"], g["groups"], n_boot,
                           g["seed"])  # fmt: skip
        else:
            assert "p_vs_naive" not in r


def test_replicate_summaries_equal_the_recomputed_ones(golden):
    """Mean ± sd over folds, the paired t-test against the naive base, the pooled out-of-fold
    AUROC (every record once) and its CI."""
    work, p, out = golden
    reported = json.loads((work / "reports/metrics.json").read_text())["ptbxl"]
    ks = range(p["split"]["outer_folds"])
    for name in [*p["vae"]["pretrain_models"], *p["vae"]["finetune_models"]]:
        r = reported[name]
        aucs = np.array([roc_auc_score(out[(k, name)]["y"], out[(k, name)]["proba"]) for k in ks])
        assert r["auroc"] == pytest.approx(aucs.mean(), abs=2e-6)
        assert r["auroc_sd"] == pytest.approx(aucs.std(ddof=1), abs=2e-6)
        y = np.concatenate([out[(k, name)]["y"] for k in ks])
        s = np.concatenate([out[(k, name)]["proba"] for k in ks])
        assert len(y) == len(pd.read_csv(work / "data/splits/ptb-xl.csv"))
        auc = roc_auc_score(y, s)
        lo, hi = _ci(auc, int(y.sum()), int((1 - y).sum()))
        assert (r["pooled_oof"]["auroc"], r["pooled_oof"]["lo"], r["pooled_oof"]["hi"]) == \
            pytest.approx((auc, lo, hi), abs=2e-6)  # fmt: skip
        if name in p["vae"]["finetune_models"]:
            base = p["vae"]["finetune_models"][name]["base"]
            naive = np.array([roc_auc_score(out[(k, base)]["y"], out[(k, base)]["proba"]) for k in ks])
            t = stats.ttest_rel(aucs, naive)
            assert r["across_replicates"]["diff"] == pytest.approx((aucs - naive).mean(), abs=2e-6)
            assert r["across_replicates"]["p_value"] == pytest.approx(t.pvalue, abs=1e-6)


def test_mlflow_runs_hold_the_same_figures(golden, tiny_vae_run):
    work, _, out = golden
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    exp = client.get_experiment_by_name("ecglatent-vae-ptbxl-norm")
    reported = json.loads((work / "reports/metrics.json").read_text())["ptbxl"]
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    for (k, name), g in out.items():
        m = runs[f"ptbxl/rep{k}/{g['stage']}/{name}"].data.metrics
        for key in ("auroc", "auroc_lo", "auroc_hi", "f1", "mse"):
            assert m[f"test/{key}"] == pytest.approx(reported[name][f"rep{k}"][key], abs=1e-9), (
                k, name, key)  # fmt: skip
        assert m["val/cv_auroc"] == pytest.approx(g["cv"], abs=2e-6)


def test_served_model_equals_the_evaluation(golden, mirror):
    """Serve = evaluate: the champion pyfunc on raw test recordings gives the latents and
    probability of the evaluation (stored median beats → encoder → probe)."""
    work, _, out = golden
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    client = MlflowClient()
    mv = client.get_model_version_by_alias(MODEL, "champion")
    g = out[(int(mv.tags["replicate"]), mv.tags["model"])]
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    root = mirror / "ptb-xl"
    db = ptbxl.read_database(root)
    rows = []
    for rid in g["records"]["record_id"][:4]:
        rec = read_record(ptbxl.record_path(root, db.loc[int(rid)], 500))
        rows.append({"signal": rec.signal.tolist(), "fs": rec.fs, "leads": list(rec.leads)})
    served = model.predict(pd.DataFrame(rows))
    assert (served["quality"] == "ok").all()
    lat = served.filter(like="latent_").to_numpy()
    np.testing.assert_allclose(lat, g["mu"][:4], rtol=0, atol=1e-4)
    np.testing.assert_allclose(served["probability"], g["proba"][:4], rtol=0, atol=1e-5)
    assert np.ptp(g["proba"]) > 1e-3  # the probe does tell the records apart

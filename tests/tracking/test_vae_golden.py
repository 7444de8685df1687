"""Golden values: every figure the β-VAE pipeline reports, recomputed here from what it saved.

From the tiny run's saved models, splits and beats (``tiny_vae_run``, 1 thread, seed 42), this
test recomputes with numpy/scikit-learn/scipy written out below, not with the project's
evaluation functions: the reconstruction MSE in mV on the test split, the probes (L1 and L2
logistic regression, C by patient-grouped inner CV on the train+val records only), the test
AUROC, its Hanley-McNeil 1982 CI, the macro F1 and the 1983 p-value of each fine-tuned model
against its own task-naive base. It then checks them against reports/metrics.json and the
MLflow runs. It also checks serve = evaluate: the registered pyfunc, fed the raw WFDB recordings
of test records, returns the latents and probability the evaluation computed from stored beats.
"""

from __future__ import annotations

import json

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


def _ci(auc: float, n_pos: int, n_neg: int) -> tuple[float, float]:
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    se = np.sqrt((auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2))
                 / (n_pos * n_neg))  # fmt: skip
    half = stats.norm.ppf(0.975) * se
    return max(0.0, auc - half), min(1.0, auc + half)


@pytest.fixture(scope="module")
def golden(tiny_vae_run):
    work, params_path = tiny_vae_run
    p = yaml.safe_load(params_path.read_text())
    seed = int(p["seed"])
    records = pd.read_csv(work / "data/beats/ptb-xl/records.csv")
    x = np.load(work / "data/beats/ptb-xl/median_beats.npy").astype(np.float32)
    split = pd.read_csv(work / "data/splits/ptb-xl.csv").set_index("record_id")
    split = split.loc[records["record_id"]]
    test = (split["set"] == "test").to_numpy()
    y = split["label"].to_numpy().astype(int)
    groups = records["patient_id"].to_numpy()
    rr = records[["rr_mean_s", "rr_std_s"]].to_numpy(np.float64)
    out = {}
    for stage, names in (("pretrain", p["vae"]["pretrain_models"]),
                         ("finetune", p["vae"]["finetune_models"])):  # fmt: skip
        for name in names:
            model, saved = load_model(work / "models/ptbxl" / stage / f"{name}.pt")
            model.eval()
            norm = saved["normaliser"]
            z_rr = np.nan_to_num((rr - np.array(norm["rr_mean"])) / np.array(norm["rr_std"]))
            with torch.no_grad():
                mu, _ = model.encode(torch.as_tensor(x / norm["x_scale"]))
                rec = model.decode(mu).numpy() * norm["x_scale"]
            feats = np.hstack([mu.numpy(), z_rr])
            probes = {pen: _probe(feats[~test], y[~test], groups[~test], feats[test], seed, pen)
                      for pen in ("l1", "l2")}  # fmt: skip
            pen = "l1" if probes["l1"][0] > probes["l2"][0] else "l2"
            _, proba, logit, pipe = probes[pen]
            out[name] = {"mse": float(np.mean((x[test] - rec[test]) ** 2)), "penalty": pen,
                         "proba": proba, "logit": logit, "mu": mu.numpy()[test],
                         "pipe": pipe, "feats": feats[test], "stage": stage}  # fmt: skip
    return work, p, records[test].reset_index(drop=True), y[test], out


def test_reported_figures_equal_the_recomputed_ones(golden):
    work, p, _, y_te, out = golden
    reported = json.loads((work / "reports/metrics.json").read_text())["ptbxl"]
    n_pos, n_neg = int(y_te.sum()), int((1 - y_te).sum())
    for name, g in out.items():
        r = reported[name]
        assert r["penalty"] == g["penalty"], name
        assert r["mse"] == pytest.approx(g["mse"], rel=1e-4, abs=2e-6), name
        auc = roc_auc_score(y_te, g["proba"])
        assert r["auroc"] == pytest.approx(auc, abs=2e-6), name
        lo, hi = _ci(auc, n_pos, n_neg)
        assert (r["auroc_lo"], r["auroc_hi"]) == pytest.approx((lo, hi), abs=2e-6), name
        f1 = f1_score(y_te, (g["logit"] > 0).astype(int), average="macro", zero_division=0)
        assert r["f1"] == pytest.approx(f1, abs=2e-6), name
        if g["stage"] == "finetune":
            base = p["vae"]["finetune_models"][name]["base"]
            p_hand = _hm1983_by_hand(y_te, out[base]["logit"], g["logit"])
            assert r["p_vs_naive"] == pytest.approx(p_hand, rel=1e-4, abs=1e-9), name
        else:
            assert "p_vs_naive" not in r


def test_mlflow_runs_hold_the_same_figures(golden, tiny_vae_run):
    work, *_, out = golden
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    exp = client.get_experiment_by_name("ecglatent-vae-ptbxl-norm")
    reported = json.loads((work / "reports/metrics.json").read_text())["ptbxl"]
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    for name, g in out.items():
        m = runs[f"ptbxl/{g['stage']}/{name}"].data.metrics
        for key in ("auroc", "auroc_lo", "auroc_hi", "f1", "mse"):
            assert m[f"test/{key}"] == pytest.approx(reported[name][key], abs=1e-9), (name, key)


def test_served_model_equals_the_evaluation(golden, mirror):
    """Serve = evaluate: the champion pyfunc on raw test recordings gives the latents and
    probability of the evaluation (stored median beats → encoder → probe)."""
    work, _, rec_te, _, out = golden
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    client = MlflowClient()
    name = client.get_model_version_by_alias(MODEL, "champion").tags["model"]
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    root = mirror / "ptb-xl"
    db = ptbxl.read_database(root)
    rows = []
    for rid in rec_te["record_id"][:4]:
        rec = read_record(ptbxl.record_path(root, db.loc[int(rid)], 500))
        rows.append({"signal": rec.signal.tolist(), "fs": rec.fs, "leads": list(rec.leads)})
    served = model.predict(pd.DataFrame(rows))
    g = out[name]
    assert (served["quality"] == "ok").all()
    lat = served.filter(like="latent_").to_numpy()
    np.testing.assert_allclose(lat, g["mu"][:4], rtol=0, atol=1e-4)
    np.testing.assert_allclose(served["probability"], g["proba"][:4], rtol=0, atol=1e-5)
    assert np.ptp(g["proba"]) > 1e-3  # the probe does tell the records apart

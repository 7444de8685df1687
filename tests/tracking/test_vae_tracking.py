"""The β-VAE pipeline logs to a real MLflow store and registers a loadable champion."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from ecglatent.cli import main
from ecglatent.config import load_params
from ecglatent.sources import ptbxl
from ecglatent.sources.records import read_record
from ecglatent.tracking import registry
from tests.conftest import empty_mlflow_store

MODEL = "ecg-task-vae-ptbxl-norm"


@pytest.fixture
def client(tiny_vae_run):
    work, _ = tiny_vae_run
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    return MlflowClient()


def test_runs_have_params_epoch_losses_and_test_metrics(tiny_vae_run, client):
    exp = client.get_experiment_by_name("ecglatent-vae-ptbxl-norm")
    runs = client.search_runs([exp.experiment_id])
    names = {r.info.run_name for r in runs}
    for k in (0, 1):  # one run per model and replicate
        assert {f"ptbxl/rep{k}/pretrain/L2", f"ptbxl/rep{k}/pretrain/L4",
                f"ptbxl/rep{k}/finetune/L2_specific", f"ptbxl/rep{k}/finetune/L4_split"} <= names  # fmt: skip
    ft = next(r for r in runs if r.info.run_name == "ptbxl/rep0/finetune/L2_specific")
    assert ft.data.tags["replicate"] == "0" and ft.data.params["replicate"] == "0"
    assert ft.data.params["latent_pred"] == "2"
    assert int(ft.data.params["n_parameters"]) > 100_000
    for key in ("test/auroc", "test/auroc_lo", "test/auroc_hi", "test/f1", "test/mse", "test/corr",
                "test/p_vs_naive"):  # fmt: skip
        assert key in ft.data.metrics, key
    lo, auc, hi = (ft.data.metrics[f"test/{k}"] for k in ("auroc_lo", "auroc", "auroc_hi"))
    assert 0.5 <= ft.data.metrics["val/cv_auroc"] <= 1 and "test/val_cv_auroc" not in ft.data.metrics
    assert 0 <= lo <= auc <= hi <= 1
    history = client.get_metric_history(ft.info.run_id, "finetune/train_loss")
    assert [m.step for m in history] == [0, 1]
    for term in ("recon", "kl", "bce"):
        assert client.get_metric_history(ft.info.run_id, f"finetune/val_{term}")
    assert "git_commit" in ft.data.tags or "mlflow.source.git.commit" in ft.data.tags
    plots = {a.path for a in client.list_artifacts(ft.info.run_id, "plots")}
    assert "plots/traversal_L2_specific.png" in plots and "plots/scatter_L2_specific.png" in plots


def test_table1_and_metrics_written(tiny_vae_run):
    work, _ = tiny_vae_run
    table = (work / "reports/table1.md").read_text()
    for row in ("Sex and age", "PCA", "task naive", "task specific", "split task"):
        assert row in table, row
    assert "pooled OOF AUROC" in table and "Δ across replicates (95% CI)" in table
    assert "replicates sig. better / worse" in table
    assert "### What these numbers can and cannot show" in table
    assert "of the database's 21,799 records" in table
    metrics = json.loads((work / "reports/metrics.json").read_text())
    assert {"sex_age", "pca_L2", "L2", "L2_specific", "L4_split"} <= set(metrics["ptbxl"])
    spec = metrics["ptbxl"]["L2_specific"]
    # per-replicate values, their mean and sd, the paired test and the pooled out-of-fold AUROC
    reps = [spec["rep0"]["auroc"], spec["rep1"]["auroc"]]
    assert spec["auroc"] == pytest.approx(np.mean(reps), abs=1e-6)
    assert spec["auroc_sd"] == pytest.approx(np.std(reps, ddof=1), abs=1e-6)
    naive = metrics["ptbxl"]["L2"]
    diff = np.mean(reps) - np.mean([naive["rep0"]["auroc"], naive["rep1"]["auroc"]])
    assert spec["across_replicates"]["diff"] == pytest.approx(diff, abs=1e-5)
    assert spec["across_replicates"]["method"] == "paired t over 2 replicates"
    for k in (0, 1):
        r = spec[f"rep{k}"]
        assert 0 <= r["p_vs_naive"] <= 1
        assert r["diff_vs_naive_lo"] <= r["diff_vs_naive_hi"]
        assert r["diff_vs_naive"] == pytest.approx(r["auroc"] - naive[f"rep{k}"]["auroc"], abs=2e-6)
        assert 0.5 <= r["val_cv_auroc"] <= 1.0
    assert spec["replicates_significantly_better"] + spec["replicates_significantly_worse"] <= 2
    split = pd.read_csv(work / "data/splits/ptb-xl.csv")
    lo, auc, hi = (spec["pooled_oof"][k] for k in ("lo", "auroc", "hi"))
    assert 0 <= lo <= auc <= hi <= 1
    assert metrics["ptbxl"]["test_set"]["n_items"] == len(split)  # every record once, out of fold
    assert metrics["ptbxl"]["test_set"]["n_items"] >= metrics["ptbxl"]["test_set"]["n_units"]


def test_budgets_equal_for_naive_and_specific(tiny_vae_run):
    """The task-naive row trains for the epochs fine-tuning adds (continued pretraining)."""
    import torch

    work, params_path = tiny_vae_run
    p = load_params(params_path)
    cap = p.vae.pretrain.max_epochs + p.vae.finetune_head.max_epochs + p.vae.finetune.max_epochs
    naive = torch.load(work / "models/ptbxl/pretrain/rep0/L2.naive.pt", weights_only=False)
    spec = torch.load(work / "models/ptbxl/finetune/rep0/L2_specific.pt", weights_only=False)
    # patience exceeds the caps here, so every phase runs to its cap
    assert len(naive["history"]) == len(spec["history"]) == cap
    phases = [row["phase"] for row in naive["history"]]
    assert phases.count("naive_continue") == cap - p.vae.pretrain.max_epochs


def test_champion_loads_and_scores_a_raw_recording(tiny_vae_run, client, mirror):
    mv = client.get_model_version_by_alias(MODEL, "champion")
    versions = client.search_model_versions(f"name='{MODEL}'")
    score = mv.tags[registry.SCORE_METRIC_TAG]
    assert score == "val_cv_auroc"  # chosen on validation, never on test
    assert all(v.tags["score_metric"] == "val_cv_auroc" for v in versions)
    best = max(float(v.tags[score]) for v in versions)
    assert float(mv.tags[score]) == best
    # the registered score is the mean validation (inner-CV) AUROC; test AUROC is only a tag
    work, _ = tiny_vae_run
    metrics = json.loads((work / "reports/metrics.json").read_text())["ptbxl"][mv.tags["model"]]
    assert float(mv.tags[score]) == pytest.approx(metrics["val_cv_auroc"], abs=1e-5)
    rep = metrics[f"rep{mv.tags['replicate']}"]
    assert float(mv.tags["test_auroc"]) == pytest.approx(rep["auroc"], abs=1e-5)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    assert model.metadata.signature is not None
    root = mirror / "ptb-xl"
    row = ptbxl.read_database(root).sort_index().iloc[-1]
    rec = read_record(ptbxl.record_path(root, row, 500))
    out = model.predict(pd.DataFrame([{"signal": rec.signal.tolist(), "fs": rec.fs,
                                       "leads": list(rec.leads)}]))  # fmt: skip
    assert out.loc[0, "quality"] == "ok"
    assert 0 <= out.loc[0, "probability"] <= 1
    assert np.isfinite(out.filter(like="latent_").to_numpy()).all()
    assert 0.3 < out.loc[0, "rr_mean_s"] < 2.0


def test_champion_moves_only_when_beaten(tiny_vae_run, client):
    work, params_path = tiny_vae_run
    before = client.get_model_version_by_alias(MODEL, "champion").version
    n_before = len(client.search_model_versions(f"name='{MODEL}'"))
    assert main(["--params", str(params_path), "evaluate"]) == 0  # same models, same scores
    # one registered model per dataset and evaluate run
    assert len(client.search_model_versions(f"name='{MODEL}'")) == n_before + 1
    assert client.get_model_version_by_alias(MODEL, "champion").version == before
    params = load_params(params_path)
    assert registry.model_name(params.tracking.model_prefix, "ptbxl", "norm") == MODEL


def _model_id(version) -> str:
    """The logged model behind a registry version (its source is ``models:/<model_id>``)."""
    model_id = version.model_id or version.source.removeprefix("models:/")
    assert model_id.startswith("m-"), version.source
    return model_id


def test_registered_model_carries_its_test_and_validation_metrics(tiny_vae_run, client):
    """The champion's logged model (MLflow 3 LoggedModel) has the metrics the run reports."""
    version = client.get_model_version_by_alias(MODEL, "champion")
    linked = {m.key: m.value for m in mlflow.get_logged_model(_model_id(version)).metrics}
    run = client.get_run(version.run_id).data.metrics
    for key in ("test/auroc", "test/f1", "val/cv_auroc"):
        assert linked[key] == pytest.approx(run[key])


def test_same_seed_same_models(tiny_vae_run, tmp_path):
    """pretrain + finetune again, later in the same process (torch's RNG has moved on and is
    seeded at random at start-up): every saved weight must come out identical."""
    import torch
    import yaml

    work, params_path = tiny_vae_run
    p = yaml.safe_load(params_path.read_text())
    p["vae"]["models_dir"] = str(tmp_path / "models")
    p["vae"]["checkpoint_dir"] = str(tmp_path / "checkpoints")
    p["tracking"].update(tracking_uri=f"sqlite:///{empty_mlflow_store(tmp_path / 'mlflow.db')}",
                         artifact_root=str(tmp_path / "mlartifacts"),
                         reports_dir=str(tmp_path / "reports"))  # fmt: skip
    again = tmp_path / "params.yaml"
    again.write_text(yaml.safe_dump(p))
    torch.manual_seed(12345)  # any state: the stages must not depend on it
    for stage in ("pretrain", "finetune"):
        assert main(["--params", str(again), stage]) == 0, stage
    saved = sorted((work / "models/ptbxl").glob("*/rep*/*.pt"))
    assert len(saved) == 2 * 6  # per replicate: L2, L4 (+ their naive controls), L2_specific, L4_split
    for first in saved:
        rel = first.relative_to(work / "models/ptbxl")
        second = tmp_path / "models/ptbxl" / rel
        a = torch.load(first, weights_only=False)["state_dict"]
        b = torch.load(second, weights_only=False)["state_dict"]
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{rel}: {k} differs"


def test_split_task_model_is_probed_on_its_prediction_latents(tiny_vae_run, client, mirror):
    """L4_split (L = 4, L_pred = 2): the probe reads 2 latent means + 2 RR features, not all 4
    latents (the paper's "2 (10)" rows); the served model feeds it the same."""
    import pickle

    exp = client.get_experiment_by_name("ecglatent-vae-ptbxl-norm")
    run = client.search_runs([exp.experiment_id],
                             "attributes.run_name = 'ptbxl/rep0/finetune/L4_split'")[0]  # fmt: skip
    uri = f"runs:/{run.info.run_id}/model"  # every rep0 fine-tuned model is logged (explorer)
    probe_dir = mlflow.artifacts.download_artifacts(uri)
    probe = pickle.loads(next(Path(probe_dir).rglob("probe.pkl")).read_bytes())
    assert probe.n_features_in_ == 2 + 2
    model = mlflow.pyfunc.load_model(uri)
    root = mirror / "ptb-xl"
    row = ptbxl.read_database(root).sort_index().iloc[-1]
    rec = read_record(ptbxl.record_path(root, row, 500))
    out = model.predict(pd.DataFrame([{"signal": rec.signal.tolist(), "fs": rec.fs,
                                       "leads": list(rec.leads)}]))  # fmt: skip
    assert out.filter(like="latent_").shape[1] == 4  # all latents still reported
    assert 0 <= out.loc[0, "probability"] <= 1

"""`mlflow run` of the MLproject entry points, as the README types it, into a real store.

The project folder holds MLproject and a tiny params.yaml whose tracking URI is the default
relative ``sqlite:///mlflow.db``; ``mlflow run`` is started there with no
``$MLFLOW_TRACKING_URI``, so its project run and ours must meet in that one file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from ecglatent.tracking.runs import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG
from tests.tracking.conftest import REPO, tiny_params

EXPERIMENT = "ecglatent-by-mlflow-run"


def mlflow_run(project: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MLFLOW_") and k != "ECGLATENT_PROJECT_RUN_ID"}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "mlflow", "run", ".", *args, "--env-manager", "local"],
        cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"mlflow run {' '.join(args)} failed:\n{proc.stderr[-4000:]}"


@pytest.fixture(scope="module")
def project(mirror: Path, tiny_vae_data, tmp_path_factory) -> Path:
    """MLproject + tiny params, data fetched and cut into beats; the store is still empty.

    The fetched records and beats are the tiny run's (same params, same stage outputs), copied."""
    work = tmp_path_factory.mktemp("mlproject")
    shutil.copyfile(REPO / "MLproject", work / "MLproject")
    path = tiny_params(work, mirror)
    p = yaml.safe_load(path.read_text())
    p["tracking"].update(tracking_uri="sqlite:///mlflow.db", artifact_root="mlartifacts")
    p["vae"]["pretrain_models"] = {"L2": {"latent_dim": 2}}
    p["vae"]["finetune_models"] = {"L2_specific": {"base": "L2", "latent_pred": 2}}
    path.write_text(yaml.safe_dump(p))
    for folder in (p["data"]["raw_dir"], p["preprocess"]["out_dir"]):
        rel = Path(folder).relative_to(work)
        shutil.copytree(tiny_vae_data[0] / rel, work / rel)
    return work


@pytest.fixture(scope="module")
def client(project: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{project / 'mlflow.db'}")


def test_data_entry_point_runs_in_the_default_experiment(project, client):
    mlflow_run(project, "-e", "split")
    assert (project / "data/splits/ptb-xl.csv").is_file()
    found = client.search_runs(["0"])
    assert len(found) == 1, [r.info.run_name for r in found]
    assert found[0].info.status == "FINISHED"
    assert found[0].data.tags["mlflow.project.entryPoint"] == "split"


def test_training_entry_point_nests_model_runs_under_the_project_run(project, client):
    mlflow_run(project, "-e", "pretrain", "-P", "dataset=ptbxl", "--experiment-name", EXPERIMENT)
    exp = client.get_experiment_by_name(EXPERIMENT)
    assert exp.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    found = client.search_runs([exp.experiment_id])
    parent = [r for r in found if r.data.tags.get("mlflow.project.entryPoint") == "pretrain"]
    assert len(parent) == 1
    children = [r for r in found if r.info.run_id != parent[0].info.run_id]
    # one model run per replicate (the tiny params' 2 outer folds)
    assert sorted(r.info.run_name for r in children) == ["ptbxl/rep0/pretrain/L2",
                                                         "ptbxl/rep1/pretrain/L2"]  # fmt: skip
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent[0].info.run_id
        assert {parent[0].info.status, child.info.status} == {"FINISHED"}
        assert client.get_metric_history(child.info.run_id, "pretrain/train_loss")
        assert child.inputs.dataset_inputs[0].dataset.name == "ptbxl"
    # nothing went to the per-dataset experiment that `dvc repro` fills
    other = client.get_experiment_by_name("ecglatent-vae-ptbxl-norm")
    assert other is None or not client.search_runs([other.experiment_id])
    # the model file names the run the evaluate stage re-opens
    assert (project / "models/ptbxl/pretrain/rep0/L2.pt").is_file()


def test_finetune_and_evaluate_entry_points_complete_the_chain(project, client):
    """The rest of `main`: evaluate re-opens the fine-tuned run (nested under finetune's
    project run) for its test metrics and registers the model with a description."""
    mlflow_run(project, "-e", "finetune", "-P", "dataset=ptbxl", "--experiment-name", EXPERIMENT)
    mlflow_run(project, "-e", "evaluate", "--experiment-name", EXPERIMENT)
    exp = client.get_experiment_by_name(EXPERIMENT)
    found = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    ft = found["ptbxl/rep0/finetune/L2_specific"]  # the registered replicate
    parents = {r.info.run_id: r for r in found.values()
               if r.data.tags.get("mlflow.project.entryPoint") == "finetune"}  # fmt: skip
    assert ft.data.tags["mlflow.parentRunId"] in parents
    assert 0 <= ft.data.metrics["test/auroc"] <= 1
    assert ft.data.tags["probe_penalty"] in ("l1", "l2") and "probe_penalty" not in ft.data.params
    assert ft.inputs.dataset_inputs[0].dataset.name == "ptbxl"
    model = client.get_registered_model("ecg-task-vae-ptbxl-norm")
    assert "champion" in model.description and "--env-manager local" in model.description
    version = client.get_model_version_by_alias(model.name, "champion")
    assert version.run_id == ft.info.run_id

"""Relative tracking locations mean the project's, also inside `dvc exp run --temp` copies."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from mlflow import MlflowClient

from ecglatent.tracking import runs

# A stage that opens an MLflow run the way every training stage does, with params' defaults
# (tracking_uri sqlite:///mlflow.db, artifact_root mlartifacts).
STAGE = """\
from pathlib import Path

import mlflow

from ecglatent.config import TrackingConfig
from ecglatent.tracking import runs

runs.configure(TrackingConfig(experiment="exp-temp"))
with runs.run("temp-stage", {"lr": 0.1}):
    mlflow.log_text("hello", "note.txt")
Path("out.txt").write_text(mlflow.get_tracking_uri())
"""


def test_project_root_of_a_dvc_experiment_copy_is_the_project(tmp_path):
    project = tmp_path / "project"
    copy = project / ".dvc" / "tmp" / "exps" / "tmpab12cd" / "sub"
    copy.mkdir(parents=True)
    (project / ".dvc" / "tmp" / "exps" / "tmpab12cd" / ".dvc").mkdir()
    assert runs.project_root(copy) == project
    assert runs.resolve_uri("sqlite:///mlflow.db", project) == f"sqlite:///{project}/mlflow.db"
    assert runs.resolve_path("mlartifacts", project) == project / "mlartifacts"


def test_project_root_is_the_nearest_dvc_or_git_folder(tmp_path):
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "a" / "b").mkdir(parents=True)
    assert runs.project_root(tmp_path / "repo" / "a" / "b") == tmp_path / "repo"
    lone = tmp_path / "lone"
    lone.mkdir()
    assert runs.project_root(lone) == lone


def test_absolute_and_server_uris_are_kept(tmp_path):
    for uri in (f"sqlite:///{tmp_path}/x.db", "http://127.0.0.1:5000", "postgresql://h/db"):
        assert runs.resolve_uri(uri, tmp_path / "elsewhere") == uri


def _git(repo: Path, *args: str, env: dict) -> None:
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def test_dvc_exp_run_temp_lands_its_run_in_the_project_store(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.org")  # fmt: skip
    _git(repo, "init", "-q", env=env)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, env=env, check=True)
    (repo / "log_run.py").write_text(STAGE)
    (repo / "dvc.yaml").write_text(textwrap.dedent(f"""\
        stages:
          log_run:
            cmd: {sys.executable} log_run.py
            deps: [log_run.py]
            outs: [out.txt]
        """))  # fmt: skip
    (repo / ".gitignore").write_text("/mlflow.db\n/mlartifacts/\n")
    _git(repo, "add", "-A", env=env)
    _git(repo, "commit", "-qm", "init", env=env)
    proc = subprocess.run([sys.executable, "-m", "dvc", "exp", "run", "--temp"], cwd=repo,
                          env=env, capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not list((repo / ".dvc" / "tmp" / "exps").glob("tmp*/mlflow.db"))
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    exp = client.get_experiment_by_name("exp-temp")
    assert exp is not None, "the temp copy's run did not reach the project's store"
    assert exp.artifact_location == (repo / "mlartifacts").as_uri()
    found = client.search_runs([exp.experiment_id])
    assert [r.info.run_name for r in found] == ["temp-stage"]
    run_id = found[0].info.run_id
    assert (repo / "mlartifacts" / run_id / "artifacts" / "note.txt").read_text() == "hello"

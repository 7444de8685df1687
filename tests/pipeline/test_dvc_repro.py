"""A real `dvc repro` of the data stages in a temporary git repo, then push/pull round-trip."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def dvc_repo(mirror: Path, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    work = tmp_path_factory.mktemp("dvcrepo")
    repo = work / "repo"
    repo.mkdir()
    shutil.copyfile(REPO / "dvc.yaml", repo / "dvc.yaml")
    shutil.copytree(
        REPO / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    keep = {"fetch", "beats", "split"}
    (repo / "dvc.yaml").write_text(
        yaml.safe_dump({"stages": {k: v for k, v in stages.items() if k in keep}})
    )
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["subset"] = 12
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "ECGLATENT_DATA_MIRROR": str(mirror), "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    _run(["git", "init", "-q"], repo, env)
    _run(["dvc", "init", "-q"], repo, env)
    _run(["dvc", "remote", "add", "-d", "local", str(work / "remote")], repo, env)
    _run(["git", "add", "-A"], repo, env)
    _run(["git", "commit", "-qm", "init"], repo, env)
    _run(["dvc", "repro", "split"], repo, env)
    return repo, env


def test_repro_produces_outputs_and_status_is_clean(dvc_repo):
    repo, env = dvc_repo
    assert (repo / "data/splits/ptb-xl.csv").exists()
    assert (repo / "data/beats/rejects.csv").exists()
    assert "102" in (repo / "data/beats/rejects.csv").read_text()  # MIT-BIH 102 has no MLII
    status = _run(["dvc", "status"], repo, env)
    assert "up to date" in status, status


def test_second_repro_does_nothing(dvc_repo):
    repo, env = dvc_repo
    before = (repo / "dvc.lock").read_text()
    out = _run(["dvc", "repro"], repo, env)
    assert "Running stage" not in out, out
    assert (repo / "dvc.lock").read_text() == before


def test_metrics_show(dvc_repo):
    repo, env = dvc_repo
    out = _run(["dvc", "metrics", "show"], repo, env)
    assert "records_kept" in out


def test_push_pull_round_trip(dvc_repo):
    repo, env = dvc_repo
    _run(["dvc", "push"], repo, env)
    original = (repo / "data/raw/mitdb/100.dat").read_bytes()
    shutil.rmtree(repo / "data/raw")
    shutil.rmtree(repo / ".dvc/cache")
    _run(["dvc", "pull"], repo, env)
    assert (repo / "data/raw/mitdb/100.dat").read_bytes() == original
    assert "up to date" in _run(["dvc", "status"], repo, env)

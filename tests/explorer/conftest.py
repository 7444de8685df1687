"""A real Chromium (Debian's package, driven by Playwright) and the tiny model's explorer."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from ecglatent.explorer.model import ExplorerModel

REPO = Path(__file__).resolve().parents[2]
MODEL_NAME = "ecg-task-vae-ptbxl-norm"  # the tiny run's task is NORM vs rest


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Screenshots and measurements of the browser tests (git-ignored)."""
    path = REPO / "test-artifacts" / "explorer"
    path.mkdir(parents=True, exist_ok=True)
    print(f"\nexplorer test artifacts: {path}")
    return path


@pytest.fixture(scope="session")
def model_version(tiny_vae_run) -> tuple[str, str, str]:
    """(pinned URI of the current champion, its run id, its pipeline name such as L2_specific).

    Pinned to the version, so later registrations by other tests cannot move it."""
    work, _ = tiny_vae_run
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    mv = MlflowClient().get_model_version_by_alias(MODEL_NAME, "champion")
    return f"models:/{MODEL_NAME}/{mv.version}", mv.run_id, mv.tags["model"]


@pytest.fixture(scope="session")
def explorer_model(tiny_vae_run, model_version) -> ExplorerModel:
    work, _ = tiny_vae_run
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    return ExplorerModel.load(model_version[0])


class PageLog:
    """Console messages and uncaught errors of one page."""

    def __init__(self, page) -> None:
        self.messages: list[tuple[str, str]] = []
        page.on("console", lambda m: self.messages.append((m.type, m.text)))
        page.on("pageerror", lambda e: self.messages.append(("pageerror", str(e))))

    @property
    def errors(self) -> list[tuple[str, str]]:
        return [m for m in self.messages if m[0] in ("error", "pageerror")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def explore_url(tiny_vae_run, model_version):
    """The `ecglatent explore` command a user types, on a free port of 127.0.0.1."""
    work, params = tiny_vae_run
    port = _free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    log = open(work / "explore.log", "w")  # noqa: SIM115 - closed in teardown
    cmd = [sys.executable, "-m", "ecglatent.cli", "--params", str(params), "explore", "--model",
           model_version[0], "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"explore exited: {(work / 'explore.log').read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"explore did not start: {(work / 'explore.log').read_text()[-3000:]}")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(autouse=True)
def _tiny_store(tiny_vae_run):
    """MLflow aimed at the tiny run's store in every test (the root conftest resets the env)."""
    work, _ = tiny_vae_run
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")

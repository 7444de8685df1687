"""The MLflow UI in a real browser, on a store the pipeline made.

`mlflow ui` serves the tiny pipeline's store on 127.0.0.1; headless Chromium (Debian's
``chromium`` package, driven by Playwright) opens the experiment the way the README says, finds
the training runs by name, then a run's Artifacts tab and its traversal plot. Screenshots go to
``test-artifacts/mlflow-ui/`` (git-ignored; the path is printed).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.tracking.conftest import REPO

SHOTS = REPO / "test-artifacts" / "mlflow-ui"
EXPERIMENT = "ecglatent-vae-ptbxl-norm"
RUN_NAMES = ("ptbxl/rep0/pretrain/L2", "ptbxl/rep0/pretrain/L4", "ptbxl/rep0/finetune/L2_specific",
             "ptbxl/rep0/finetune/L4_split", "ptbxl/rep1/finetune/L2_specific")  # fmt: skip
TIMEOUT_MS = 120_000  # a loaded 2-core CI machine renders the React app slowly


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow ui exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    pytest.fail(f"mlflow ui not up after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def ui(tiny_vae_run, tmp_path_factory):
    """The URL of `mlflow ui` serving the tiny pipeline's store; stopped after the module."""
    work, _ = tiny_vae_run
    port = _free_port()
    log = tmp_path_factory.mktemp("ui") / "mlflow-ui.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri",
             f"sqlite:///{work / 'mlflow.db'}", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"],
            cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_up(url, proc, log)
        yield url
    finally:
        # mlflow ui starts uvicorn in a child process: stop the whole session
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        except ProcessLookupError:
            pass


def _shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def test_experiment_lists_training_runs_and_a_run_shows_its_traversal_plot(
    tiny_vae_run, ui, browser
):
    work, _ = tiny_vae_run
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    exp_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    try:
        # The README's link: MLflow 3.17 opens experiments on the GenAI view unless asked for
        # the model-training one.
        page.goto(f"{ui}/#/experiments/{exp_id}?workflowType=machine_learning")
        for name in RUN_NAMES:
            page.get_by_role("link", name=name, exact=True).wait_for()
        page.get_by_text("ptbxl (", exact=False).first.wait_for()  # the Dataset column
        _shot(page, "experiment-runs.png")
        assert "/runs" in page.url

        page.get_by_role("link", name="ptbxl/rep0/finetune/L2_specific", exact=True).click()
        page.get_by_role("tab", name="Artifacts").click()
        plot = "traversal_L2_specific.png"
        if not page.get_by_text(plot, exact=True).is_visible():
            page.get_by_text("plots", exact=True).first.click()
        page.get_by_text(plot, exact=True).first.click()
        img = page.locator(f"img[alt='plots/{plot}']")
        img.wait_for()
        page.wait_for_function(
            "sel => { const i = document.querySelector(sel); return i && i.naturalWidth > 0 }",
            arg=f"img[alt='plots/{plot}']",
        )
        width = img.evaluate("i => i.naturalWidth")
        _shot(page, "run-traversal-plot.png")
        assert width > 200, f"traversal plot rendered {width} px wide"
    except Exception:
        _shot(page, "failure.png")
        raise
    finally:
        page.close()

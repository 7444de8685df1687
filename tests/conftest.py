"""Shared fixtures: the real-data mirror and WFDB records written by the tests themselves."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import wfdb

REPO_ROOT = Path(__file__).resolve().parents[1]


def mirror_dir() -> Path:
    """The shared PhysioNet mirror ($ECGLATENT_DATA_MIRROR, else ../shared/data)."""
    # Absolute: tests hand it to commands that run in other directories (a temp DVC repo).
    return Path(
        os.environ.get("ECGLATENT_DATA_MIRROR", REPO_ROOT.parent / "shared" / "data")
    ).resolve()


@pytest.fixture(scope="session")
def mirror() -> Path:
    path = mirror_dir()
    if not (path / "ptb-xl").is_dir() or not (path / "mitdb").is_dir():
        pytest.fail(
            f"real-data mirror not found at {path}: set ECGLATENT_DATA_MIRROR to a folder "
            "holding ptb-xl/ and mitdb/ in PhysioNet's layout"
        )
    return path


def write_wfdb(
    directory: Path,
    name: str,
    signal: np.ndarray,
    fs: float,
    leads: list[str] | tuple[str, ...],
    units: str = "mV",
) -> Path:
    """Write (leads, samples) as a 16-bit WFDB record; returns the path without extension."""
    directory.mkdir(parents=True, exist_ok=True)
    sig = np.asarray(signal, dtype=np.float64).T
    wfdb.wrsamp(
        name,
        fs=fs,
        units=[units] * sig.shape[1],
        sig_name=list(leads),
        p_signal=sig,
        fmt=["16"] * sig.shape[1],
        adc_gain=[1000.0 if units == "mV" else 1.0] * sig.shape[1],
        baseline=[0] * sig.shape[1],
        write_dir=str(directory),
    )
    return directory / name


def write_cinc_record(
    directory: Path,
    name: str,
    signal: np.ndarray,
    fs: float,
    leads: list[str] | tuple[str, ...],
    comments: list[str] = (),
) -> Path:
    """Write (leads, samples) in mV the way the CinC 2021 Challenge ships records.

    The signal is a MATLAB v4 file (``val``, int16, 1000 units per mV) written by scipy; the
    header declares it as WFDB format ``16+24`` and carries ``#Age:``-style comments.
    """
    import scipy.io

    directory.mkdir(parents=True, exist_ok=True)
    val = np.round(np.asarray(signal, dtype=np.float64) * 1000).astype(np.int16)
    scipy.io.savemat(directory / f"{name}.mat", {"val": val}, format="4")
    n_leads, n = val.shape
    lines = [f"{name} {n_leads} {fs:g} {n} 05-Feb-2020 11:39:16"]
    lines += [
        f"{name}.mat 16+24 1000/mV 16 0 {val[k, 0]} 0 0 {lead}" for k, lead in enumerate(leads)
    ]
    lines += [f"#{c}" for c in comments]
    (directory / f"{name}.hea").write_text("\n".join(lines) + "\n")
    return directory / name


_STORE_TEMPLATE: list[Path] = []


def empty_mlflow_store(db: Path) -> Path:
    """Put an empty MLflow SQLite store (tables made, no runs) at ``db`` unless one is there.

    MLflow builds a new store by running every schema migration, seconds per store on 2 cores;
    the session does that once and copies the result. The copy's Default experiment keeps its
    artifacts beside the store, where MLflow would have put them had it started there.
    """
    import shutil
    import sqlite3
    import tempfile

    if db.exists():
        return db
    if not _STORE_TEMPLATE:
        from mlflow import MlflowClient

        template = Path(tempfile.mkdtemp(prefix="ecglatent-store-")) / "mlflow.db"
        MlflowClient(f"sqlite:///{template}").search_experiments()  # migrates the new file
        _STORE_TEMPLATE.append(template)
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_STORE_TEMPLATE[0], db)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                     (str(db.parent.resolve() / "mlruns" / "0"),))  # fmt: skip
    return db


# MLflow's process-wide settings as the test session found them.
_MLFLOW_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_RUN_ID",
    "MLFLOW_EXPERIMENT_ID",
    "ECGLATENT_PROJECT_RUN_ID",  # tracking.runs keeps `mlflow run`'s run id there
)
_MLFLOW_ENV_AT_START = {k: os.environ.get(k) for k in _MLFLOW_ENV}


@pytest.fixture(autouse=True)
def _isolate_mlflow_env():
    """Put MLflow's environment back as the session found it after each test.

    ``mlflow.set_tracking_uri`` also writes ``$MLFLOW_TRACKING_URI``, which the pipeline reads
    as the user's override: without this, one test's (or one module fixture's) temporary store
    would capture every later test's runs.
    """
    yield
    for k, v in _MLFLOW_ENV_AT_START.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def tiny_vae_data(mirror: Path, tmp_path_factory) -> tuple[Path, Path]:
    """Runs fetch → beats → split of the tiny run; returns (workdir, params).

    Shared with the tuning tests, which read its beats and splits and write elsewhere."""
    from ecglatent.cli import main
    from tests.tracking.conftest import tiny_params

    work = tmp_path_factory.mktemp("vae")
    params = tiny_params(work, mirror)
    for stage in ("fetch", "beats", "split"):
        assert main(["--params", str(params), stage]) == 0, stage
    return work, params


@pytest.fixture(scope="session")
def tiny_vae_run(tiny_vae_data: tuple[Path, Path]) -> tuple[Path, Path]:
    """Runs fetch → beats → split → pretrain → finetune → evaluate; returns (workdir, params)."""
    from ecglatent.cli import main

    work, params = tiny_vae_data
    for stage in ("pretrain", "finetune", "evaluate"):
        assert main(["--params", str(params), stage]) == 0, stage
    return work, params


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium (Debian's package, driven by Playwright) for every browser test.

    Session-wide because Playwright's sync API runs its own event loop: a second
    ``sync_playwright()`` while one is open fails.
    """
    import shutil

    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("ECGLATENT_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists() and not shutil.which(chromium):
        pytest.fail(f"{chromium} not found: install Debian's chromium (apt-get install chromium)")
    with sync_playwright() as p:
        # --no-sandbox: CI runs the tests as root, where Chromium's own sandbox refuses to start.
        b = p.chromium.launch(executable_path=chromium, headless=True,
                              args=["--no-sandbox", "--disable-dev-shm-usage"])  # fmt: skip
        try:
            yield b
        finally:
            b.close()

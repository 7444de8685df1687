"""The distributed set-up for real: Optuna storage and MLflow store on a PostgreSQL server.

The test starts a throwaway PostgreSQL cluster (Debian's `postgresql` binaries, data in a temp
folder, TCP on 127.0.0.1 only, a free port, password authentication), runs a 3-trial study
with two worker processes, crashes the whole command (parent and both workers, SIGKILL) in
the middle of a trial, re-runs it and checks that the study resumed: no complete trial lost,
the killed trials failed and retried, one nested MLflow run per finished trial, the best
model registered. Without the binaries the test fails with the install command; never skips.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from tests.tuning.test_study import (
    N_TRIALS,
    check_mlflow,
    check_study,
    clean_env,
    load_study,
    run_ok,
    tune_cmd,
    tune_params,
    wait_mid_trial,
)

INSTALL = "install Debian's postgresql (apt-get install -y postgresql)"
USER, PASSWORD = "ecg", "ecg-test-pw"


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail(f"PostgreSQL server binaries not found under /usr/lib/postgresql: {INSTALL}")
    return Path(found[-1]).parent


def _server_user() -> str | None:
    """The unprivileged user to run the server as when we are root; None when we are not."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    pytest.fail("running as root and neither a `postgres` nor a `nobody` user exists to run "
                "the PostgreSQL server as (it refuses to run as root)")  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A running throwaway cluster; yields ``postgresql://USER:PASSWORD@127.0.0.1:PORT``."""
    bin_dir = _bin_dir()
    # initdb and postgres refuse to run as root (CI and containers): as root, run them as an
    # unprivileged user, Debian's `postgres` when the package made one, else `nobody`.
    user = _server_user()
    as_pg = ["runuser", "-u", user, "--"] if user else []
    # Not under pytest's tmp dir: the `postgres` user cannot enter root's 0700 folders.
    root = Path(tempfile.mkdtemp(prefix="ecglatent-pg-"))
    data = root / "data"
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if user:
        shutil.chown(root, user)
        shutil.chown(pwfile, user)
    port = _free_port()

    def pg(*args: str) -> None:
        proc = subprocess.run([*as_pg, *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"

    pg(str(bin_dir / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={pwfile}",
       "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8")  # fmt: skip
    pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60",
       "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {root}", "start")  # fmt: skip
    url = f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}"
    try:
        conn = psycopg2.connect(f"{url}/postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE optuna")
            cur.execute("CREATE DATABASE mlflow")
        conn.close()
        yield url
    finally:
        subprocess.run([*as_pg, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w",
                        "stop"], capture_output=True, timeout=120)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def test_crashed_study_resumes_on_postgres(postgres, mirror, tiny_vae_data, tmp_path):
    data = tiny_vae_data[0]
    storage = f"{postgres}/optuna"
    # SQLAlchemy 2.1 reads plain postgresql:// as psycopg 3; MLflow gets the driver spelled out.
    tracking = f"{postgres.replace('postgresql://', 'postgresql+psycopg2://')}/mlflow"
    params = tune_params(tmp_path, data, mirror, storage, tracking_uri=tracking)
    cmd = tune_cmd(params, "crash", N_TRIALS, workers=2)
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
    try:
        before, busy = wait_mid_trial(proc, storage, "crash")
        os.killpg(proc.pid, signal.SIGKILL)  # the machine dies: command and both workers
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    killed = [t.number for t in load_study(storage, "crash").trials if t.state.name == "RUNNING"]
    assert killed and {t.number for t in busy} <= set(killed)
    # Re-running the same command resumes: stale trials fail after the grace period, are
    # retried, and the study is topped up to N_TRIALS.
    log = run_ok(cmd, tmp_path)
    assert "resumed" in log
    study = check_study(storage, "crash", N_TRIALS, before, killed)
    check_mlflow(tracking, "crash", study, killed)

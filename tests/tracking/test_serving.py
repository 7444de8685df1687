"""The registered champion served by MLflow's own server over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from ecglatent.signal.filters import resample
from ecglatent.sources import ptbxl
from ecglatent.sources.records import read_record
from ecglatent.tracking.serving import serve_command

MODEL_URI = "models:/ecg-task-vae-ptbxl-norm@champion"
N_RECORDINGS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: bytes | str, timeout: float = 60) -> tuple[int, dict | str]:
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        text = err.read().decode(errors="replace")
        return err.code, text


@pytest.fixture(scope="module")
def recordings(mirror: Path) -> list[dict]:
    """Real PTB-XL recordings the tiny model never trained on (records beyond its subset)."""
    root = mirror / "ptb-xl"
    table = ptbxl.read_database(root).sort_index().iloc[-N_RECORDINGS:]
    out = []
    for _, row in table.iterrows():
        rec = read_record(ptbxl.record_path(root, row, 500))
        out.append({"signal": rec.signal.tolist(), "fs": rec.fs, "leads": list(rec.leads)})
    return out


@pytest.fixture(scope="module")
def server(tiny_vae_run):
    work, _ = tiny_vae_run
    port = _free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    log = open(work / "server.log", "w")  # noqa: SIM115 - closed in teardown
    proc = subprocess.Popen(serve_command(MODEL_URI, "127.0.0.1", port), env=env, stdout=log,
                            stderr=subprocess.STDOUT)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited: {(work / 'server.log').read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/ping", timeout=2) as r:
                if r.status == 200:
                    break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"server did not start: {(work / 'server.log').read_text()[-3000:]}")
    yield base, work
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _records(rows: list[dict]) -> str:
    return json.dumps({"dataframe_records": rows})


def test_served_answers_match_in_process_predict(server, recordings):
    base, work = server
    status, body = _post(f"{base}/invocations", _records(recordings))
    assert status == 200, body
    served = pd.DataFrame(body["predictions"])
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    local = mlflow.pyfunc.load_model(MODEL_URI).predict(pd.DataFrame(recordings))
    assert len(served) == N_RECORDINGS
    cols = [c for c in local.columns if c.startswith("latent_")] + ["probability", "rr_mean_s",
                                                                   "rr_std_s"]  # fmt: skip
    np.testing.assert_allclose(served[cols].to_numpy(float), local[cols].to_numpy(float), rtol=1e-5,
                               atol=1e-6)  # fmt: skip
    assert list(served["quality"]) == list(local["quality"]) == ["ok"] * N_RECORDINGS
    assert (served["n_beats"] >= 4).all()


def test_bad_requests_get_4xx_with_a_reason_and_server_keeps_serving(server, recordings):
    base, _ = server
    good = recordings[0]
    short = {**good, "signal": [lead[:1000] for lead in good["signal"]]}  # 2 s at 500 Hz
    nan = json.loads(json.dumps(good))
    nan["signal"][2][100] = float("nan")
    bad_lead = {**good, "leads": [*good["leads"][:11], "X7"]}
    wrong_shape = {**good, "signal": good["signal"][:5]}
    cases = {
        "not json": ("{this is not json", None),
        "short": (_records([short]), "at least 8 s"),
        "nan": (json.dumps({"dataframe_records": [nan]}).replace("NaN", "NaN"), None),
        "unknown lead": (_records([bad_lead]), "unknown lead name"),
        "wrong shape": (_records([wrong_shape]), "does not match"),
        "missing column": (_records([{"signal": good["signal"], "fs": 500}]), None),
    }
    for name, (body, reason) in cases.items():
        status, text = _post(f"{base}/invocations", body)
        assert 400 <= status < 500, f"{name}: {status} {text}"
        if reason:
            assert reason in str(text), f"{name}: {text}"
    status, body = _post(f"{base}/invocations", _records([good]))
    assert status == 200 and body["predictions"][0]["quality"] == "ok"


def test_resampled_recording_gives_close_features(server, recordings):
    """500 Hz and the same recording resampled to 250 Hz: features agree closely."""
    base, _ = server
    rec = recordings[1]
    down = {**rec, "fs": 250.0, "signal": resample(np.asarray(rec["signal"]), 500, 250).tolist()}
    status, body = _post(f"{base}/invocations", _records([rec, down]))
    assert status == 200, body
    a, b = body["predictions"]
    lat = [k for k in a if k.startswith("latent_")]
    diff = max(abs(a[k] - b[k]) for k in lat)
    spread = 1.0  # latents are ~N(0, 1) under the KL prior
    assert diff < 0.1 * spread, (a, b)
    assert abs(a["probability"] - b["probability"]) < 0.05
    assert abs(a["rr_mean_s"] - b["rr_mean_s"]) < 0.01

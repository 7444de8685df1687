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
MAX_REQUEST_MB = 8  # small, so the oversized-body test posts a modest body


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
    cmd = serve_command(MODEL_URI, "127.0.0.1", port, max_request_mb=MAX_REQUEST_MB)
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
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


def _latents(row: dict) -> np.ndarray:
    return np.array([row[k] for k in sorted(row) if k.startswith("latent_")], dtype=float)


def test_mixed_batch_gets_one_row_per_record_with_its_quality(server, recordings):
    """Good, NaN, flat, 2 s, 15-lead, renamed, missing-lead, 250 Hz, noise, bad fs: one request."""
    base, _ = server
    good = recordings[0]
    sig = np.asarray(good["signal"])
    nan = sig.copy()
    nan[2, 100] = np.nan
    flat = sig.copy()
    flat[8] = 0.1  # V3 constant: lead off
    frank = np.stack([sig[7] - sig[10], sig[1] + sig[5], sig[6] * 0.5])
    spelled = ["i", "MLII", "D3", "AVR", "avl", "aVF", "v1", "V2", "v3", "V4", "v5", "V6"]
    order = list(range(12))[::-1]  # shuffled too
    noise = np.random.default_rng(7).normal(0, 0.3, sig.shape)
    cases = {
        "good": (good, "ok"),
        "nan": ({**good, "signal": nan.tolist()}, "nan_or_inf"),
        "flat": ({**good, "signal": flat.tolist()}, "flat_lead"),
        "2 s": ({**good, "signal": sig[:, :1000].tolist()}, "too_short"),
        "15 leads": ({**good, "signal": np.vstack([sig, frank]).tolist(),
                      "leads": [*good["leads"], "vx", "vy", "vz"]}, "ok"),  # fmt: skip
        "spellings": ({**good, "signal": sig[order].tolist(),
                       "leads": [spelled[i] for i in order]}, "ok"),  # fmt: skip
        "missing V6": ({**good, "signal": sig[:11].tolist(), "leads": good["leads"][:11]},
                       "missing_lead"),  # fmt: skip
        "250 Hz": ({**good, "fs": 250.0, "signal": resample(sig, 500, 250).tolist()}, "ok"),
        "noise": ({**good, "signal": noise.tolist()}, "too_few_beats"),
        "fs 5 Hz": ({**good, "fs": 5.0}, "implausible_fs"),
        "ragged": ({**good, "signal": [sig[0].tolist(), [1.0, 2.0]]}, "invalid_signal"),
    }
    body = json.dumps({"dataframe_records": [row for row, _ in cases.values()]})
    status, answer = _post(f"{base}/invocations", body)
    assert status == 200, answer
    rows = answer["predictions"]
    assert len(rows) == len(cases)
    got = {name: row["quality"] for name, row in zip(cases, rows, strict=True)}
    assert got == {name: quality for name, (_, quality) in cases.items()}
    by_name = dict(zip(cases, rows, strict=True))
    for name, row in by_name.items():
        lat = _latents(row)
        if got[name] == "ok":
            assert np.isfinite(lat).all() and 0 <= row["probability"] <= 1 and row["n_beats"] >= 4
            assert row["quality_detail"] == ""
        else:  # unusable: NaN scores (never zeros) and the reason in words
            assert np.isnan(lat).all() and np.isnan(row["probability"]), name
            assert row["n_beats"] == 0 and row["quality_detail"], name
    assert by_name["15 leads"]["extra_leads"] == "vx,vy,vz"
    assert by_name["good"]["extra_leads"] == ""
    # the 12 standard leads are what is scored, whatever else or however spelled
    for name in ("15 leads", "spellings"):
        np.testing.assert_allclose(_latents(by_name[name]), _latents(by_name["good"]), atol=1e-6)
    assert "V6" in by_name["missing V6"]["quality_detail"]
    assert "V3" in by_name["flat"]["quality_detail"]


def test_malformed_and_oversized_requests_get_4xx_and_server_keeps_serving(server, recordings):
    base, _ = server
    good = recordings[0]
    cases = {
        "not json": ("{this is not json", 400),
        "no data key": (json.dumps({"rows": [good]}), 400),
        "missing column": (_records([{"signal": good["signal"], "fs": 500}]), 400),
        "no usable column": (_records([{"x": 1}]), 400),
    }
    for name, (body, expected) in cases.items():
        status, text = _post(f"{base}/invocations", body)
        assert status == expected, f"{name}: {status} {text}"
    # over the limit: refused before parsing, with a reason naming the limit
    oversized = b'{"dataframe_records": [' + b" " * (MAX_REQUEST_MB * 1_000_000) + b"]}"
    t0 = time.monotonic()
    status, text = _post(f"{base}/invocations", oversized)
    assert status == 413, (status, text)
    assert "limit" in str(text) and time.monotonic() - t0 < 20
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

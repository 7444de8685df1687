"""Served-model latency and throughput against MLflow's floor, and 500 Hz vs 250 Hz agreement.

    python benchmarks/serving.py [--model models:/ecg-task-vae-ptbxl-mi@champion] [--requests 40]

In one run, serves (one worker, as `ecglatent serve` does, on a free 127.0.0.1 port) first a
do-nothing pyfunc with the model's own signature (the floor: MLflow's HTTP, JSON decoding and
schema handling of the same requests, and nothing else), then the model. Both get the same real
PTB-XL recordings (1 and 32 per request, from 1 and 8 concurrent clients, a bounded number of
requests each); p50/p99 latency and recordings/s are reported for each, with the model/floor
ratios. Then the model scores each recording at 500 Hz and resampled to 250 Hz, and the
script reports how far the latent features move.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, mirror_dir, write_result  # noqa: E402

from ecglatent.config import load_params  # noqa: E402
from ecglatent.signal.filters import resample  # noqa: E402
from ecglatent.sources import ptbxl  # noqa: E402
from ecglatent.sources.records import read_record  # noqa: E402
from ecglatent.tracking.serving import default_model_uri, serve_command  # noqa: E402


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, rows: list[dict]) -> tuple[float, list[dict]]:
    body = json.dumps({"dataframe_records": rows}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as r:
        out = json.loads(r.read())["predictions"]
    return time.perf_counter() - t0, out


def _load(n: int) -> list[dict]:
    root = mirror_dir() / "ptb-xl"
    table = ptbxl.read_database(root).sort_index().iloc[-n:]
    rows = []
    for _, row in table.iterrows():
        rec = read_record(ptbxl.record_path(root, row, 500))
        rows.append(
            {"signal": np.round(rec.signal, 4).tolist(), "fs": rec.fs, "leads": list(rec.leads)}
        )
    return rows


class DoNothing(mlflow.pyfunc.PythonModel):
    """The floor: answers one row per input without looking at it."""

    def predict(self, context, model_input, params=None):
        return pd.DataFrame({"quality": ["ok"] * len(model_input)})


def _floor_model(uri: str, folder: Path) -> str:
    """A do-nothing pyfunc saved with ``uri``'s signature (same parsing and schema work)."""
    info = mlflow.models.get_model_info(uri)
    path = folder / "do_nothing"
    mlflow.pyfunc.save_model(path, python_model=DoNothing(), signature=info.signature)
    return str(path)


def _serve(uri: str, env: dict) -> tuple[subprocess.Popen, str]:
    port = _port()
    proc = subprocess.Popen(serve_command(uri, "127.0.0.1", port, workers=1), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    for _ in range(480):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"server for {uri} exited with {proc.returncode}") from None
            time.sleep(0.5)
    return proc, f"http://127.0.0.1:{port}/invocations"


def _latency(url: str, rows: list[dict], requests: int, client_counts: list[int]) -> dict:
    _post(url, rows[:1])  # warm-up
    _post(url, rows[:32])
    results = {}
    for batch in (1, 32):
        for clients in client_counts:

            def client(c: int, batch: int = batch) -> list[float]:
                lat = []
                for i in range(requests):
                    start = (c * requests + i) * batch % len(rows)
                    chunk = (rows + rows)[start : start + batch]
                    lat.append(_post(url, chunk)[0])
                return lat

            t0 = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                lats = [x for lat in pool.map(client, range(clients)) for x in lat]
            wall = time.perf_counter() - t0
            key = f"batch{batch}_clients{clients}"
            results[key] = {
                "requests": len(lats),
                "p50_ms": round(1000 * float(np.percentile(lats, 50)), 1),
                "p99_ms": round(1000 * float(np.percentile(lats, 99)), 1),
                "recordings_per_s": round(len(lats) * batch / wall, 1),
            }
            print(f"  {key}: {results[key]}", flush=True)
    return results


def _resampling(url: str, rows: list[dict]) -> dict:
    """500 Hz vs the same recording resampled to 250 Hz."""
    down = [{**r, "fs": 250.0, "signal": np.round(resample(np.asarray(r["signal"]), 500, 250), 4).tolist()}
            for r in rows]  # fmt: skip
    _, a = _post(url, rows)
    _, b = _post(url, down)
    ok = [i for i in range(len(rows)) if a[i]["quality"] == b[i]["quality"] == "ok"]
    lat = sorted(k for k in a[0] if k.startswith("latent_"))
    d = np.array([[abs(a[i][k] - b[i][k]) for k in lat] for i in ok])
    dp = np.array([abs(a[i]["probability"] - b[i]["probability"]) for i in ok])
    spread = np.std([[a[i][k] for k in lat] for i in ok], axis=0)
    return {
        "recordings_compared": len(ok),
        "latent_abs_diff_median": round(float(np.median(d)), 4),
        "latent_abs_diff_p95": round(float(np.percentile(d, 95)), 4),
        "latent_abs_diff_max": round(float(d.max()), 4),
        "latent_std_across_recordings": [round(float(s), 4) for s in spread],
        "probability_abs_diff_median": round(float(np.median(dp)), 4),
        "probability_abs_diff_max": round(float(dp.max()), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=None)
    ap.add_argument("--requests", type=int, default=40, help="requests per client and setting")
    ap.add_argument("--recordings", type=int, default=64)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 8],
                    help="concurrent clients per setting (1 is what the ratios use)")  # fmt: skip
    args = ap.parse_args()
    params = load_params(REPO / "params.yaml")
    uri = args.model or default_model_uri(params)
    tracking = os.environ.get("MLFLOW_TRACKING_URI", params.tracking.tracking_uri)
    mlflow.set_tracking_uri(tracking)
    rows = _load(args.recordings)
    # 8 clients × 32 recordings queue for longer than MLflow's default 60 s request timeout
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking,
           "MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT": "900"}  # fmt: skip
    latency = {}
    with tempfile.TemporaryDirectory() as tmp:
        floor_uri = _floor_model(uri, Path(tmp))
        # one server at a time: the two never compete for the CPU
        for name, model in (("floor", floor_uri), ("model", uri)):
            print(f"{name}: {model}", flush=True)
            proc, url = _serve(model, env)
            try:
                latency[name] = _latency(url, rows, args.requests, args.clients)
                if name == "model":
                    resampling = _resampling(url, rows)
                    print(f"500 vs 250 Hz: {resampling}")
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    ratios = {
        "one_record_p50_model_over_floor": round(
            latency["model"]["batch1_clients1"]["p50_ms"]
            / latency["floor"]["batch1_clients1"]["p50_ms"], 2),
        "batch32_throughput_model_over_floor": round(
            latency["model"]["batch32_clients1"]["recordings_per_s"]
            / latency["floor"]["batch32_clients1"]["recordings_per_s"], 2),
        "targets": {"one_record_p50_model_over_floor": "<= 2.0",
                    "batch32_throughput_model_over_floor": ">= 0.6"},
    }  # fmt: skip
    print(f"ratios: {ratios}")
    path = write_result(
        "serving",
        {"model": uri, "latency": latency["model"], "floor_latency": latency["floor"],
         "ratios": ratios, "resampling_500_vs_250": resampling},
    )  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

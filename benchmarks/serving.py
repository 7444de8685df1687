"""Served-model latency and throughput, and 500 Hz vs 250 Hz feature agreement.

    python benchmarks/serving.py [--model models:/ecg-task-vae-ptbxl-mi@champion] [--requests 40]

Starts `mlflow models serve` on a free 127.0.0.1 port against the configured tracking store,
posts real PTB-XL recordings (1 and 32 per request, from 1 and 8 concurrent clients, a bounded
number of requests each), and reports p50/p99 latency and recordings/s. Then scores each
recording at 500 Hz and resampled to 250 Hz and reports how far the latent features move.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=None)
    ap.add_argument("--requests", type=int, default=40, help="requests per client and setting")
    ap.add_argument("--recordings", type=int, default=64)
    args = ap.parse_args()
    params = load_params(REPO / "params.yaml")
    uri = args.model or default_model_uri(params)
    tracking = os.environ.get("MLFLOW_TRACKING_URI", params.tracking.tracking_uri)
    rows = _load(args.recordings)
    port = _port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking}
    proc = subprocess.Popen(serve_command(uri, "127.0.0.1", port, workers=1), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}/invocations"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        _post(url, rows[:1])  # warm-up
        results = {}
        for batch in (1, 32):
            for clients in (1, 8):

                def client(c: int, batch: int = batch) -> list[float]:
                    lat = []
                    for i in range(args.requests):
                        start = (c * args.requests + i) * batch % len(rows)
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
                print(f"{key}: {results[key]}", flush=True)
        # 500 Hz vs the same recording resampled to 250 Hz.
        down = [{**r, "fs": 250.0, "signal": np.round(resample(np.asarray(r["signal"]), 500, 250), 4).tolist()}
                for r in rows]  # fmt: skip
        _, a = _post(url, rows)
        _, b = _post(url, down)
        ok = [i for i in range(len(rows)) if a[i]["quality"] == b[i]["quality"] == "ok"]
        lat = sorted(k for k in a[0] if k.startswith("latent_"))
        d = np.array([[abs(a[i][k] - b[i][k]) for k in lat] for i in ok])
        dp = np.array([abs(a[i]["probability"] - b[i]["probability"]) for i in ok])
        spread = np.std([[a[i][k] for k in lat] for i in ok], axis=0)
        resampling = {
            "recordings_compared": len(ok),
            "latent_abs_diff_median": round(float(np.median(d)), 4),
            "latent_abs_diff_p95": round(float(np.percentile(d, 95)), 4),
            "latent_abs_diff_max": round(float(d.max()), 4),
            "latent_std_across_recordings": [round(float(s), 4) for s in spread],
            "probability_abs_diff_median": round(float(np.median(dp)), 4),
            "probability_abs_diff_max": round(float(dp.max()), 4),
        }
        print(f"500 vs 250 Hz: {resampling}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    path = write_result(
        "serving", {"model": uri, "latency": results, "resampling_500_vs_250": resampling}
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

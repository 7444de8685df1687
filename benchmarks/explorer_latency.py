"""Slider response of `ecglatent explore` in Debian's Chromium (target: <= 100 ms per move).

    python benchmarks/explorer_latency.py [--model models:/ecg-task-vae-ptbxl-mi@champion] [--moves 60]

Starts the explorer app on a free 127.0.0.1 port against the configured tracking store, opens
it in headless Chromium (Playwright, /usr/bin/chromium), steps one slider with the keyboard
``--moves`` times (each move drawn before the next) and reports the time from the input event
to every lead redrawn: p50/p95/max, split into the request to the app and the redraw. Also
times the Python side alone (decode + probe + head of one latent vector). The load average
is recorded: on a shared machine the figures are upper bounds.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from ecglatent.config import load_params  # noqa: E402
from ecglatent.explorer.app import HOST, create_app  # noqa: E402
from ecglatent.explorer.model import ExplorerModel  # noqa: E402
from ecglatent.tracking import runs  # noqa: E402
from ecglatent.tracking.serving import default_model_uri  # noqa: E402

DRAWN = "window.explorer.drawnVersion === window.explorer.version && !window.explorer.busy"


def _stats(values: list[float]) -> dict[str, float]:
    a = np.asarray(values)
    return {"p50_ms": round(float(np.median(a)), 2), "p95_ms": round(float(np.percentile(a, 95)), 2),
            "max_ms": round(float(a.max()), 2)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=None)
    ap.add_argument("--params", default=None)
    ap.add_argument("--moves", type=int, default=60)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    import socket

    import uvicorn
    from playwright.sync_api import sync_playwright

    params = load_params(args.params)
    runs.configure(params.tracking)
    uri = args.model or default_model_uri(params)
    import torch

    torch.set_num_threads(1)  # as `ecglatent explore` runs it
    model = ExplorerModel.load(uri)
    z = model.summary.train_mean
    py_ms = []
    for i in range(200):
        t0 = time.perf_counter()
        model.decode(z + 0.001 * i)
        py_ms.append((time.perf_counter() - t0) * 1000)

    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(model), host=HOST, port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1500, "height": 900})
        page.goto(f"http://{HOST}:{port}/")
        page.wait_for_function("window.explorer && window.explorer.ready")
        page.locator("#z-0").focus()
        for i in range(args.moves + 5):  # five warm-up moves
            page.keyboard.press("ArrowRight" if (i // 20) % 2 == 0 else "ArrowLeft")
            page.wait_for_function(DRAWN)
        st = page.evaluate("({lat: window.explorer.latencies, t: window.explorer.timings})")
        browser.close()
    server.should_exit = True
    lat, parts = st["lat"][5:], st["t"][5:]
    result = {
        "model": uri, "latent_dim": model.latent_dim, "leads": len(model.lead_names),
        "moves": len(lat), "load_average_1min": round(os.getloadavg()[0], 2),
        "slider_to_redraw": _stats(lat),
        "request": _stats([t["request_ms"] for t in parts]),
        "redraw_all_leads": _stats([t["draw_ms"] for t in parts]),
        "python_decode_probe_head": _stats(py_ms),
        "target_ms": 100,
    }  # fmt: skip
    path = write_result("explorer_latency", result)
    print(f"{path}: {result}")


if __name__ == "__main__":
    main()

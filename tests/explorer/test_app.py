"""`ecglatent explore` in a real Chromium: sliders, scatter clicks and uploads against Python."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecglatent.sources import ptbxl
from ecglatent.sources.records import read_record
from tests.explorer.conftest import PageLog

WAIT_DRAWN = "window.explorer.drawnVersion === window.explorer.version && !window.explorer.busy"
N_LATENCY_MOVES = 25


@pytest.fixture()
def page(browser, explore_url):
    page = browser.new_page(viewport={"width": 1500, "height": 900})
    log = PageLog(page)
    page.goto(explore_url)
    page.wait_for_function("window.explorer && window.explorer.ready", timeout=30_000)
    yield page, log
    assert log.errors == [], log.errors
    page.close()


def _drawn(page) -> dict:
    return page.evaluate(
        """() => { const s = window.explorer;
          const leads = {};
          document.querySelectorAll('#beats canvas').forEach((c) => {
            const ds = Chart.getChart(c).data.datasets;
            leads[c.id.slice(5)] = {decoded: ds[1].data.map((p) => p.y), reference: ds[0].data.map((p) => p.y)};
          });
          return {z: s.z, rr: s.rr, probability: s.probability, head: s.headProbability, leads,
                  shown: document.getElementById('probability').textContent,
                  shownHead: document.getElementById('head-probability').textContent,
                  sliders: [...document.querySelectorAll('#sliders input')].map((i) => Number(i.value)),
                  source: s.source, latencies: s.latencies}; }"""
    )


def _assert_page_matches_python(state: dict, model, rr=None) -> None:
    d = model.decode(np.asarray(state["z"]), np.asarray(state["rr"] if rr is None else rr))
    assert sorted(state["leads"]) == sorted(model.lead_names)
    for i, lead in enumerate(model.lead_names):
        drawn = np.asarray(state["leads"][lead]["decoded"])
        assert drawn.shape == d.beat[i].shape
        np.testing.assert_allclose(drawn, d.beat[i], atol=1e-4, rtol=0, err_msg=lead)
    assert abs(state["probability"] - d.probability) < 1e-9
    assert state["shown"] == f"{d.probability:.4f}"
    assert d.head_probability is not None and abs(state["head"] - d.head_probability) < 1e-9
    assert state["shownHead"] == f"{d.head_probability:.4f}"


def test_slider_move_redraws_every_lead_as_the_python_decoder(page, explorer_model, artifacts_dir):
    page, _ = page
    m = explorer_model
    before = _drawn(page)
    # 12-lead layout, the reference (grey) is the decoded training mean
    order = page.evaluate(
        "[...document.querySelectorAll('#beats canvas')].map((c) => c.id.slice(5))"
    )
    assert order == ["I", "aVR", "V1", "V4", "II", "aVL", "V2", "V5", "III", "aVF", "V3", "V6"]
    ref = m.decode(m.summary.train_mean)
    for i, lead in enumerate(m.lead_names):
        np.testing.assert_allclose(before["leads"][lead]["reference"], ref.beat[i], atol=1e-4)

    box = page.locator("#z-0").bounding_box()
    page.mouse.click(box["x"] + 0.85 * box["width"], box["y"] + box["height"] / 2)
    page.wait_for_function(WAIT_DRAWN)
    after = _drawn(page)
    lo, hi = m.slider_ranges()
    assert after["z"][0] > m.summary.train_mean[0] + 0.5 * m.summary.train_sd[0]
    assert lo[0] <= after["z"][0] <= hi[0]
    assert after["z"][1:] == pytest.approx(list(m.summary.train_mean[1:]))
    assert after["source"] == "sliders"
    _assert_page_matches_python(after, m)
    moved = np.asarray(after["leads"]["II"]["decoded"]) - np.asarray(
        before["leads"]["II"]["decoded"]
    )
    assert np.abs(moved).max() > 1e-4, "moving z0 by > 0.5 sd changed nothing"
    page.screenshot(path=str(artifacts_dir / "live_slider.png"))

    # Slider response: keyboard steps, each one drawn before the next
    page.locator("#z-1").focus()
    n0 = len(after["latencies"])
    for _ in range(N_LATENCY_MOVES):
        page.keyboard.press("ArrowLeft")
        page.wait_for_function(WAIT_DRAWN)
    lat = np.asarray(_drawn(page)["latencies"][n0:])
    assert len(lat) == N_LATENCY_MOVES
    _assert_page_matches_python(_drawn(page), m)
    parts = page.evaluate("window.explorer.timings")[-N_LATENCY_MOVES:]
    figures = {"moves": int(len(lat)), "median_ms": float(np.median(lat)),
               "p95_ms": float(np.percentile(lat, 95)), "max_ms": float(lat.max()),
               "median_request_ms": float(np.median([t["request_ms"] for t in parts])),
               "median_draw_ms": float(np.median([t["draw_ms"] for t in parts])),
               "load_average_1min": os.getloadavg()[0], "cpus": os.cpu_count()}  # fmt: skip
    (artifacts_dir / "slider_latency.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nslider response (input event → all leads redrawn): {figures}")


def test_scatter_click_loads_that_records_encoding(page, explorer_model, artifacts_dir):
    page, _ = page
    m = explorer_model
    s = m.summary
    pix = [
        page.evaluate("(i) => window.explorer.scatterPixel(i)", i) for i in range(len(s.test_ids))
    ]
    lo, hi = m.slider_ranges()
    # a point on its own (no neighbour within 12 px) whose encoding the sliders can show
    pick = next(
        i for i, p in enumerate(pix)
        if p and all(np.hypot(p["x"] - q["x"], p["y"] - q["y"]) > 12 for j, q in enumerate(pix) if j != i and q)
        and np.all((s.test_z[i] >= lo) & (s.test_z[i] <= hi))
    )  # fmt: skip
    box = page.locator("#scatter").bounding_box()
    page.mouse.click(box["x"] + pix[pick]["x"], box["y"] + pix[pick]["y"])
    page.wait_for_function(WAIT_DRAWN)
    state = _drawn(page)
    assert state["source"].startswith(f"test item {s.test_ids[pick]} ")
    np.testing.assert_allclose(state["sliders"], s.test_z[pick], atol=1e-5)
    np.testing.assert_allclose(state["z"], s.test_z[pick], atol=1e-5)
    np.testing.assert_allclose(state["rr"], s.test_rr[pick], atol=1e-5)
    # The "drawn" flag can still be the previous draw's right after the click; wait (bounded)
    # for the redraw of this record's encoding, then require an exact match.
    deadline = time.monotonic() + 10
    while True:
        try:
            _assert_page_matches_python(state, m)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            page.wait_for_timeout(100)
            state = _drawn(page)
    page.screenshot(path=str(artifacts_dir / "live_scatter_click.png"))


def _wfdb_files(mirror: Path) -> tuple[list[Path], dict]:
    """A PTB-XL record beyond the tiny run's 60 (never seen in training): files and its row."""
    root = mirror / "ptb-xl"
    row = ptbxl.read_database(root).sort_index().iloc[-1]
    base = ptbxl.record_path(root, row, 500)
    rec = read_record(base)
    files = [base.with_suffix(".hea"), base.with_suffix(".dat")]
    return files, {"signal": rec.signal.tolist(), "fs": rec.fs, "leads": list(rec.leads)}


def test_uploaded_record_is_scored_as_served_and_placed(page, explorer_model, mirror, tmp_path,
                                                        artifacts_dir):  # fmt: skip
    page, log = page
    m = explorer_model
    files, row = _wfdb_files(mirror)
    served = m.pyfunc.predict(pd.DataFrame([row])).iloc[0]
    assert served["quality"] == "ok"
    z_served = [served[f"latent_{i}"] for i in range(m.latent_dim)]

    page.set_input_files("#upload", [str(f) for f in files])
    page.wait_for_function("window.explorer.uploads.length === 1")
    page.wait_for_function(WAIT_DRAWN)
    up = page.evaluate("window.explorer.uploads[0]")
    assert up["name"] == files[0].name
    np.testing.assert_allclose(up["z"], z_served, atol=1e-6)
    assert abs(up["probability"] - served["probability"]) < 1e-9
    placed = page.evaluate("window.explorer.scatter.data.datasets[2].data")
    assert len(placed) == 1
    assert placed[0]["x"] == pytest.approx(z_served[0]) and placed[0]["y"] == pytest.approx(
        z_served[1]
    )
    state = _drawn(page)
    assert state["source"] == f"uploaded {files[0].name}"
    np.testing.assert_allclose(state["z"], z_served, atol=1e-6)
    _assert_page_matches_python(state, m)
    page.screenshot(path=str(artifacts_dir / "live_upload.png"))

    # the same recording as a JSON file lands on the same spot
    js = tmp_path / "recording.json"
    js.write_text(json.dumps(row))
    page.set_input_files("#upload", str(js))
    page.wait_for_function("window.explorer.uploads.length === 2")
    np.testing.assert_allclose(page.evaluate("window.explorer.uploads[1].z"), z_served, atol=1e-6)

    # a header without its signal file: a message, nothing placed
    page.set_input_files("#upload", str(files[0]))
    page.wait_for_function("document.getElementById('upload-status').className === 'error'")
    assert "cannot read" in page.locator("#upload-status").text_content()
    assert page.evaluate("window.explorer.uploads.length") == 2
    log.messages[:] = [m for m in log.messages if "400 (Bad Request)" not in m[1]]

"""The evaluate stage's self-contained explorer: opens from file:// offline, logged to MLflow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from mlflow import MlflowClient

from ecglatent.explorer.static_page import STEPS
from tests.explorer.conftest import PageLog


def _static_path(work, model_version) -> tuple:
    run = MlflowClient().get_run(model_version[1])
    return work / "reports" / "explorer" / "ptbxl" / f"{model_version[2]}.html", run


def test_static_page_opens_from_file_offline_and_snaps_to_the_grid(tiny_vae_run, model_version,
                                                                   explorer_model, browser,
                                                                   artifacts_dir):  # fmt: skip
    work, _ = tiny_vae_run
    path, _ = _static_path(work, model_version)
    assert path.is_file(), path
    html = path.read_text()
    assert "<script src=" not in html and "http://" not in html.replace("http://www.w3.org", "")
    m = explorer_model
    ctx = browser.new_context(offline=True)  # any request beyond the file would fail
    page = ctx.new_page()
    log = PageLog(page)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_function("window.explorer && window.explorer.ready", timeout=30_000)
    assert page.locator("#sliders input").count() == m.latent_dim
    k = m.latent_dim - 1
    page.locator(f"#z-{k}").fill(str(STEPS - 1))  # the last grid step: +3 sd
    page.wait_for_function("window.explorer.drawnVersion === window.explorer.version")
    state = page.evaluate(
        """() => ({z: window.explorer.z, p: window.explorer.probability, h: window.explorer.headProbability,
                   shown: document.getElementById('probability').textContent,
                   leads: Object.fromEntries([...document.querySelectorAll('#beats canvas')].map(
                     (c) => [c.id.slice(5), Chart.getChart(c).data.datasets[1].data.map((p) => p.y)]))})"""
    )
    z = m.summary.train_mean.copy()
    z[k] += 3 * m.summary.train_sd[k]
    np.testing.assert_allclose(state["z"], z, atol=1e-6)
    d = m.decode(z)
    for i, lead in enumerate(m.lead_names):  # 1 µV storage, float32 decoding in the browser
        np.testing.assert_allclose(state["leads"][lead], d.beat[i], atol=1e-3, err_msg=lead)
    assert abs(state["p"] - d.probability) < 1e-6 and state["shown"] == f"{d.probability:.4f}"
    assert abs(state["h"] - d.head_probability) < 1e-6
    page.screenshot(path=str(artifacts_dir / "static_page.png"))
    assert log.errors == [], log.errors
    assert all(u.startswith(("file://", "data:", "blob:")) for u in requests), requests
    ctx.close()


def test_static_page_is_a_run_artifact_and_runs_in_mlflows_html_viewer(tiny_vae_run, model_version,
                                                                        browser):  # fmt: skip
    """MLflow 3.17's UI shows .html artifacts in ``<iframe sandbox="allow-scripts">`` from a blob."""
    work, _ = tiny_vae_run
    path, run = _static_path(work, model_version)
    client = MlflowClient()
    names = [a.path for a in client.list_artifacts(run.info.run_id, "explorer")]
    assert names == [f"explorer/{path.name}"]
    local = client.download_artifacts(run.info.run_id, names[0])
    assert Path(local).read_text(encoding="utf-8") == path.read_text()

    page = browser.new_page()
    log = PageLog(page)
    page.set_content(
        "<html><body><iframe id='f' sandbox='allow-scripts' width=1400 height=800></iframe></body></html>"
    )
    page.evaluate(
        "(html) => { document.getElementById('f').src = URL.createObjectURL(new Blob([html], {type: 'text/html'})); }",
        path.read_text(),
    )
    page.wait_for_function("document.getElementById('f').contentWindow !== null")
    frame = next(f for f in page.frames if f.url.startswith("blob:"))
    frame.wait_for_function("window.explorer && window.explorer.ready", timeout=30_000)
    assert frame.evaluate("window.explorer.grid.values.length") > 0
    assert log.errors == [], log.errors
    page.close()

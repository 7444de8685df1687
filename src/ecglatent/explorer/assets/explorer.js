// ecglatent latent explorer: sliders per latent factor, the decoded beat per lead, probe/head
// probabilities, and the test records' latent scatter. Two back ends share this page:
//   live   - `ecglatent explore`: every latent vector is decoded by the Python app (api/decode);
//   static - the evaluate stage's self-contained file: a precomputed grid (one factor at a
//            time, the others at the training mean), sliders snap to its steps.
"use strict";
(async function () {
  const cfg = JSON.parse(document.getElementById("explorer-config").textContent);
  const meta = cfg.meta;
  const live = cfg.mode === "live";
  const L = meta.latent_dim;
  const T = meta.n_samples;
  const nLeads = meta.leads.length;
  const times = Array.from({ length: T }, (_, i) => ((i - T / 2) / meta.fs) * 1000);
  const $ = (id) => document.getElementById(id);

  // Everything a test (or a curious user in the console) may want to read.
  const state = {
    ready: false, mode: cfg.mode, z: meta.train_mean.slice(), rr: [0, 0],
    beat: meta.reference.beat, probability: meta.reference.probability,
    headProbability: meta.reference.head_probability, source: "training mean",
    version: 0, drawnVersion: 0, busy: false, latencies: [], timings: [], uploads: [], errors: [],
  };
  window.explorer = state;

  // ---- static grid ------------------------------------------------------------------------
  let grid = null;
  if (!live) {
    const g = cfg.grid;
    const bin = Uint8Array.from(atob(g.data), (c) => c.charCodeAt(0));
    const stream = new Blob([bin]).stream().pipeThrough(new DecompressionStream("gzip"));
    const q = new Int16Array(await new Response(stream).arrayBuffer());
    const values = new Float32Array(q.length);
    for (let r = 0; r < q.length / T; r++) {
      let acc = 0; // each row is delta coded along time
      for (let t = 0; t < T; t++) { acc += q[r * T + t]; values[r * T + t] = acc * g.scale; }
    }
    grid = { ...g, values, S: g.steps_sd.length };
    state.grid = grid;
  }
  function gridBeat(k, s) {
    const out = [];
    for (let l = 0; l < nLeads; l++) {
      const off = ((k * grid.S + s) * nLeads + l) * T;
      out.push(Array.from(grid.values.subarray(off, off + T)));
    }
    return out;
  }

  // ---- header -----------------------------------------------------------------------------
  const taskName = meta.label_names[1];
  $("model-info").textContent = `${cfg.title ? `${cfg.title} (${meta.uri})` : meta.uri} · L = ${L}` +
    (meta.latent_pred ? ` · head reads z0..z${meta.latent_pred - 1}` : " · task naive") +
    ` · ${nLeads} lead(s) at ${meta.fs} Hz · ${meta.test.ids.length} test items` +
    (live ? "" : " · static page");
  document.querySelectorAll(".task-name").forEach((e) => { e.textContent = taskName; });
  if (meta.latent_pred == null) $("head-row").style.display = "none";

  // ---- beat charts (one per lead) -----------------------------------------------------------
  const xy = (ys) => ys.map((y, i) => ({ x: times[i], y }));
  const beatsDiv = $("beats");
  if (nLeads <= 2) beatsDiv.classList.add("two");
  const leadCharts = [];
  for (const li of meta.display_leads) {
    const box = document.createElement("div");
    box.className = "lead";
    const canvas = document.createElement("canvas");
    canvas.id = "lead-" + meta.leads[li];
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = meta.leads[li];
    box.append(canvas, name);
    beatsDiv.append(box);
    const chart = new Chart(canvas, {
      type: "line",
      data: { datasets: [
        { label: "reference", data: xy(meta.reference.beat[li]), borderColor: "#b0b0b0", borderWidth: 1.5 },
        { label: "decoded", data: xy(state.beat[li]), borderColor: "#c0392b", borderWidth: 1.5 },
      ] },
      options: {
        animation: false, parsing: false, normalized: true, spanGaps: true, responsive: true,
        maintainAspectRatio: false, events: [], elements: { point: { radius: 0 } },
        plugins: { legend: { display: false }, tooltip: { enabled: false } },
        scales: {
          x: { type: "linear", min: times[0], max: -times[0], ticks: { stepSize: 200, includeBounds: false, font: { size: 9 } } },
          y: { min: meta.y_ranges[li][0], max: meta.y_ranges[li][1], ticks: { maxTicksLimit: 5, includeBounds: false, font: { size: 9 } } },
        },
      },
    });
    leadCharts.push({ lead: li, chart });
  }
  state.leadChart = (name) => leadCharts.find((c) => meta.leads[c.lead] === name).chart;

  function showScores() {
    $("probability").textContent = state.probability.toFixed(4);
    if (state.headProbability != null) $("head-probability").textContent = state.headProbability.toFixed(4);
    const rrS = state.rr.map((r, i) => meta.rr_mean_s[i] + r * meta.rr_std_s[i]);
    $("rr-info").textContent = `${rrS[0].toFixed(3)} s, ${rrS[1].toFixed(3)} s`;
    $("source").textContent = state.source;
  }
  function draw(beat) {
    state.beat = beat;
    for (const { lead, chart } of leadCharts) {
      // in place: no 400 new point objects per lead and move
      const pts = chart.data.datasets[1].data;
      const ys = beat[lead];
      for (let i = 0; i < T; i++) pts[i].y = ys[i];
      chart.update("none");
    }
    showScores();
    updateCurrentPoint();
  }

  // ---- sliders ------------------------------------------------------------------------------
  const sliders = [];
  const valueLabels = [];
  const mid = live ? null : (grid.S - 1) / 2;
  $("slider-hint").textContent = live
    ? "Each slider spans the training mean ± 3 sd of one latent; the beat is decoded as you move."
    : `Static page: one factor at a time (the others at the training mean), ${grid ? grid.S : 0} precomputed steps from −3 to +3 sd. Run \`ecglatent explore\` to move several at once.`;
  for (let k = 0; k < L; k++) {
    const div = document.createElement("div");
    div.className = "slider";
    const label = document.createElement("label");
    const name = document.createElement("span");
    name.textContent = `z${k}`;
    if (meta.latent_pred && k < meta.latent_pred) { name.className = "pred"; name.title = "read by the prediction head"; }
    const value = document.createElement("span");
    label.append(name, value);
    const input = document.createElement("input");
    input.type = "range";
    input.id = `z-${k}`;
    if (live) {
      input.min = meta.slider_lo[k]; input.max = meta.slider_hi[k]; input.step = "any";
      input.value = meta.train_mean[k];
    } else {
      input.min = 0; input.max = grid.S - 1; input.step = 1; input.value = mid;
    }
    input.addEventListener("input", () => onSlider(k));
    div.append(label, input);
    $("sliders").append(div);
    sliders.push(input);
    valueLabels.push(value);
  }
  function showSliderValues() {
    for (let k = 0; k < L; k++) {
      const sd = (state.z[k] - meta.train_mean[k]) / meta.train_sd[k];
      const outside = Math.abs(sd) > 3 + 1e-9 ? " beyond ±3 sd" : "";
      valueLabels[k].textContent = `${state.z[k].toFixed(3)} (${sd >= 0 ? "+" : ""}${sd.toFixed(2)} sd${outside})`;
    }
  }
  function setSliders() {
    for (let k = 0; k < L; k++) {
      if (live) sliders[k].value = state.z[k];
    }
    showSliderValues();
  }

  function onSlider(k) {
    state.inputTime = performance.now();
    state.version += 1;
    if (live) {
      state.z[k] = Number(sliders[k].value);
      state.source = "sliders";
      showSliderValues();
      pump();
      return;
    }
    const s = Number(sliders[k].value);
    for (let j = 0; j < L; j++) if (j !== k) sliders[j].value = mid;
    state.z = meta.train_mean.slice();
    state.z[k] = meta.train_mean[k] + grid.steps_sd[s] * meta.train_sd[k];
    state.rr = [0, 0];
    state.probability = grid.probability[k][s];
    state.headProbability = grid.head_probability ? grid.head_probability[k][s] : null;
    state.source = `z${k} at ${grid.steps_sd[s] >= 0 ? "+" : ""}${grid.steps_sd[s].toFixed(1)} sd (grid)`;
    showSliderValues();
    draw(gridBeat(k, s));
    finishVersion(state.version, state.inputTime);
  }
  function finishVersion(v, t0) {
    state.drawnVersion = v;
    if (t0 != null) {
      const ms = performance.now() - t0;
      state.latencies.push(ms);
      $("latency").textContent = `${ms.toFixed(1)} ms`;
    }
  }

  // ---- live decoding: one request in flight, the newest slider position next ---------------
  async function post(path, body) {
    const res = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const data = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
    if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
    return data;
  }
  async function pump() {
    if (state.busy) return;
    state.busy = true;
    try {
      while (state.drawnVersion !== state.version) {
        const v = state.version;
        const t0 = state.inputTime;
        const z = state.z.slice();
        const rr = state.rr.slice();
        try {
          const t1 = performance.now();
          const d = await post("api/decode", { z, rr });
          const t2 = performance.now();
          state.drawnZ = z;
          state.probability = d.probability;
          state.headProbability = d.head_probability;
          draw(d.beat);
          // where the time goes: the round trip to the app, and redrawing every lead
          state.timings.push({ request_ms: t2 - t1, draw_ms: performance.now() - t2 });
        } catch (err) {
          state.errors.push(String(err));
          $("source").textContent = `decode failed: ${err.message}`;
        }
        finishVersion(v, t0);
      }
    } finally {
      state.busy = false;
    }
  }

  $("reset").addEventListener("click", () => {
    state.z = meta.train_mean.slice();
    state.rr = [0, 0];
    state.source = "training mean";
    state.inputTime = null;
    state.version += 1;
    state.probability = meta.reference.probability;
    state.headProbability = meta.reference.head_probability;
    if (!live) sliders.forEach((s) => { s.value = mid; });
    setSliders();
    draw(meta.reference.beat);
    finishVersion(state.version, null);
  });

  // ---- scatter of test items ----------------------------------------------------------------
  const axisX = $("axis-x");
  const axisY = $("axis-y");
  for (const sel of [axisX, axisY]) {
    for (let k = 0; k < L; k++) sel.add(new Option(`z${k}`, String(k)));
  }
  axisY.value = String(Math.min(1, L - 1));
  const colours = ["#2e86c1", "#c0392b"];
  function pointsFor(label) {
    const ax = Number(axisX.value);
    const ay = Number(axisY.value);
    const pts = [];
    meta.test.z.forEach((z, i) => {
      if (meta.test.y[i] === label) pts.push({ x: z[ax], y: z[ay], i, name: meta.test.ids[i] });
    });
    return pts;
  }
  function uploadPoints() {
    const ax = Number(axisX.value);
    const ay = Number(axisY.value);
    return state.uploads.map((u, j) => ({ x: u.z[ax], y: u.z[ay], j, name: u.name }));
  }
  const scatter = new Chart($("scatter"), {
    type: "scatter",
    data: { datasets: [
      { label: meta.label_names[0], data: pointsFor(0), backgroundColor: colours[0] + "99", pointRadius: 4, order: 3 },
      { label: meta.label_names[1], data: pointsFor(1), backgroundColor: colours[1] + "cc", pointRadius: 4, order: 2 },
      { label: "uploaded", data: [], backgroundColor: "#27ae60", borderColor: "#145a32", pointStyle: "rectRot", pointRadius: 8, order: 1 },
      { label: "current", data: [], backgroundColor: "#000", borderColor: "#000", pointStyle: "crossRot", pointRadius: 9, borderWidth: 2, order: 0 },
    ] },  // lower order is drawn on top: the (usually rarer) task label over the rest
    options: {
      animation: false, parsing: false, responsive: true, maintainAspectRatio: false,
      interaction: { mode: "nearest", intersect: true },
      plugins: { tooltip: { callbacks: { label: (ctx) => `${ctx.dataset.label}: ${ctx.raw.name ?? "current"}` } } },
      scales: { x: { title: { display: true, text: "z0" } }, y: { title: { display: true, text: `z${axisY.value}` } } },
      onClick: (evt, elements) => {
        const el = elements.find((e) => e.datasetIndex <= 2);
        if (!el) return;
        const raw = scatter.data.datasets[el.datasetIndex].data[el.index];
        if (el.datasetIndex === 2) loadUpload(raw.j); else loadRecord(raw.i);
      },
    },
  });
  function updateCurrentPoint() {
    const ax = Number(axisX.value);
    const ay = Number(axisY.value);
    scatter.data.datasets[3].data = [{ x: state.z[ax], y: state.z[ay] }];
    scatter.update("none");
  }
  function refreshScatter() {
    scatter.data.datasets[0].data = pointsFor(0);
    scatter.data.datasets[1].data = pointsFor(1);
    scatter.data.datasets[2].data = uploadPoints();
    scatter.options.scales.x.title.text = `z${axisX.value}`;
    scatter.options.scales.y.title.text = `z${axisY.value}`;
    updateCurrentPoint();
  }
  axisX.addEventListener("change", refreshScatter);
  axisY.addEventListener("change", refreshScatter);
  // CSS-pixel position of test item i (or upload j) inside the scatter canvas, for tests.
  state.scatterPixel = (i, uploaded = false) => {
    const d = uploaded ? 2 : meta.test.y[i];
    const idx = scatter.data.datasets[d].data.findIndex((p) => (uploaded ? p.j === i : p.i === i));
    const el = scatter.getDatasetMeta(d).data[idx];
    return el ? { x: el.x, y: el.y } : null;
  };
  state.scatter = scatter;

  function loadEncoding(z, rr, source) {
    state.z = z.slice();
    state.rr = rr.slice();
    state.source = source;
    state.inputTime = null;
    state.version += 1;
    setSliders();
    if (live) pump(); else { showScores(); updateCurrentPoint(); finishVersion(state.version, null); }
  }
  function loadRecord(i) {
    const label = meta.label_names[meta.test.y[i]];
    if (live) {
      loadEncoding(meta.test.z[i], meta.test.rr[i], `test item ${meta.test.ids[i]} (${label})`);
      return;
    }
    // No decoder here: name the item and give its probe probability; the beat stays.
    state.selected = i;
    $("scatter-hint").textContent = `test item ${meta.test.ids[i]} (${label}): probe probability ` +
      `${meta.test.probability[i].toFixed(4)}; latents ${meta.test.z[i].map((v) => v.toFixed(2)).join(", ")}`;
  }
  function loadUpload(j) {
    const u = state.uploads[j];
    loadEncoding(u.z, u.rr, `uploaded ${u.name}`);
  }
  state.loadRecord = loadRecord;

  // ---- upload (live only) -------------------------------------------------------------------
  function b64(buf) {
    const bytes = new Uint8Array(buf);
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(s);
  }
  if (!live) {
    $("upload").disabled = true;
    $("upload-hint").textContent = "Uploads need the decoder: run `ecglatent explore --model <this model>`.";
    $("scatter-hint").textContent = "Click a point to see its id and probability.";
  } else {
    $("upload-hint").textContent = meta.mode === "record"
      ? "A WFDB record (select its .hea and .dat together) or a JSON recording {signal, fs, leads}; scored by the served model's own preprocessing."
      : "A JSON beat {beat, rr} at the model's sampling rate; scored as the served model does.";
    $("upload").addEventListener("change", async (ev) => {
      const status = $("upload-status");
      status.className = "";
      status.textContent = "scoring…";
      try {
        const files = {};
        for (const f of ev.target.files) files[f.name] = b64(await f.arrayBuffer());
        const d = await post("api/upload", { files });
        if (d.quality !== "ok") throw new Error(`${d.name}: ${d.quality}`);
        state.uploads.push(d);
        scatter.data.datasets[2].data = uploadPoints();
        status.textContent = `${d.name}: probe probability ${d.probability.toFixed(4)} (${d.n_beats} beats); placed in the scatter`;
        loadUpload(state.uploads.length - 1);
      } catch (err) {
        state.errors.push(String(err));
        status.className = "error";
        status.textContent = String(err.message || err);
      }
    });
  }

  setSliders();
  showScores();
  updateCurrentPoint();
  state.ready = true;
})().catch((err) => {
  console.error("explorer failed to start", err);
  window.explorerError = String(err && err.stack ? err.stack : err);
  const box = document.getElementById("source");
  if (box) box.textContent = `explorer failed to start: ${err}`;
});

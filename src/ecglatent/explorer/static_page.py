"""The self-contained explorer file the `evaluate` stage writes for every fine-tuned model.

No decoder runs in a static file, so it carries a precomputed grid: each factor alone (the
others at the training mean) at ``STEPS`` points from −3 to +3 sd, every lead, with the probe's
and head's probabilities at each point. Beats are stored as 1 µV integers, delta coded along
time, gzipped and base64 encoded (the page inflates them with the browser's
DecompressionStream); Chart.js and the page script are inlined, so the file opens from disk
with no network and is previewed by the MLflow UI as a run artifact.
"""

from __future__ import annotations

import base64
import gzip
from pathlib import Path

import numpy as np

from ecglatent.explorer.model import SD_RANGE, ExplorerModel
from ecglatent.explorer.page import render

STEPS = 21
SCALE_MV = 0.001  # stored resolution: 1 µV


def traversal_grid(model: ExplorerModel, steps: int = STEPS) -> dict:
    """Beats (L, steps, leads, T) in mV and probabilities (L, steps) for single-factor moves."""
    s = model.summary
    steps_sd = np.linspace(-SD_RANGE, SD_RANGE, steps)
    L = model.latent_dim
    z = np.repeat(s.train_mean[None, None], L * steps, axis=0).reshape(L, steps, L).copy()
    for k in range(L):
        z[k, :, k] = s.train_mean[k] + steps_sd * s.train_sd[k]
    decoded = model.decode_many(z.reshape(L * steps, L))
    beats = np.stack([d.beat for d in decoded]).reshape(L, steps, *decoded[0].beat.shape)
    prob = np.asarray([d.probability for d in decoded]).reshape(L, steps)
    head = None
    if decoded[0].head_probability is not None:
        head = np.asarray([d.head_probability for d in decoded]).reshape(L, steps)
    return {"steps_sd": steps_sd, "beats": beats, "probability": prob, "head_probability": head}


def encode_beats(beats: np.ndarray) -> str:
    """(…, T) mV → base64 of gzipped little-endian int16 µV deltas along the last axis."""
    q = np.round(beats / SCALE_MV).astype(np.int64)
    delta = np.diff(q, axis=-1, prepend=0)
    if np.abs(delta).max(initial=0) > np.iinfo(np.int16).max:
        raise ValueError("decoded beats jump by more than 32 mV between samples; cannot store")
    raw = delta.astype("<i2").tobytes()
    return base64.b64encode(gzip.compress(raw, compresslevel=9, mtime=0)).decode("ascii")


def static_config(model: ExplorerModel, steps: int = STEPS) -> dict:
    g = traversal_grid(model, steps)
    head = g["head_probability"]
    return {
        "mode": "static",
        "meta": model.meta(y_ranges=model.y_ranges(g["beats"])),
        "grid": {
            "steps_sd": [round(float(v), 6) for v in g["steps_sd"]],
            "scale": SCALE_MV,
            "data": encode_beats(g["beats"]),
            "probability": np.round(g["probability"], 6).tolist(),
            "head_probability": None if head is None else np.round(head, 6).tolist(),
        },
    }


def write_static_page(model: ExplorerModel, path: Path, title: str | None = None) -> Path:
    """Write the self-contained explorer of ``model`` to ``path`` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = {**static_config(model), "title": title or model.uri}
    path.write_text(render(config, inline=True, title=config["title"]), encoding="utf-8")
    return path


def log_static_page(model_uri: str, path: Path, title: str) -> Path:
    """Write the static page of the logged model ``model_uri`` and log it to the active run."""
    import mlflow

    page = write_static_page(ExplorerModel.load(model_uri), path, title)
    mlflow.log_artifact(str(page), artifact_path="explorer")
    return page

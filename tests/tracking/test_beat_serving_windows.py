"""Train/serve skew of the beat classifier on a real MIT-BIH record.

Training windows are centred on the reference annotations (``annotated_windows``); the served
pyfunc centres them on the R peaks it detects itself. On the first 2 minutes of record 100
(MLII) this test measures how far apart the two are and bounds it, and checks that where the
centres coincide the served probability is exactly the one of the stored training window, so
the served preprocessing (band-pass, resampling, window) is the training one.

Measured here (2026-12-01): 146 annotated N/V beats, 147 served windows; every annotated beat
has a served window within 50 ms, the largest offset is 1 sample at 360 Hz (2.8 ms), and 135
of the 146 share their centre after resampling to 250 Hz.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
import wfdb

from ecglatent.config import load_params
from ecglatent.datasets.single_lead import annotated_windows, window_samples
from ecglatent.models.siliconet import BeatClassifier
from ecglatent.tracking.beat_pyfunc import BUNDLE, BeatClassifierModel, save_bundle
from ecglatent.training.simsiam import recalibrate_batchnorm

REPO = Path(__file__).resolve().parents[2]
RECORD, SECONDS = "100", 120
MATCH_S = 0.05


@pytest.fixture(scope="module")
def served_and_stored(mirror, tmp_path_factory):
    cfg = load_params(REPO / "params.yaml").siliconet
    src = str(mirror / "mitdb" / RECORD)
    fs_in = wfdb.rdheader(src).fs
    n = int(SECONDS * fs_in)
    rec = wfdb.rdrecord(src, sampto=n, channel_names=["MLII"])
    ann = wfdb.rdann(src, "atr", sampto=n)
    sig = rec.p_signal[:, 0].astype(np.float64)
    before, after = window_samples(cfg.fs, cfg.before_s, cfg.after_s)
    stored, rows = annotated_windows(RECORD, sig[None, :], fs_in, np.asarray(ann.sample),
                                     np.asarray(ann.symbol), ("N", "V"), cfg.fs,
                                     tuple(cfg.bandpass_hz), before, after)  # fmt: skip
    torch.manual_seed(0)
    net = BeatClassifier()
    # A random CNN in eval mode shrinks its input to nothing (see DownstreamConfig); with
    # BatchNorm statistics re-estimated on these beats its output does depend on the window.
    mean, std = float(stored.mean()), float(stored.std())
    recalibrate_batchnorm(net.embedding, torch.as_tensor((stored - mean) / std))
    net.eval()
    work = tmp_path_factory.mktemp("beatserve")
    bundle = save_bundle(work / "b.pt", net.state_dict(), mean=mean, std=std, threshold=0.5, fs=cfg.fs, before_s=cfg.before_s,
                         after_s=cfg.after_s, bandpass_hz=tuple(cfg.bandpass_hz),
                         rpeak_detector=cfg.rpeak_detector, train_lead=cfg.train_lead)  # fmt: skip
    mlflow.pyfunc.save_model(str(work / "model"), python_model=BeatClassifierModel(),
                             artifacts={BUNDLE: str(bundle)})  # fmt: skip
    model = mlflow.pyfunc.load_model(str(work / "model"))
    served = model.predict(pd.DataFrame([{"signal": sig.tolist(), "fs": fs_in}]))
    as_beats = model.predict(pd.DataFrame({"beat": [w[0].tolist() for w in stored]}))
    return fs_in, cfg.fs, stored, rows, served, as_beats


def test_detected_windows_agree_with_the_annotated_ones(served_and_stored):
    fs_in, _, _, rows, served, _ = served_and_stored
    ref = rows["sample_orig"].to_numpy()
    got = np.sort(served["sample"].to_numpy())
    assert len(ref) > 100 and len(got) > 100
    nearest = got[np.clip(np.searchsorted(got, ref), 1, len(got) - 1)[:, None] - [0, 1]]
    offset = np.min(np.abs(nearest - ref[:, None]), axis=1)
    matched = offset <= MATCH_S * fs_in
    assert matched.mean() >= 0.99, f"{(~matched).sum()} annotated beats without a served window"
    assert offset[matched].max() <= 0.01 * fs_in, offset.max()  # ≤ 10 ms apart
    # and the served side has no large number of windows where no beat is annotated
    extra = len(got) - matched.sum()
    assert extra <= 0.02 * len(ref) + 2, extra


def test_same_centre_gives_the_same_probability_as_the_training_window(served_and_stored):
    fs_in, fs, _, rows, served, as_beats = served_and_stored
    stored_at = np.round(rows["sample_orig"].to_numpy() * fs / fs_in).astype(np.int64)
    served_at = np.round(served["sample"].to_numpy() * fs / fs_in).astype(np.int64)
    p_stored = dict(zip(stored_at, as_beats["probability_v"], strict=True))
    same = [(p, p_stored[s]) for s, p in zip(served_at, served["probability_v"], strict=True)
            if s in p_stored]  # fmt: skip
    assert len(same) >= 0.8 * len(rows), f"only {len(same)} beats share their centre"
    served_p, stored_p = np.array(same).T
    np.testing.assert_allclose(served_p, stored_p, rtol=0, atol=1e-6)
    assert np.ptp(stored_p) > 1e-4  # the network does tell windows apart

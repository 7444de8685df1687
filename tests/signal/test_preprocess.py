"""The served entry (prepare_recordings): one answer per recording, the beats stage's results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecglatent.config import PreprocessConfig
from ecglatent.signal.preprocess import TooFewBeats, median_beat_features, prepare_recordings
from ecglatent.sources import ptbxl
from ecglatent.sources.leads import STANDARD_12
from ecglatent.sources.records import read_record

CFG = PreprocessConfig()


@pytest.fixture(scope="module")
def records(mirror: Path) -> list:
    root = mirror / "ptb-xl"
    table = ptbxl.read_database(root).sort_index().iloc[:5]
    recs = [read_record(ptbxl.record_path(root, row, 500)) for _, row in table.iterrows()]
    recs += [read_record(ptbxl.record_path(root, row, 100)) for _, row in table.iloc[:2].iterrows()]
    return recs


def test_batched_records_get_exactly_what_each_gets_alone(records):
    """Records preprocessed together (two rates: two groups) = the `beats` stage, one by one."""
    prepared = prepare_recordings([(r.signal, r.fs, r.leads) for r in records], 500.0, CFG)
    assert len(prepared) == len(records)
    for rec, got in zip(records, prepared, strict=True):
        try:
            alone = median_beat_features(rec.signal, rec.fs, 500.0, CFG)
        except TooFewBeats:
            assert got.quality == "too_few_beats"
            continue
        assert got.quality == "ok" and got.detail == "" and got.extra_leads == ()
        assert np.array_equal(got.result.median, alone.median)
        assert np.array_equal(got.result.peaks, alone.peaks)
        assert (got.result.rr_mean_s, got.result.n_kept) == (alone.rr_mean_s, alone.n_kept)


def test_each_bad_recording_gets_its_reason_and_spares_the_others(records):
    rec = records[0]
    sig, leads = rec.signal, list(rec.leads)
    nan = sig.copy()
    nan[4, 10] = np.inf
    flat = sig.copy()
    flat[11] = 0.0
    extra = np.vstack([sig, sig[1:2], sig[:3]])
    inputs = {
        "ok": (sig, 500, leads),
        "invalid_signal": ([[1.0, 2.0], [3.0]], 500, ["I", "II"]),
        "implausible_fs": (sig, 0.5, leads),
        "missing_lead": (sig[1:], 500, leads[1:]),
        "too_short": (sig[:, :2000], 500, leads),
        "nan_or_inf": (nan, 500, leads),
        "flat_lead": (flat, 500, leads),
        "extras": (extra, 500, [*leads, "II", "vx", "vy", "vz"]),
    }
    out = dict(zip(inputs, prepare_recordings(list(inputs.values()), 500.0, CFG), strict=True))
    assert {k: p.quality for k, p in out.items()} == {
        **{k: k for k in inputs}, "extras": "ok"
    }  # fmt: skip
    assert "V1" in out["missing_lead"].detail and "aVL" in out["nan_or_inf"].detail
    assert "V6" in out["flat_lead"].detail and "4.0 s" in out["too_short"].detail
    assert out["extras"].extra_leads == ("II", "vx", "vy", "vz")
    assert np.array_equal(out["extras"].result.median, out["ok"].result.median)
    assert all(p.result is None for k, p in out.items() if k not in ("ok", "extras"))


def test_standard_leads_found_in_any_spelling_and_order(records):
    rec = records[0]
    spelled = ["Lead I", "DII", "d3", "AVR", "avl", "aVF", "v1", "V2", "v3", "V4", "v5", "V6"]
    order = np.random.default_rng(3).permutation(12)
    (got,) = prepare_recordings([(rec.signal[order], 500, [spelled[i] for i in order])], 500, CFG)
    (ref,) = prepare_recordings([(rec.signal, 500, list(STANDARD_12))], 500, CFG)
    assert got.quality == "ok" and np.array_equal(got.result.median, ref.result.median)

"""Single-lead beat windows: 301 samples with the QRS at 250, leads by name, DS1/DS2 separation,
two-lead SimSiam views."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import wfdb

from ecglatent.datasets.single_lead import (
    mitdb_nv_beats,
    mitdb_nv_splits,
    pretrain_split,
    ptbxl_multilead_beats,
    sample_two_leads,
    split_ds1,
    stratified_subsample,
    window_samples,
)
from ecglatent.sources.mitdb import DS1, DS2
from tests.conftest import write_wfdb

FS_IN = 360.0


def _synthetic_mitdb(tmp_path):
    """A 360 Hz record stored V5 first, MLII second (like 114), with annotated spikes."""
    n = int(FS_IN * 26)
    t = np.arange(n)
    # 1.5 s apart so a window (1 s before) holds one spike; multiples of 36 samples map exactly
    # onto the 250 Hz grid (360 → 250 is 36 → 25)
    beats = np.arange(1, 16) * 540 + 36
    mlii, v5 = np.zeros(n), np.zeros(n)
    for b in beats:
        mlii += 2.0 * np.exp(-0.5 * ((t - b) / 3.0) ** 2)
        v5 -= 1.0 * np.exp(-0.5 * ((t - b) / 3.0) ** 2)
    write_wfdb(tmp_path, "900", np.stack([v5, mlii]), FS_IN, ["V5", "MLII"])
    symbols = ["N", "V", "A", "N", "+", "N", "L", "V", "N", "Q", "N", "N", "E", "N", "N"]
    samples = beats.copy()
    wfdb.wrann("900", "atr", samples, symbol=symbols, write_dir=str(tmp_path))
    return beats, symbols


def test_window_is_301_samples_with_the_qrs_at_250():
    assert window_samples(250.0) == (250, 51)
    assert sum(window_samples(250.0)) == 301


def test_synthetic_record_windows_centre_and_lead_by_name(tmp_path):
    beats, symbols = _synthetic_mitdb(tmp_path)
    x, table = mitdb_nv_beats(tmp_path, ["900"], lead="MLII")
    keep = [s for s in symbols if s in "NLRejVE"]  # AAMI N and V only; A, Q, '+' dropped
    assert x.shape == (len(keep), 301) and x.dtype == np.float32
    assert table["symbol"].tolist() == keep
    assert table["aami"].tolist() == ["V" if s in "VE" else "N" for s in keep]
    assert table["label"].tolist() == [1 if s in "VE" else 0 for s in keep]
    assert set(table["lead"]) == {"MLII"}
    assert (np.argmax(x, axis=1) == 250).all()  # positive MLII spike exactly at the QRS
    other, t_other = mitdb_nv_beats(tmp_path, ["900"], lead="other")
    assert set(t_other["lead"]) == {"V5"}
    assert (np.argmin(other, axis=1) == 250).all()  # the negative V5 spike
    np.testing.assert_array_equal(table["sample"], np.round(table["sample_orig"] * 250 / 360))


def test_real_record_114_stores_mlii_second_and_is_read_by_name(mirror):
    assert wfdb.rdheader(str(mirror / "mitdb" / "114")).sig_name == ["V5", "MLII"]
    x, table = mitdb_nv_beats(mirror / "mitdb", ["114"], lead="MLII")
    assert set(table["lead"]) == {"MLII"}
    assert set(table["aami"]) == {"N", "V"}
    _, other = mitdb_nv_beats(mirror / "mitdb", ["114"], lead="other")
    assert set(other["lead"]) == {"V5"}
    median = np.median(x[table["aami"].to_numpy() == "N"], axis=0)
    assert abs(int(np.argmax(np.abs(median))) - 250) <= 3


def test_missing_lead_is_reported_not_raised(mirror):
    x, table = mitdb_nv_beats(mirror / "mitdb", ["119"], lead="V5")
    assert x.shape == (0, 301) and "119" in table.attrs["rejects"]


def test_default_record_sets_are_de_chazal_ds1_ds2():
    assert len(DS1) == 22 and len(DS2) == 22 and not set(DS1) & set(DS2)
    import inspect

    sig = inspect.signature(mitdb_nv_splits)
    assert sig.parameters["train_records"].default == DS1
    assert sig.parameters["test_records"].default == DS2


def test_splits_keep_ds2_out_of_training_and_normalise_on_train(mirror):
    s = mitdb_nv_splits(mirror / "mitdb", train_records=("119", "208"),
                        test_records=("233", "100"), seed=0)  # fmt: skip
    for part in (s.train, s.val):
        assert set(part.table["record"]) <= {"119", "208"}
        assert not set(part.table["record"]) & set(DS2)
        assert part.x.shape[1:] == (1, 301)
    assert set(s.tests) == {"MLII", "other"}
    assert set(s.tests["MLII"].table["record"]) == {"233", "100"}
    assert set(s.tests["other"].table["lead"]) == {"V1", "V5"}  # 233: MLII/V1, 100: MLII/V5
    # 50/50 and stratified: same V fraction on both sides
    assert abs(len(s.train) - len(s.val)) <= 1
    assert abs(s.train.y.mean() - s.val.y.mean()) < 1e-3
    assert abs(float(s.train.x.mean())) < 1e-3 and abs(float(s.train.x.std()) - 1) < 1e-3
    with pytest.raises(ValueError, match="both the training and the test"):
        mitdb_nv_splits(mirror / "mitdb", train_records=("119", "233"), test_records=("233",))


def test_record_level_split_and_subsample():
    y = np.array([0] * 60 + [1] * 20)
    groups = np.repeat(np.array(list("abcdefgh")), 10)
    tr, va = split_ds1(y, 0.5, seed=0, groups=groups)
    assert not set(groups[tr]) & set(groups[va]) and len(tr) + len(va) == 80
    tr, va = split_ds1(y, 0.5, seed=0)
    assert y[tr].sum() == y[va].sum() == 10


def test_stratified_subsample_keeps_class_balance():
    import pandas as pd

    from ecglatent.datasets.single_lead import BeatSet

    y = np.array([0] * 90 + [1] * 10)
    b = BeatSet(np.zeros((100, 1, 301), np.float32), y, pd.DataFrame({"i": range(100)}))
    sub = stratified_subsample(b, 20)
    assert len(sub) == 20 and sub.y.sum() == 2
    assert stratified_subsample(b, 0) is b


def test_two_views_are_always_two_different_leads_of_the_same_beat():
    n, n_leads = 500, 12
    # every sample encodes (beat, lead)
    beats = (100 * np.arange(n)[:, None, None] + np.arange(n_leads)[None, :, None]).astype(float)
    beats = np.repeat(beats, 301, axis=2)
    rng = np.random.default_rng(0)
    pairs = set()
    for _ in range(20):
        v1, v2 = sample_two_leads(beats, rng)
        assert v1.shape == v2.shape == (n, 1, 301)
        b1, l1 = np.divmod(v1[:, 0, 0].astype(int), 100)
        b2, l2 = np.divmod(v2[:, 0, 0].astype(int), 100)
        np.testing.assert_array_equal(b1, np.arange(n))
        np.testing.assert_array_equal(b2, np.arange(n))
        assert (l1 != l2).all()
        pairs |= set(zip(l1.tolist(), l2.tolist(), strict=True))
    assert len(pairs) == n_leads * (n_leads - 1)  # every ordered pair of different leads occurs
    t1, t2 = sample_two_leads(torch.as_tensor(beats[:50]), np.random.default_rng(1))
    assert isinstance(t1, torch.Tensor) and (t1[:, 0, 0] != t2[:, 0, 0]).all()
    with pytest.raises(ValueError, match="at least 2 leads"):
        sample_two_leads(beats[:, :1], rng)


def test_ptbxl_multilead_beats_and_patient_split(mirror):
    beats, table = ptbxl_multilead_beats(mirror / "ptb-xl", [1, 2, 3, 4, 5, 6])
    assert beats.ndim == 3 and beats.shape[1:] == (12, 301) and beats.dtype == np.float32
    assert len(table) == len(beats) and set(table["ecg_id"]) <= {1, 2, 3, 4, 5, 6}
    assert len(beats) >= 6 * 5  # at least a handful of beats per 10 s record
    # detections sit on the R peak: the spatial magnitude of the median beat peaks near 250
    mag = np.sqrt((np.median(beats, axis=0) ** 2).sum(axis=0))
    assert abs(int(np.argmax(mag)) - 250) <= 5
    tr, va = pretrain_split(table, 0.34, seed=0)
    assert not set(table["patient_id"].iloc[tr]) & set(table["patient_id"].iloc[va])
    capped, ct = ptbxl_multilead_beats(mirror / "ptb-xl", [1, 2, 3, 4, 5, 6],
                                       max_beats_per_record=4)  # fmt: skip
    assert (ct.groupby("ecg_id").size() == 4).all()
    full = table.groupby("ecg_id")["sample"].agg(["first", "last"])
    ends = ct.groupby("ecg_id")["sample"].agg(["first", "last"])
    assert ends.equals(full)  # evenly spread over the record, first and last beats kept
    same = (table["ecg_id"] == ct["ecg_id"].iloc[1]) & (table["sample"] == ct["sample"].iloc[1])
    np.testing.assert_array_equal(capped[1], beats[int(np.flatnonzero(same)[0])])

import numpy as np
import pandas as pd
import pytest

from ecglatent.datasets.splits import (
    LeakageError,
    grouped_holdout_folds,
    outer_folds_from_strat_fold,
    stratified_group_split,
    verify_mitdb_split,
    verify_ptbxl_split,
)
from ecglatent.sources.mitdb import DS1, DS2


def _data(seed: int = 0, n_groups: int = 400):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 4, n_groups)
    groups = np.repeat(np.arange(n_groups), sizes)
    group_pos = rng.random(n_groups) < 0.2
    labels = np.repeat(group_pos, sizes).astype(int)
    return labels, groups


def test_no_group_on_both_sides():
    y, g = _data()
    held = stratified_group_split(y, g, 0.15, np.random.default_rng(1))
    assert not set(g[held]) & set(g[~held])


def test_fraction_and_stratification():
    y, g = _data()
    held = stratified_group_split(y, g, 0.15, np.random.default_rng(1))
    assert abs(held.mean() - 0.15) < 0.02
    assert abs(y[held].mean() - y[~held].mean()) < 0.03


def test_deterministic_for_a_seed_and_varies_across_seeds():
    y, g = _data()
    a = stratified_group_split(y, g, 0.15, np.random.default_rng(7))
    b = stratified_group_split(y, g, 0.15, np.random.default_rng(7))
    c = stratified_group_split(y, g, 0.15, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_mixed_label_patient_stays_whole():
    y = np.array([1, 0, 0, 0, 1, 1])
    g = np.array([0, 0, 1, 2, 3, 3])
    for seed in range(10):
        held = stratified_group_split(y, g, 0.5, np.random.default_rng(seed))
        assert held[0] == held[1] and held[4] == held[5]


def test_holdout_folds():
    y, g = _data()
    folds = grouped_holdout_folds(y, g, 5, 0.15, np.random.default_rng(0))
    assert folds.shape == (5, len(y))
    for fold in folds:
        assert abs(fold.mean() - 0.15) < 0.02
        assert not set(g[fold]) & set(g[~fold])
    assert len({f.tobytes() for f in folds}) == 5


def test_outer_folds_merge_strat_folds_in_pairs():
    sf = np.arange(1, 11)
    np.testing.assert_array_equal(
        outer_folds_from_strat_fold(sf, 5), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    )
    np.testing.assert_array_equal(outer_folds_from_strat_fold(sf, 10), np.arange(10))
    with pytest.raises(ValueError, match="strat_fold"):
        outer_folds_from_strat_fold(np.array([1, 11]), 5)
    with pytest.raises(ValueError, match="strat_fold"):
        outer_folds_from_strat_fold(np.array([1, np.nan]), 5)


def _ptbxl_table():
    return pd.DataFrame(
        {"record_id": [1, 2, 3, 4], "patient_id": [10, 10, 20, 30],
         "rep0": ["test", "test", "train", "val"], "rep1": ["train", "val", "test", "test"]}
    )  # fmt: skip


def test_ptbxl_split_check_passes_a_clean_table_and_catches_leaks():
    t = _ptbxl_table()
    t["rep1"] = ["train", "train", "test", "test"]
    verify_ptbxl_split(t, ["rep0", "rep1"])
    leaky = _ptbxl_table()  # patient 10 is in rep1's train and val
    with pytest.raises(LeakageError, match="patients \\[10\\]"):
        verify_ptbxl_split(leaky, ["rep0", "rep1"])
    t2 = t.copy()
    t2.loc[1, "rep0"] = "train"  # patient 10 on both sides of rep0's test boundary
    with pytest.raises(LeakageError, match="both test and train/val"):
        verify_ptbxl_split(t2, ["rep0", "rep1"])
    t3 = t.copy()
    t3["rep1"] = ["train", "train", "test", "train"]  # record 4 never a test record
    with pytest.raises(LeakageError, match="exactly once"):
        verify_ptbxl_split(t3, ["rep0", "rep1"])


def test_mitdb_split_check_is_de_chazal():
    recs = list(DS1[:3]) + list(DS2[:2])
    t = pd.DataFrame({"record": recs, "rep0": ["train", "val", "train", "test", "test"]})
    verify_mitdb_split(t, ["rep0"], DS1, DS2)
    moved = t.copy()
    moved.loc[3, "rep0"] = "train"  # a DS2 record trains
    with pytest.raises(LeakageError, match="DS2"):
        verify_mitdb_split(moved, ["rep0"], DS1, DS2)
    wrong = t.copy()
    wrong.loc[0, "rep0"] = "test"  # a DS1 record tests
    with pytest.raises(LeakageError):
        verify_mitdb_split(wrong, ["rep0"], DS1, DS2)


def test_beat_set_records_check():
    from ecglatent.datasets.splits import verify_beat_set_records

    verify_beat_set_records({"101", "106"}, {"100", "228"}, DS1, DS2)
    with pytest.raises(LeakageError, match="not in DS1"):
        verify_beat_set_records({"101", "100"}, {"228"}, DS1, DS2)
    with pytest.raises(LeakageError, match="not in DS2"):
        verify_beat_set_records({"101"}, {"228", "106"}, DS1, DS2)
    with pytest.raises(LeakageError, match="both"):
        verify_beat_set_records({"101"}, {"101"}, DS1, DS2)

import numpy as np

from ecglatent.datasets.splits import grouped_holdout_folds, stratified_group_split


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

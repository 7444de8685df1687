"""Patient-grouped, label-stratified splits, fixed by the seed."""

from __future__ import annotations

import numpy as np


def stratified_group_split(
    labels: np.ndarray, groups: np.ndarray, fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """Boolean mask of items put in the held-out part (about ``fraction`` of items).

    Every group lands wholly on one side. A group is stratified by its majority label (a
    patient with mixed records counts as positive when half or more are), and within each
    stratum whole groups are drawn in random order until that stratum's share reaches
    ``fraction``, so the label ratio is kept on both sides.
    """
    labels = np.asarray(labels)
    groups = np.asarray(groups)
    uniq, inverse = np.unique(groups, return_inverse=True)
    sizes = np.bincount(inverse)
    group_label = np.round(np.bincount(inverse, weights=labels.astype(float)) / sizes).astype(int)
    held = np.zeros(len(uniq), dtype=bool)
    for label in np.unique(group_label):
        members = np.flatnonzero(group_label == label)
        members = members[rng.permutation(len(members))]
        target = fraction * sizes[members].sum()
        cum = np.cumsum(sizes[members])
        # Take groups while the running count stays closest to the target.
        n_take = int(np.argmin(np.abs(np.concatenate([[0], cum]) - target)))
        held[members[:n_take]] = True
    return held[inverse]


def grouped_holdout_folds(
    labels: np.ndarray,
    groups: np.ndarray,
    n_folds: int,
    val_fraction: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """``n_folds`` independent grouped, stratified train/validation draws (VAE paper §2.4).

    Returns a bool array (n_folds, n_items), True = validation. Each fold holds out
    ``val_fraction`` (85:15 in the paper), so validation sets of different folds may overlap.
    """
    return np.stack(
        [stratified_group_split(labels, groups, val_fraction, rng) for _ in range(n_folds)]
    )


PTBXL_STRAT_FOLDS = 10


def outer_folds_from_strat_fold(strat_fold: np.ndarray, n_outer: int) -> np.ndarray:
    """Outer fold (0 … n_outer−1) of each record from PTB-XL's ``strat_fold`` (1 … 10).

    PTB-XL's strat_folds keep each patient in one fold; consecutive strat_folds are merged
    (5 outer folds: {1, 2}, {3, 4}, …), so the outer folds stay patient-separated.
    """
    sf = np.asarray(strat_fold, dtype=float)
    if np.isnan(sf).any() or not np.isin(sf, np.arange(1, PTBXL_STRAT_FOLDS + 1)).all():
        bad = np.unique(sf[~np.isin(sf, np.arange(1, PTBXL_STRAT_FOLDS + 1))])
        raise ValueError(f"strat_fold must be 1-{PTBXL_STRAT_FOLDS}; found {bad.tolist()}")
    return ((sf.astype(int) - 1) * n_outer // PTBXL_STRAT_FOLDS).astype(int)


class LeakageError(AssertionError):
    """A split file puts one patient or record on both sides of a train/test boundary."""


def check_no_shared(name: str, ids: np.ndarray, role: np.ndarray, what: str) -> None:
    """Raise :class:`LeakageError` when an id of ``ids`` has both a test and a train/val role."""
    ids, role = np.asarray(ids).tolist(), np.asarray(role)
    ids = np.asarray(ids, dtype=object)
    test = set(ids[role == "test"])
    dev = set(ids[np.isin(role, ["train", "val"])])
    shared = sorted(test & dev, key=str)
    if shared:
        raise LeakageError(f"{name}: {what} {shared[:5]} in both test and train/val")
    val = set(ids[role == "val"])
    train = set(ids[role == "train"])
    shared = sorted(val & train, key=str)
    if shared:
        raise LeakageError(f"{name}: {what} {shared[:5]} in both train and validation")


def verify_ptbxl_split(table, rep_columns: list[str]) -> None:
    """Checks on the written PTB-XL split table: per replicate, no patient and no record on
    two sides; over the outer folds, every record a test record exactly once."""
    if table["record_id"].duplicated().any():
        raise LeakageError("ptb-xl split: a record appears twice")
    n_test = np.zeros(len(table), int)
    for col in rep_columns:
        role = table[col].to_numpy()
        check_no_shared(f"ptb-xl {col}", table["patient_id"].to_numpy(), role, "patients")
        n_test += role == "test"
    if rep_columns and not (n_test == 1).all():
        raise LeakageError(
            f"ptb-xl split: {int((n_test != 1).sum())} records are not a test record exactly once"
        )


def verify_mitdb_split(table, rep_columns: list[str], ds1: tuple[str, ...],
                       ds2: tuple[str, ...]) -> None:  # fmt: skip
    """Checks on the written MIT-BIH split table: the test records are exactly de Chazal's DS2
    (of those present), train and validation exactly DS1, in every replicate."""
    records = table["record"].astype(str).to_numpy()
    if len(set(records)) != len(records):
        raise LeakageError("mitdb split: a record appears twice")
    present = set(records)
    for col in rep_columns:
        role = table[col].to_numpy()
        check_no_shared(f"mitdb {col}", records, role, "records")
        test = set(records[role == "test"])
        dev = set(records[np.isin(role, ["train", "val"])])
        if test != present & set(ds2):
            raise LeakageError(f"mitdb {col}: test records {sorted(test ^ (present & set(ds2)))} "
                               "differ from de Chazal's DS2")  # fmt: skip
        if dev != present & set(ds1):
            raise LeakageError(f"mitdb {col}: train/val records {sorted(dev ^ (present & set(ds1)))} "
                               "differ from de Chazal's DS1")  # fmt: skip


def verify_beat_set_records(dev_records, test_records, ds1: tuple[str, ...],
                            ds2: tuple[str, ...]) -> None:  # fmt: skip
    """Checks on written beat sets' record columns: every training/validation beat from DS1,
    every test beat from DS2, no record on both sides."""
    dev = {str(r) for r in dev_records}
    test = {str(r) for r in test_records}
    if dev & test:
        raise LeakageError(f"records {sorted(dev & test)} in both DS1 sets and the test sets")
    if dev - set(ds1):
        raise LeakageError(f"training/validation records {sorted(dev - set(ds1))} not in DS1")
    if test - set(ds2):
        raise LeakageError(f"test records {sorted(test - set(ds2))} not in DS2")

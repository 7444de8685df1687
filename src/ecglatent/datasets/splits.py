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

"""Baselines of the paper's §2.6: PCA features of the beats, and sex and age.

Beats are arrays of shape ``(n_beats, n_leads, n_samples)`` (the models' channel-first
layout); a 2-D array ``(n_beats, n_samples)`` is read as a single lead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

__all__ = [
    "PTBXL_AGE_CAP",
    "pca_features",
    "reconstruction_metrics",
    "sex_age_features",
]

# PTB-XL stores every age above 89 as 300 (de-identification); 90 stands for "over 89".
PTBXL_AGE_CAP = 90.0


def _as_beats(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[:, None, :]
    if arr.ndim != 3:
        raise ValueError(
            f"{name} must be (n, n_leads, n_samples) or (n, n_samples), got shape {arr.shape}"
        )
    return arr


def reconstruction_metrics(x: np.ndarray, x_hat: np.ndarray) -> tuple[float, float]:
    """Reconstruction quality shared by the VAEs and the PCA baseline: ``(mse, corr)``.

    - mse: mean squared error per element, in the squared units of ``x``.
    - corr: mean over (sample, lead) pairs of the Pearson r between the input lead and its
      reconstruction. Pairs where either trace has zero variance are skipped (r is undefined
      there); NaN if every pair is skipped.
    """
    a = _as_beats(x, "x")
    b = _as_beats(x_hat, "x_hat")
    if a.shape != b.shape:
        raise ValueError(f"x and x_hat shapes differ: {a.shape} vs {b.shape}")
    mse = float(np.mean((a - b) ** 2))

    ac = a - a.mean(axis=-1, keepdims=True)
    bc = b - b.mean(axis=-1, keepdims=True)
    saa = np.einsum("ijk,ijk->ij", ac, ac)
    sbb = np.einsum("ijk,ijk->ij", bc, bc)
    sab = np.einsum("ijk,ijk->ij", ac, bc)
    # Relative to the raw energy: centring a flat lead leaves rounding noise, not exact 0.
    ok = (saa > 1e-20 * np.einsum("ijk,ijk->ij", a, a)) & (
        sbb > 1e-20 * np.einsum("ijk,ijk->ij", b, b)
    )
    if not ok.any():
        return mse, float("nan")
    r = sab[ok] / np.sqrt(saa[ok] * sbb[ok])
    return mse, float(np.mean(np.clip(r, -1.0, 1.0)))


def pca_features(
    train_beats: np.ndarray,
    test_beats: np.ndarray,
    n_components: int,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """PCA on flattened beats, fitted on train only.

    Returns ``(train_feats, test_feats, recon_mse, recon_corr)``; the reconstruction metrics
    are measured on the test beats with :func:`reconstruction_metrics`. ``seed`` fixes the
    randomised SVD solver sklearn may pick for large inputs.
    """
    tr = _as_beats(train_beats, "train_beats")
    te = _as_beats(test_beats, "test_beats")
    if tr.shape[1:] != te.shape[1:]:
        raise ValueError(f"train and test beat shapes differ: {tr.shape[1:]} vs {te.shape[1:]}")
    n_features = int(np.prod(tr.shape[1:]))
    if not 1 <= n_components <= min(tr.shape[0], n_features):
        raise ValueError(
            f"n_components must be in [1, {min(tr.shape[0], n_features)}], got {n_components}"
        )
    pca = PCA(n_components=n_components, random_state=seed)
    train_feats = pca.fit_transform(tr.reshape(tr.shape[0], -1))
    test_flat = te.reshape(te.shape[0], -1)
    test_feats = pca.transform(test_flat)
    recon = pca.inverse_transform(test_feats).reshape(te.shape)
    mse, corr = reconstruction_metrics(te, recon)
    return train_feats, test_feats, mse, corr


_SEX_CODES = {"m": 0.0, "male": 0.0, "f": 1.0, "female": 1.0}


def _sex_column(sex: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(sex):
        values = sex.to_numpy(dtype=float)
    else:
        values = np.array(
            [_SEX_CODES.get(str(v).strip().lower(), np.nan) for v in sex], dtype=float
        )
    bad = ~np.isin(values, [0.0, 1.0])
    if bad.any():
        # Sex is never imputed: a missing or unknown code means the table is not what we think.
        raise ValueError(
            f"sex must be 0/1 (PTB-XL: 0 male, 1 female) or M/F; "
            f"{int(bad.sum())} rows hold other values, e.g. {sex[bad].iloc[0]!r}"
        )
    return values


def sex_age_features(
    df: pd.DataFrame,
    age_fill: float | None = None,
    age_col: str = "age",
    sex_col: str = "sex",
) -> tuple[np.ndarray, float]:
    """The sex-and-age baseline's two columns ``[age, sex]`` and the age used to fill NaNs.

    Age is clipped to 90 (PTB-XL encodes >89 as 300). Sex is 0/1 (PTB-XL: 0 male, 1 female;
    'M'/'F' strings are mapped the same way); missing sex raises. Missing age is imputed, not
    zero-filled: with ``age_fill=None`` the median of this frame's (clipped) ages is used, so
    call it on the training frame first and pass the returned value when building the test
    features, which keeps test statistics out of the imputation::

        X_train, fill = sex_age_features(train_df)
        X_test, _ = sex_age_features(test_df, age_fill=fill)
    """
    missing = [c for c in (age_col, sex_col) if c not in df.columns]
    if missing:
        raise KeyError(f"sex_age_features: columns {missing} not in frame")
    age = pd.to_numeric(df[age_col], errors="raise").to_numpy(dtype=float)
    age = np.minimum(age, PTBXL_AGE_CAP)
    if age_fill is None:
        if np.isnan(age).all():
            raise ValueError("every age is missing; pass age_fill from the training set")
        age_fill = float(np.nanmedian(age))
    age = np.where(np.isnan(age), age_fill, age)
    sex = _sex_column(df[sex_col])
    return np.column_stack([age, sex]), float(age_fill)

"""Input scaling fitted on the training set and stored with every model."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Normaliser:
    """Beats are divided by one global scale (keeps lead amplitude ratios); RR is z-scored."""

    x_scale: float
    rr_mean: tuple[float, ...]
    rr_std: tuple[float, ...]

    @classmethod
    def fit(cls, x: np.ndarray, rr: np.ndarray) -> Normaliser:
        scale = float(np.std(x)) or 1.0
        mean = np.nanmean(rr, axis=0)
        std = np.nanstd(rr, axis=0)
        std = np.where(std > 0, std, 1.0)
        return cls(scale, tuple(map(float, mean)), tuple(map(float, std)))

    def x(self, x: np.ndarray) -> np.ndarray:
        return (x / self.x_scale).astype(np.float32)

    def x_inverse(self, x: np.ndarray) -> np.ndarray:
        return x * self.x_scale

    def rr(self, rr: np.ndarray) -> np.ndarray:
        z = (rr - np.asarray(self.rr_mean)) / np.asarray(self.rr_std)
        # A record with a single beat interval has no σ: its z-score is the mean (0).
        return np.nan_to_num(z, nan=0.0).astype(np.float32)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Normaliser:
        return cls(float(d["x_scale"]), tuple(d["rr_mean"]), tuple(d["rr_std"]))

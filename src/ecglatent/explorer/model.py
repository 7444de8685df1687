"""A logged β-VAE pyfunc opened for exploration: decoder, probe, head and latent summary.

Everything comes from the model itself (``models:/…``, ``runs:/…`` or a local model folder):
the network and normaliser from its bundle, the probe from its probe artifact, and the
latent summary the `evaluate` stage logged beside them. Scoring a new recording goes through
the pyfunc's own ``predict``, so an uploaded record is preprocessed exactly as when served.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import torch

from ecglatent.errors import EcglatentError
from ecglatent.evaluation.probes import probe_latents
from ecglatent.explorer.latents import ARTIFACT, LatentSummary
from ecglatent.tracking.vae_pyfunc import VAEFeatureModel

SD_RANGE = 3.0  # sliders span the training mean ± 3 sd of each latent

# Standard 12-lead display: 3 rows × 4 columns (I II III | aVR aVL aVF | V1-V3 | V4-V6).
TWELVE_LEAD_GRID = ("I", "aVR", "V1", "V4", "II", "aVL", "V2", "V5", "III", "aVF", "V3", "V6")


@dataclass(frozen=True)
class Decoded:
    beat: np.ndarray  # (leads, T) in mV
    probability: float  # the probe's (latent means + RR → P(label))
    head_probability: float | None  # the fine-tuned head's, for task-specific/split models


class ExplorerModel:
    """Decoder + probe + head of one logged model, with its latent summary."""

    def __init__(self, pyfunc, summary: LatentSummary, uri: str) -> None:
        self.pyfunc = pyfunc
        inner = pyfunc.unwrap_python_model()
        if not isinstance(inner, VAEFeatureModel):
            raise EcglatentError(f"{uri} is not a β-VAE model (found {type(inner).__name__})")
        self.feature_model: VAEFeatureModel = inner
        self.network = inner.network
        self.normaliser = inner.normaliser
        self.probe = inner.probe
        self.summary = summary
        self.uri = uri

    @classmethod
    def load(cls, uri: str) -> ExplorerModel:
        """Open ``uri`` (``models:/name@alias``, ``runs:/id/model`` or a model folder)."""
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
            pyfunc = mlflow.pyfunc.load_model(str(local))
        except Exception as exc:
            raise EcglatentError(
                f"cannot load {uri} ({type(exc).__name__}: {exc}); train and register one with "
                "`dvc repro` or pass --model"
            ) from None
        spec = pyfunc.metadata.flavors.get("python_function", {}).get("artifacts", {})
        entry = spec.get(ARTIFACT)
        if entry is None:
            raise EcglatentError(
                f"{uri} carries no latent summary ({ARTIFACT} artifact): it was logged before the "
                "explorer existed; re-run `ecglatent evaluate` (dvc repro evaluate) to log it again"
            )
        return cls(pyfunc, LatentSummary.load(local / entry["path"]), uri)

    # --- what the page shows -----------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return int(self.network.latent_dim)

    @property
    def lead_names(self) -> tuple[str, ...]:
        return self.feature_model.lead_names

    @property
    def fs(self) -> float:
        return self.feature_model.target_fs

    @property
    def latent_pred(self) -> int | None:
        return self.network.latent_pred

    def slider_ranges(self) -> tuple[np.ndarray, np.ndarray]:
        s = self.summary
        return s.train_mean - SD_RANGE * s.train_sd, s.train_mean + SD_RANGE * s.train_sd

    def decode(self, z: np.ndarray, rr: np.ndarray | None = None) -> Decoded:
        """One latent vector (L,) (and z-scored RR (2,), default the training mean 0) decoded."""
        return self.decode_many(np.asarray(z, np.float64)[None], rr)[0]

    def decode_many(self, z: np.ndarray, rr: np.ndarray | None = None) -> list[Decoded]:
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must be (n, {self.latent_dim}), got {z.shape}")
        rr = np.zeros((len(z), 2)) if rr is None else np.tile(np.asarray(rr, float), (len(z), 1))
        zt = torch.as_tensor(z, dtype=torch.float32)
        with torch.no_grad():
            beats = self.normaliser.x_inverse(self.network.decode(zt).numpy().astype(np.float64))
            head = None
            if self.network.head is not None:
                extra = torch.as_tensor(rr, dtype=torch.float32) if self.network.n_extra else None
                logit = self.network.predict_logit(zt, extra)
                head = torch.sigmoid(logit).numpy().astype(np.float64)
        # the probe reads a split-task model's L_pred latents only, as in `evaluate`
        feats = probe_latents(zt.numpy().astype(np.float64), self.latent_pred)
        prob = self.probe.predict_proba(np.hstack([feats, rr]))[:, 1]
        return [Decoded(beats[i], float(prob[i]), None if head is None else float(head[i]))
                for i in range(len(z))]  # fmt: skip

    def score(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The served model's answer for a pyfunc input frame (recordings or beats)."""
        return self.pyfunc.predict(frame)

    def display_leads(self) -> list[int]:
        """Lead indices in display order: the 12-lead grid for 12-lead models, as stored else."""
        names = list(self.lead_names)
        if sorted(names) == sorted(TWELVE_LEAD_GRID):
            return [names.index(n) for n in TWELVE_LEAD_GRID]
        return list(range(len(names)))

    def y_ranges(self, grid_beats: np.ndarray | None = None) -> list[list[float]]:
        """A fixed y range per lead covering every ±3 sd single-factor move (axes do not jump)."""
        if grid_beats is None:
            lo, hi = self.slider_ranges()
            zs = [self.summary.train_mean.copy()]
            for k in range(self.latent_dim):
                for v in (lo[k], hi[k]):
                    z = self.summary.train_mean.copy()
                    z[k] = v
                    zs.append(z)
            grid_beats = np.stack([d.beat for d in self.decode_many(np.stack(zs))])
        flat = grid_beats.reshape(-1, *grid_beats.shape[-2:])
        lo_v, hi_v = flat.min(axis=(0, 2)), flat.max(axis=(0, 2))
        pad = 0.1 * np.maximum(hi_v - lo_v, 0.2)
        return [
            [round(float(a - p), 3), round(float(b + p), 3)]
            for a, b, p in zip(lo_v, hi_v, pad, strict=True)
        ]

    def meta(self, y_ranges: list[list[float]] | None = None) -> dict:
        """The page's description of the model (shared by the live and the static page)."""
        s = self.summary
        lo, hi = self.slider_ranges()
        ref = self.decode(s.train_mean)
        test_prob = self.probe.predict_proba(
            np.hstack([probe_latents(s.test_z, self.latent_pred), s.test_rr]))[:, 1]  # fmt: skip
        return {
            "uri": self.uri,
            "mode": self.feature_model.mode,
            "y_ranges": y_ranges if y_ranges is not None else self.y_ranges(),
            "leads": list(self.lead_names),
            "display_leads": self.display_leads(),
            "fs": self.fs,
            "n_samples": int(ref.beat.shape[1]),
            "latent_dim": self.latent_dim,
            "latent_pred": self.latent_pred,
            "train_mean": s.train_mean.tolist(),
            "train_sd": s.train_sd.tolist(),
            "slider_lo": lo.tolist(),
            "slider_hi": hi.tolist(),
            "label_names": list(s.label_names),
            "rr_mean_s": list(self.normaliser.rr_mean),
            "rr_std_s": list(self.normaliser.rr_std),
            "reference": {
                "beat": np.round(ref.beat, 6).tolist(),
                "probability": ref.probability,
                "head_probability": ref.head_probability,
            },  # fmt: skip
            "test": {
                "z": np.round(s.test_z, 6).tolist(),
                "rr": np.round(s.test_rr, 6).tolist(),
                "y": s.test_y.astype(int).tolist(),
                "ids": [str(i) for i in s.test_ids],
                "probability": np.round(test_prob, 6).tolist(),
            },  # fmt: skip
        }

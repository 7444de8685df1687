"""The served β-VAE: an MLflow pyfunc that bundles preprocessing, network and probe.

Two input modes, chosen by the columns of the request:
  * recordings (record-level models, PTB-XL): ``signal`` (leads × samples, mV), ``fs`` (Hz),
    ``leads`` (names) — preprocessed exactly as in the `beats` stage;
  * beats (single-beat models, MIT-BIH): ``beat`` (leads × T at the model's rate) and ``rr``
    (the two RR features, seconds).
Output, one row per input: ``latent_0..`` (means), ``probability`` (the evaluate stage's
logistic-regression probe on latents + RR), ``rr_mean_s``/``rr_std_s``, ``n_beats``,
``quality`` ("ok" or the reason the recording could not be scored) and optionally
``reconstruction`` (the decoded median beat).
"""

from __future__ import annotations

import json
import pickle
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from mlflow.pyfunc import PythonModel

from ecglatent.config import PreprocessConfig
from ecglatent.evaluation.probes import probe_latents
from ecglatent.models.registry import rebuild_vae
from ecglatent.tracking.pyfunc_input import bad_input, input_frame
from ecglatent.training.normalise import Normaliser

BUNDLE = "bundle"
PROBE = "probe"
MIN_RECORDING_S = 8.0


def save_bundle(path: Path, model, normaliser: Normaliser, preprocess: PreprocessConfig,
                target_fs: float, lead_names: tuple[str, ...], mode: str) -> Path:  # fmt: skip
    """Everything the served model needs besides the probe, in one torch file."""
    torch.save(
        {
            "state_dict": model.state_dict(),
            "build_config": model.build_config,
            "normaliser": normaliser.to_dict(),
            "preprocess": asdict(preprocess),
            "target_fs": float(target_fs),
            "lead_names": list(lead_names),
            "mode": mode,
        },
        path,
    )
    return path


def load_network(bundle: dict[str, Any]):
    model = rebuild_vae(bundle["build_config"])
    model.load_state_dict(bundle["state_dict"])
    return model.eval()


class VAEFeatureModel(PythonModel):
    """Raw recording (or beat) in; latent features, probability, RR and quality out."""

    def load_context(self, context) -> None:
        bundle = torch.load(context.artifacts[BUNDLE], map_location="cpu", weights_only=False)
        self.network = load_network(bundle)
        self.normaliser = Normaliser.from_dict(bundle["normaliser"])
        pre = dict(bundle["preprocess"])
        for key in ("bandpass_hz", "mitdb_leads"):
            pre[key] = tuple(pre[key])
        self.preprocess = PreprocessConfig(**pre)
        self.target_fs = float(bundle["target_fs"])
        self.lead_names = tuple(bundle["lead_names"])
        self.mode = bundle["mode"]
        with open(context.artifacts[PROBE], "rb") as fh:
            self.probe = pickle.load(fh)

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        model_input = input_frame(model_input)
        with_recon = bool((params or {}).get("reconstruction", False))
        if "signal" in model_input.columns:
            return self._predict_recordings(model_input, with_recon)
        if "beat" in model_input.columns:
            return self._predict_beats(model_input, with_recon)
        raise bad_input(
            f"input needs columns signal, fs, leads (recordings) or beat, rr (beats); got "
            f"{list(model_input.columns)}"
        )

    def _features(self, beats: np.ndarray, rr: np.ndarray, with_recon: bool) -> pd.DataFrame:
        x = torch.as_tensor(self.normaliser.x(beats))
        with torch.no_grad():
            mu, _ = self.network.encode(x)
            recon = self.network.decode(mu).numpy() if with_recon else None
        mu = mu.numpy().astype(np.float64)
        # the evaluate stage's probe reads a split-task model's L_pred latents only
        lp = self.network.latent_pred
        feats = np.concatenate([probe_latents(mu, lp), self.normaliser.rr(rr)], axis=1)
        prob = self.probe.predict_proba(feats)[:, 1]
        out = pd.DataFrame({f"latent_{i}": mu[:, i] for i in range(mu.shape[1])})
        out["probability"] = prob
        if recon is not None:
            out["reconstruction"] = [
                json.dumps(np.round(self.normaliser.x_inverse(r), 5).tolist()) for r in recon
            ]
        return out

    def _predict_beats(self, df: pd.DataFrame, with_recon: bool) -> pd.DataFrame:
        expected = (self.network.n_leads, self.network.n_samples)
        beats, rrs = [], []
        for i, row in enumerate(df.itertuples(index=False)):
            beat = np.asarray(row.beat, dtype=np.float64)
            if beat.shape != expected:
                raise bad_input(f"row {i}: beat has shape {beat.shape}, expected {expected}")
            rr = np.asarray(getattr(row, "rr", [np.nan, np.nan]), dtype=np.float64)
            if not np.isfinite(beat).all():
                raise bad_input(f"row {i}: beat contains NaN or infinite values")
            beats.append(beat)
            rrs.append(rr)
        out = self._features(np.stack(beats), np.stack(rrs), with_recon)
        out["rr_mean_s"] = [r[0] for r in rrs]
        out["rr_std_s"] = [r[1] for r in rrs]
        out["n_beats"] = 1
        out["quality"] = "ok"
        return out

    def _predict_recordings(self, df: pd.DataFrame, with_recon: bool) -> pd.DataFrame:
        from ecglatent.signal.preprocess import TooFewBeats, median_beat_features
        from ecglatent.sources.leads import standard_order

        for col in ("fs", "leads"):
            if col not in df.columns:
                raise bad_input(f"recordings need a '{col}' column beside 'signal'")
        medians, rrs, info = [], [], []
        for i, row in enumerate(df.itertuples(index=False)):
            try:
                signal = np.asarray(row.signal, dtype=np.float64)
            except (TypeError, ValueError):
                raise bad_input(
                    f"row {i}: signal must be a leads × samples array of numbers"
                ) from None
            leads = list(row.leads)
            fs = float(row.fs)
            if signal.ndim != 2 or signal.shape[0] != len(leads):
                raise bad_input(
                    f"row {i}: signal shape {signal.shape} does not match {len(leads)} lead names (leads × samples)"
                )
            if not 50 <= fs <= 20000:
                raise bad_input(f"row {i}: fs {fs} Hz is not a plausible ECG sampling rate")
            if signal.shape[1] / fs < MIN_RECORDING_S:
                raise bad_input(
                    f"row {i}: recording is {signal.shape[1] / fs:.1f} s; at least {MIN_RECORDING_S:.0f} s needed"
                )
            if not np.isfinite(signal).all():
                raise bad_input(f"row {i}: signal contains NaN or infinite values")
            order = standard_order(leads)
            if isinstance(order, str):
                raise bad_input(f"row {i}: {order}")
            try:
                res = median_beat_features(signal[order], fs, self.target_fs, self.preprocess)
            except TooFewBeats as exc:
                medians.append(None)
                rrs.append([np.nan, np.nan])
                info.append((0, f"unusable: {exc}"))
                continue
            medians.append(res.median)
            rrs.append([res.rr_mean_s, res.rr_std_s])
            info.append((res.n_kept, "ok"))
        good = [i for i, m in enumerate(medians) if m is not None]
        n_latent = self.network.latent_dim
        cols = [f"latent_{i}" for i in range(n_latent)] + ["probability"]
        out = pd.DataFrame(np.nan, index=range(len(df)), columns=cols)
        if with_recon:
            out["reconstruction"] = None
        if good:
            feats = self._features(np.stack([medians[i] for i in good]),
                                   np.asarray([rrs[i] for i in good]), with_recon)  # fmt: skip
            for col in feats.columns:
                out.loc[good, col] = feats[col].to_numpy()
        out["rr_mean_s"] = [r[0] for r in rrs]
        out["rr_std_s"] = [r[1] for r in rrs]
        out["n_beats"] = [n for n, _ in info]
        out["quality"] = [q for _, q in info]
        return out

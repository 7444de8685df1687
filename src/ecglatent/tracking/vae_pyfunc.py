"""The served β-VAE: an MLflow pyfunc that bundles preprocessing, network and probe.

Two input modes, chosen by the columns of the request:
  * recordings (record-level models, PTB-XL): ``signal`` (leads × samples, mV), ``fs`` (Hz),
    ``leads`` (names in any common spelling; leads beyond the standard 12 are allowed and
    named in ``extra_leads``) — preprocessed exactly as in the `beats` stage;
  * beats (single-beat models, MIT-BIH): ``beat`` (leads × T at the model's rate) and ``rr``
    (the two RR features, seconds).
An optional ``id`` column is echoed back. Output, exactly one row per input row, in order:
``latent_0..`` (means), ``probability`` (the evaluate stage's logistic-regression probe on
latents + RR), ``rr_mean_s``/``rr_std_s``, ``n_beats``, ``quality`` ("ok", or a code saying why
the row could not be scored: see :mod:`ecglatent.signal.preprocess`), ``quality_detail`` (the
reason in words), ``extra_leads`` (comma-separated) and optionally ``reconstruction``. A row
that cannot be scored has NaN scores, never zeros. Only a malformed request (no usable columns)
is refused with a 400.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
import torch
from mlflow.pyfunc import PythonModel

from ecglatent.config import PreprocessConfig
from ecglatent.evaluation.probes import probe_latents
from ecglatent.models.registry import rebuild_vae
from ecglatent.tracking.pyfunc_input import bad_input, input_frame, set_serving_threads
from ecglatent.training.normalise import Normaliser

BUNDLE = "bundle"
PROBE = "probe"
INVALID_BEAT = "invalid_beat"


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
        set_serving_threads()
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
        ids = model_input["id"].to_numpy() if "id" in model_input.columns else None
        if "signal" in model_input.columns:
            return self._predict_recordings(model_input, with_recon, ids)
        if "beat" in model_input.columns:
            return self._predict_beats(model_input, with_recon, ids)
        raise bad_input(
            f"input needs columns signal, fs, leads (recordings) or beat, rr (beats); got "
            f"{list(model_input.columns)}"
        )

    def _features(
        self, beats: np.ndarray, rr: np.ndarray, with_recon: bool
    ) -> tuple[np.ndarray, list[str] | None]:
        """(latent means and probability as one (n, L + 1) array, reconstructions as JSON)."""
        x = torch.as_tensor(self.normaliser.x(beats))
        with torch.inference_mode():
            mu, _ = self.network.encode(x)
            recon = self.network.decode(mu).numpy() if with_recon else None
        mu = mu.numpy().astype(np.float64)
        # the evaluate stage's probe reads a split-task model's L_pred latents only; a probe
        # fitted on every latent (models evaluated before that rule) still gets every latent
        rr_feats = self.normaliser.rr(rr)
        lp = self.network.latent_pred
        if getattr(self.probe, "n_features_in_", None) == mu.shape[1] + rr_feats.shape[1]:
            lp = None
        feats = np.concatenate([probe_latents(mu, lp), rr_feats], axis=1)
        # sklearn's own finiteness scan of every input costs more than the probe; one check here
        with sklearn.config_context(assume_finite=bool(np.isfinite(feats).all())):
            prob = self.probe.predict_proba(feats)[:, 1]
        texts = None
        if recon is not None:
            texts = [json.dumps(np.round(self.normaliser.x_inverse(r), 5).tolist()) for r in recon]
        return np.column_stack([mu, prob]), texts

    def _answer(
        self,
        n: int,
        good: list[int],
        beats: list[np.ndarray],
        rr: np.ndarray,
        n_beats: list[int],
        quality: list[str],
        detail: list[str],
        extra: list[str],
        with_recon: bool,
        ids: np.ndarray | None = None,
    ) -> pd.DataFrame:
        """One row per input: scores where ``good``, NaN elsewhere, and the quality columns.

        Built as one frame from whole columns: inserting columns one by one into a pandas
        frame cost more than the network's pass on a one-record request.
        """
        latent_dim = self.network.latent_dim
        scores = np.full((n, latent_dim + 1), np.nan)
        recon: list[str | None] = [None] * n
        if good:
            scores[good], texts = self._features(np.stack(beats), rr[good], with_recon)
            for i, r in zip(good, texts or (), strict=False):
                recon[i] = r
        columns: dict[str, Any] = {} if ids is None else {"id": ids}
        columns.update({f"latent_{i}": scores[:, i] for i in range(latent_dim)})
        columns["probability"] = scores[:, latent_dim]
        if with_recon:
            columns["reconstruction"] = recon
        columns["rr_mean_s"] = rr[:, 0]
        columns["rr_std_s"] = rr[:, 1]
        columns["n_beats"] = np.asarray(n_beats, dtype=np.int64)
        columns["quality"] = quality
        columns["quality_detail"] = detail
        columns["extra_leads"] = extra
        return pd.DataFrame(columns)

    def _predict_beats(
        self, df: pd.DataFrame, with_recon: bool, ids: np.ndarray | None
    ) -> pd.DataFrame:
        from ecglatent.signal.preprocess import NAN_OR_INF, OK

        expected = (self.network.n_leads, self.network.n_samples)
        n = len(df)
        rr = np.full((n, 2), np.nan)
        rr_col = df["rr"].tolist() if "rr" in df.columns else [None] * n
        good, beats, n_beats, quality, detail = [], [], [], [], []
        for i, (value, rr_i) in enumerate(zip(df["beat"].tolist(), rr_col, strict=True)):
            q, d = OK, ""
            try:
                beat = np.asarray(value, dtype=np.float64)
                if rr_i is not None and not (isinstance(rr_i, float) and np.isnan(rr_i)):
                    rr[i] = np.asarray(rr_i, dtype=np.float64).reshape(2)
            except (TypeError, ValueError):
                beat, q, d = None, INVALID_BEAT, "beat and rr must be arrays of numbers"
            if q == OK and beat.shape != expected:
                q, d = INVALID_BEAT, f"beat has shape {beat.shape}, expected {expected}"
            elif q == OK and not np.isfinite(beat).all():
                q, d = NAN_OR_INF, "beat contains NaN or infinite values"
            if q == OK:
                good.append(i)
                beats.append(beat)
            quality.append(q)
            detail.append(d)
            n_beats.append(int(q == OK))
        return self._answer(n, good, beats, rr, n_beats, quality, detail, [""] * n, with_recon, ids)

    def _predict_recordings(
        self, df: pd.DataFrame, with_recon: bool, ids: np.ndarray | None
    ) -> pd.DataFrame:
        from ecglatent.signal.preprocess import prepare_recordings

        for col in ("fs", "leads"):
            if col not in df.columns:
                raise bad_input(f"recordings need a '{col}' column beside 'signal'")
        rows = list(
            zip(df["signal"].tolist(), df["fs"].tolist(), df["leads"].tolist(), strict=True)
        )
        prepared = prepare_recordings(rows, self.target_fs, self.preprocess)
        n = len(prepared)
        rr = np.full((n, 2), np.nan)
        good, beats = [], []
        for i, p in enumerate(prepared):
            if p.result is not None:
                good.append(i)
                beats.append(p.result.median)
                rr[i] = (p.result.rr_mean_s, p.result.rr_std_s)
        return self._answer(
            n,
            good,
            beats,
            rr,
            [p.result.n_kept if p.result is not None else 0 for p in prepared],
            [p.quality for p in prepared],
            [p.detail for p in prepared],
            [",".join(p.extra_leads) for p in prepared],
            with_recon,
            ids,
        )

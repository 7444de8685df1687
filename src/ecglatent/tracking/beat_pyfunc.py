"""The served SiliconNet beat classifier (N vs V): an MLflow pyfunc bundling preprocessing and CNN.

Each input row is either
  * a beat: ``beat``, 301 samples at 250 Hz in raw mV, the QRS at index 250 (1 s before,
    0.2 s after); or
  * a recording: ``signal`` (1-D, or leads × samples) in mV, ``fs`` (Hz), ``leads`` (names,
    needed for 2-D signals) and optionally ``lead`` (the lead to classify). Without ``lead``,
    the training lead, MLII or II is used if present, else the record's first lead: a record
    is scored on whichever lead it has, and the answer names it. R peaks are detected on that
    lead, which is then band-passed (0.5–60 Hz), resampled to 250 Hz and cut into 301-sample
    windows, exactly as in the `siliconet-beats` stage.
Beats are normalised inside with the training set's mean and std. Output, one row per beat:
``row`` (input row), ``sample`` (R peak at the input's rate; -1 for beat rows),
``probability_v``, ``label`` ("N" or "V", P(V) >= the model's threshold), ``lead`` (the lead
classified), ``quality`` ("ok") and ``quality_detail``. An input row that gives no beat (bad
values, too short, no complete window...) gets one row with sample -1, NaN ``probability_v``,
an empty label and the ``quality`` code saying why; only a request with neither a ``beat`` nor
a ``signal`` column is refused (400).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, DataType, Schema
from mlflow.types.schema import AnyType

from ecglatent.tracking.pyfunc_input import bad_input, input_frame, set_serving_threads

BUNDLE = "bundle"
CLASSES = ("N", "V")
DEFAULT_LEADS = ("MLII", "II")
MIN_FS_HZ = 50.0
MAX_FS_HZ = 20_000.0
OUTPUT_COLUMNS = ("row", "sample", "probability_v", "label", "lead", "quality", "quality_detail")


class Unusable(ValueError):
    """One input row that gives no beat: ``code`` is its quality, the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def save_bundle(
    path: Path,
    state_dict: dict[str, torch.Tensor],
    *,
    mean: float,
    std: float,
    threshold: float,
    fs: float,
    before_s: float,
    after_s: float,
    bandpass_hz: tuple[float, float],
    rpeak_detector: str,
    train_lead: str,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Network weights and every preprocessing constant the served model needs, in one file."""
    torch.save(
        {
            "state_dict": state_dict,
            "mean": float(mean),
            "std": float(std),
            "threshold": float(threshold),
            "fs": float(fs),
            "before_s": float(before_s),
            "after_s": float(after_s),
            "bandpass_hz": [float(b) for b in bandpass_hz],
            "rpeak_detector": rpeak_detector,
            "train_lead": train_lead,
            "meta": meta or {},
        },
        path,
    )
    return path


def signature() -> ModelSignature:
    """Both input modes as optional columns.

    Every column but ``fs`` is any-typed so one request may mix beat rows and recording rows
    (a typed array column rejects the NaN that a row of the other kind leaves in it);
    :meth:`BeatClassifierModel.predict` checks each value and answers a bad one with its quality.
    """
    inputs = Schema([
        ColSpec(AnyType(), "beat", required=False),
        ColSpec(AnyType(), "signal", required=False),
        ColSpec(DataType.double, "fs", required=False),
        ColSpec(AnyType(), "leads", required=False),
        ColSpec(AnyType(), "lead", required=False),
    ])  # fmt: skip
    outputs = Schema([
        ColSpec(DataType.long, "row"),
        ColSpec(DataType.long, "sample"),
        ColSpec(DataType.double, "probability_v"),
        ColSpec(DataType.string, "label"),
        ColSpec(DataType.string, "lead"),
        ColSpec(DataType.string, "quality"),
        ColSpec(DataType.string, "quality_detail"),
    ])  # fmt: skip
    return ModelSignature(inputs=inputs, outputs=outputs)


def requirements() -> list[str]:
    """Pinned pip requirements of the served model (the versions installed here)."""
    from importlib.metadata import version

    pkgs = ["torch", "numpy", "scipy", "pandas", "scikit-learn", "wfdb", "mlflow", "pyyaml"]
    return [f"{p}=={version(p).split('+')[0]}" for p in pkgs]


def _missing(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, float) and math.isnan(value)


class BeatClassifierModel(PythonModel):
    """Beats or raw recordings in; one N/V label and P(V) per beat out."""

    def load_context(self, context) -> None:
        set_serving_threads()
        self.load_bundle(context.artifacts[BUNDLE])

    def load_bundle(self, path: str | Path) -> None:
        from ecglatent.datasets.single_lead import window_samples
        from ecglatent.models.siliconet import BeatClassifier, inference_copy

        bundle = torch.load(path, map_location="cpu", weights_only=False)
        self.network = BeatClassifier()
        self.network.load_state_dict(bundle["state_dict"])
        # scored only: BatchNorm folded into the convolutions once, at load (same function)
        self.network = inference_copy(self.network)
        self.mean, self.std = float(bundle["mean"]), float(bundle["std"])
        self.threshold = float(bundle["threshold"])
        self.fs = float(bundle["fs"])
        self.band = tuple(bundle["bandpass_hz"])
        self.detector = str(bundle["rpeak_detector"])
        self.default_leads = (bundle["train_lead"], *DEFAULT_LEADS)
        self.before, self.after = window_samples(self.fs, bundle["before_s"], bundle["after_s"])
        self.meta = dict(bundle.get("meta", {}))

    @property
    def n_samples(self) -> int:
        return self.before + self.after

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        model_input = input_frame(model_input)
        if not {"beat", "signal"} & set(model_input.columns):
            raise bad_input(
                "input needs a 'beat' column (301 samples at 250 Hz, mV) or a 'signal' column "
                f"with 'fs' (and 'leads' for several leads); got {list(model_input.columns)}"
            )
        parts: list[dict[str, Any]] = []
        windows: list[np.ndarray] = []
        for i, row in enumerate(model_input.to_dict("records")):
            try:
                if not _missing(row.get("signal")):
                    w, peaks, lead = self._record_windows(row)
                elif not _missing(row.get("beat")):
                    w, peaks, lead = self._beat_window(row["beat"]), np.array([-1]), ""
                else:
                    raise Unusable("invalid_signal", "neither 'beat' nor 'signal' is given")
            except Unusable as exc:
                parts.append({"row": [i], "sample": [-1], "lead": [""], "quality": exc.code,
                              "detail": str(exc), "n": 0})  # fmt: skip
                continue
            windows.append(w)
            parts.append({"row": [i] * len(w), "sample": list(peaks), "lead": [lead] * len(w),
                          "quality": "ok", "detail": "", "n": len(w)})  # fmt: skip
        x = np.concatenate(windows) if windows else np.empty((0, self.n_samples))
        p_v = self._probability_v(x) if len(x) else np.empty(0)
        probs, labels, quality, detail = [], [], [], []
        k = 0
        for part in parts:
            m = len(part["row"])
            if part["n"]:
                probs.append(p_v[k : k + m])
                labels += list(np.where(p_v[k : k + m] >= self.threshold, CLASSES[1], CLASSES[0]))
                k += m
            else:
                probs.append(np.full(m, np.nan))
                labels += [""] * m
            quality += [part["quality"]] * m
            detail += [part["detail"]] * m
        return pd.DataFrame(
            {
                "row": np.asarray([r for part in parts for r in part["row"]], dtype=np.int64),
                "sample": np.asarray([s for part in parts for s in part["sample"]], dtype=np.int64),
                "probability_v": np.concatenate(probs) if probs else np.empty(0),
                "label": labels,
                "lead": [name for part in parts for name in part["lead"]],
                "quality": quality,
                "quality_detail": detail,
            },
            columns=list(OUTPUT_COLUMNS),
        )

    def _probability_v(self, beats_mv: np.ndarray) -> np.ndarray:
        from ecglatent.training.simsiam import predict_proba

        x = ((beats_mv - self.mean) / self.std).astype(np.float32)[:, None, :]
        return predict_proba(self.network, x, fold=False)[:, 1].astype(np.float64)

    def _beat_window(self, beat: Any) -> np.ndarray:
        try:
            x = np.asarray(beat, dtype=np.float64)
        except (TypeError, ValueError):
            raise Unusable("invalid_beat", "beat must be a list of numbers") from None
        if x.ndim == 2 and x.shape[0] == 1:
            x = x[0]
        if x.shape != (self.n_samples,):
            raise Unusable(
                "invalid_beat",
                f"beat has shape {x.shape}, expected ({self.n_samples},): "
                f"{self.before / self.fs:g} s before to {(self.after - 1) / self.fs:g} s after "
                f"the QRS at {self.fs:g} Hz",
            )
        if not np.isfinite(x).all():
            raise Unusable("nan_or_inf", "beat contains NaN or infinite values")
        return x[None, :]

    def _pick_lead(self, signal: np.ndarray, row: dict) -> tuple[np.ndarray, str]:
        """The lead to classify and its name: the one asked for, else a default, else the first."""
        from ecglatent.sources.leads import normalise_lead

        leads = row.get("leads")
        wanted = row.get("lead")
        if not _missing(wanted) and not isinstance(wanted, str):
            raise Unusable("invalid_signal", f"'lead' must be one lead name, got {wanted!r}")
        if signal.ndim == 1:
            name = leads[0] if isinstance(leads, list | tuple) and len(leads) == 1 else ""
            return signal, str(name or (wanted if not _missing(wanted) else ""))
        if not _missing(leads) and (
            isinstance(leads, str) or not all(isinstance(n, str) for n in np.ravel(leads))
        ):
            raise Unusable("invalid_signal", f"'leads' must be a list of lead names, got {leads!r}")
        if _missing(leads) or len(leads) != signal.shape[0]:
            raise Unusable(
                "invalid_signal",
                f"a {signal.shape[0]}-lead signal needs 'leads' with {signal.shape[0]} names "
                "(signal is leads × samples)",
            )
        names = [normalise_lead(str(n)) or str(n) for n in leads]
        if not _missing(wanted):
            norm = normalise_lead(str(wanted)) or str(wanted)
            if norm not in names:
                raise Unusable("missing_lead", f"lead {wanted} not among leads {list(leads)}")
            return signal[names.index(norm)], str(leads[names.index(norm)])
        for cand in self.default_leads:
            norm = normalise_lead(str(cand)) or str(cand)
            if norm in names:
                return signal[names.index(norm)], str(leads[names.index(norm)])
        return signal[0], str(leads[0])

    def _record_windows(self, row: dict) -> tuple[np.ndarray, np.ndarray, str]:
        from ecglatent.datasets.single_lead import condition
        from ecglatent.signal.beats import extract_beats
        from ecglatent.signal.rpeaks import detect_rpeaks

        try:
            signal = np.asarray(row["signal"], dtype=np.float64)
        except (TypeError, ValueError):
            raise Unusable(
                "invalid_signal", "signal must be a list (or leads × samples lists) of numbers"
            ) from None
        if signal.ndim not in (1, 2):
            raise Unusable(
                "invalid_signal", f"signal must be 1-D or leads × samples, got shape {signal.shape}"
            )
        fs = row.get("fs")
        if _missing(fs):
            raise Unusable("implausible_fs", "a signal needs its sampling rate 'fs' (Hz)")
        fs = float(fs)
        if not MIN_FS_HZ <= fs <= MAX_FS_HZ:
            raise Unusable("implausible_fs", f"fs {fs} Hz is not a plausible ECG sampling rate")
        x, lead = self._pick_lead(signal, row)
        min_s = self.n_samples / self.fs
        if len(x) / fs < min_s:
            raise Unusable(
                "too_short", f"signal is {len(x) / fs:.2f} s; one beat window needs {min_s:.1f} s"
            )
        if not np.isfinite(x).all():
            raise Unusable("nan_or_inf", f"lead {lead}: signal contains NaN or infinite values")
        if np.ptp(x) == 0:
            raise Unusable("flat_lead", f"lead {lead} is flat: lead off or missing")
        peaks = detect_rpeaks(x, fs, self.detector)
        conditioned = condition(x[None, :], fs, self.fs, self.band)
        at_fs = np.round(peaks * (self.fs / fs)).astype(np.int64)
        w, ok = extract_beats(conditioned, at_fs, self.before, self.after)
        if not len(ok):
            raise Unusable(
                "too_few_beats",
                f"no complete {self.n_samples}-sample beat window around "
                f"{len(peaks)} detected R peak(s) in lead {lead}",
            )
        return w[:, 0, :], peaks[ok], lead

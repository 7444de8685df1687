"""Signature and input example of the served β-VAE (what the MLflow UI shows as its schema)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema
from mlflow.types.schema import AnyType, Array

from ecglatent.config import Params
from ecglatent.datasets.arrays import BeatArrays
from ecglatent.signal.filters import resample
from ecglatent.sources import ptbxl
from ecglatent.sources.records import read_record

EXAMPLE_FS = 100.0  # the example is shipped at 100 Hz: 10 s × 12 leads stays small


def signature_for(mode: str, latent_dim: int) -> ModelSignature:
    """Input columns per mode, output columns, and the ``reconstruction`` flag as a param.

    ``signal`` and ``leads`` are any-typed: MLflow's element-wise enforcement of a nested
    double array costs more than the whole preprocessing of a 12 × 5000 recording (twice: at
    parsing and at predict), and a bad value there must cost one row, not the request. The
    model checks each recording itself and answers a bad one with its ``quality``.
    """
    if mode == "record":
        inputs = Schema([
            ColSpec(AnyType(), "signal"),
            ColSpec(DataType.double, "fs"),
            ColSpec(AnyType(), "leads"),
            ColSpec(AnyType(), "id", required=False),
        ])  # fmt: skip
    else:
        inputs = Schema([
            ColSpec(Array(Array(DataType.double)), "beat"),
            ColSpec(Array(DataType.double), "rr"),
        ])  # fmt: skip
    outputs = Schema(
        [ColSpec(DataType.double, f"latent_{i}") for i in range(latent_dim)]
        + [
            ColSpec(DataType.double, "probability"),
            ColSpec(DataType.double, "rr_mean_s"),
            ColSpec(DataType.double, "rr_std_s"),
            ColSpec(DataType.long, "n_beats"),
            ColSpec(DataType.string, "quality"),
            ColSpec(DataType.string, "quality_detail"),
            ColSpec(DataType.string, "extra_leads"),
        ]  # fmt: skip
    )
    params = ParamSchema([ParamSpec("reconstruction", DataType.boolean, False)])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def example_recording(params: Params) -> dict:
    """One real PTB-XL recording from the fetched data, resampled to 100 Hz."""
    root = Path(params.data.raw_dir) / "ptb-xl"
    table = ptbxl.read_database(root).sort_index()
    row = table.iloc[0]
    rec = read_record(ptbxl.record_path(root, row, params.data.ptbxl_rate))
    sig = np.round(resample(rec.signal, rec.fs, EXAMPLE_FS), 4)
    return {"signal": sig.tolist(), "fs": EXAMPLE_FS, "leads": list(rec.leads)}


def input_example(mode: str, data: BeatArrays, params: Params) -> pd.DataFrame:
    if mode == "record":
        return pd.DataFrame([example_recording(params)])
    i = int(np.flatnonzero(data.role == "test")[0])
    return pd.DataFrame([{"beat": np.round(data.x[i], 4).tolist(), "rr": data.rr[i].tolist()}])

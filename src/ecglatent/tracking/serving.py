"""Serving and batch scoring of registered models (MLflow's own server; no custom web app)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd

from ecglatent.config import Params
from ecglatent.errors import EcglatentError, RecordError
from ecglatent.sources.records import read_record
from ecglatent.tracking import runs


def default_model_uri(params: Params) -> str:
    """``models:/ecg-task-vae-ptbxl-<task>@champion`` for the configured PTB-XL task."""
    from ecglatent.tracking.registry import CHAMPION, model_name

    return f"models:/{model_name(params.tracking.model_prefix, 'ptbxl', params.split.task_name)}@{CHAMPION}"


def serve_command(model_uri: str, host: str, port: int, workers: int = 1) -> list[str]:
    return [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager",
            "local", "--host", host, "--port", str(port), "--workers", str(workers)]  # fmt: skip


def serve(params: Params, model_uri: str | None, host: str, port: int, workers: int) -> int:
    """Run `mlflow models serve` in the foreground against the configured tracking store."""
    runs.configure(params.tracking)
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri()}
    cmd = serve_command(model_uri or default_model_uri(params), host, port, workers)
    print("+", " ".join(cmd), flush=True)
    return subprocess.call(cmd, env=env)


def predict_files(
    params: Params, model_uri: str | None, files: list[str], out: str | None
) -> pd.DataFrame:
    """Score WFDB records (``.hea`` paths) with a registered model; unreadable ones are reported."""
    runs.configure(params.tracking)
    uri = model_uri or default_model_uri(params)
    try:
        model = mlflow.pyfunc.load_model(uri)
    except Exception as exc:
        raise EcglatentError(f"cannot load {uri} ({type(exc).__name__}: {exc}); train and "
                             f"register one with `dvc repro` or pass --model") from None  # fmt: skip
    rows, names, failed = [], [], []
    for f in files:
        path = Path(f).with_suffix("")
        try:
            rec = read_record(path)
        except RecordError as exc:
            failed.append({"record": str(path), "quality": f"unreadable: {exc.reason}"})
            continue
        rows.append({"signal": rec.signal.tolist(), "fs": rec.fs, "leads": list(rec.leads)})
        names.append(str(path))
    result = pd.DataFrame()
    if rows:
        try:
            result = model.predict(pd.DataFrame(rows))
        except mlflow.exceptions.MlflowException as exc:
            raise EcglatentError(str(exc.message)) from None
        # a per-beat model (ecg-beat-classifier) answers several rows per record, each with the
        # index of its input row; a per-record model answers one row per record
        rows_of = result["row"].to_numpy() if "row" in result.columns else range(len(names))
        result.insert(0, "record", [names[i] for i in rows_of])
    result = pd.concat([result, pd.DataFrame(failed)], ignore_index=True)
    if out:
        result.to_csv(out, index=False)
    return result

"""What the served pyfunc models share about their input: the frame, and how to refuse it."""

from __future__ import annotations

import os

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE


def bad_input(msg: str) -> MlflowException:
    """An input error; INVALID_PARAMETER_VALUE makes `mlflow models serve` answer 400, not 500."""
    return MlflowException(msg, error_code=INVALID_PARAMETER_VALUE)


def input_frame(model_input) -> pd.DataFrame:
    """``model_input`` as a non-empty DataFrame (dicts and lists of rows are accepted)."""
    frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
    if frame.empty:
        raise bad_input("no input rows")
    return frame


THREADS_ENV = "ECGLATENT_TORCH_THREADS"


def set_serving_threads() -> None:
    """One torch thread for a loaded model unless ``$ECGLATENT_TORCH_THREADS`` says otherwise.

    A request's network pass is small; with two intra-op threads on a 2-core machine whose
    other core is busy (the HTTP server, the client, `predict`'s file readers) it ran ~10×
    slower (measured: one 12-lead record 190 ms vs 19 ms, 32 records 640 ms vs 360 ms).
    Serve more requests at once with more workers (`ecglatent serve --workers`).
    """
    import torch

    torch.set_num_threads(max(1, int(os.environ.get(THREADS_ENV, "1"))))

"""What the served pyfunc models share about their input: the frame, and how to refuse it."""

from __future__ import annotations

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

"""PTB-XL: the database table, SCP statements and diagnostic superclasses."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd

from ecglatent.errors import EcglatentError

DATABASE_CSV = "ptbxl_database.csv"
SCP_CSV = "scp_statements.csv"
# PTB-XL encodes ages above 89 as 300 for anonymisation.
AGE_ANONYMISED = 300
AGE_CAP = 90


def read_database(root: Path) -> pd.DataFrame:
    """ptbxl_database.csv indexed by ecg_id, with ``scp_codes`` parsed into dicts."""
    path = root / DATABASE_CSV
    if not path.exists():
        raise EcglatentError(f"{path} not found: is {root} a PTB-XL folder in PhysioNet's layout?")
    df = pd.read_csv(path, index_col="ecg_id")
    needed = {"patient_id", "age", "sex", "scp_codes", "filename_lr", "filename_hr"}
    missing = needed - set(df.columns)
    if missing:
        raise EcglatentError(f"{path} lacks column(s) {sorted(missing)}")
    df["scp_codes"] = df["scp_codes"].apply(ast.literal_eval)
    df["age"] = df["age"].where(df["age"] != AGE_ANONYMISED, AGE_CAP)
    return df


def read_scp_statements(root: Path) -> pd.DataFrame:
    """scp_statements.csv indexed by SCP code."""
    path = root / SCP_CSV
    if not path.exists():
        raise EcglatentError(f"{path} not found: is {root} a PTB-XL folder in PhysioNet's layout?")
    return pd.read_csv(path, index_col=0)


def diagnostic_superclasses(
    scp_codes: dict[str, float], statements: pd.DataFrame, min_likelihood: float = 0.0
) -> list[str]:
    """Sorted diagnostic superclasses (NORM, MI, STTC, CD, HYP) of one record's SCP codes."""
    diag = statements[statements.get("diagnostic", 0) == 1]
    out = {
        str(diag.at[code, "diagnostic_class"])
        for code, likelihood in scp_codes.items()
        if code in diag.index and likelihood >= min_likelihood
    }
    return sorted(c for c in out if c and c != "nan")


def record_path(root: Path, row: pd.Series, rate: int) -> Path:
    """Path (no extension) of a record at 100 or 500 Hz."""
    column = {100: "filename_lr", 500: "filename_hr"}.get(rate)
    if column is None:
        raise EcglatentError(f"PTB-XL ships 100 and 500 Hz copies, not {rate} Hz (data.ptbxl_rate)")
    return root / str(row[column])

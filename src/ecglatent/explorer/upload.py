"""Uploaded files (a WFDB record or a JSON recording) turned into the served model's input rows.

A WFDB record is its ``.hea`` plus the signal files the header names (``.dat``, ``.mat``…); a
JSON file holds one pyfunc input row (``{"signal", "fs", "leads"}`` for recording models,
``{"beat", "rr"}`` for beat models) or MLflow's ``{"dataframe_records": [row]}``. Scoring is
left to the model's own ``predict`` (see :meth:`ExplorerModel.score`).
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pandas as pd

from ecglatent.errors import EcglatentError, RecordError
from ecglatent.sources.records import read_record

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
_SAFE_NAME = re.compile(r"^[A-Za-z0-9._+-]{1,200}$")


def upload_frame(files: dict[str, bytes], mode: str) -> tuple[str, pd.DataFrame]:
    """(display name, one-row pyfunc input frame) from uploaded ``{file name: content}``."""
    if not files:
        raise EcglatentError("no file uploaded: choose a WFDB record (.hea + .dat) or a .json file")
    if sum(len(b) for b in files.values()) > MAX_UPLOAD_BYTES:
        raise EcglatentError(f"upload larger than {MAX_UPLOAD_BYTES // 2**20} MiB")
    for name in files:
        if not _SAFE_NAME.match(name):
            raise EcglatentError(
                f"file name {name!r} has characters other than letters, digits, ._+-"
            )
    jsons = [n for n in files if n.lower().endswith(".json")]
    headers = [n for n in files if n.lower().endswith(".hea")]
    if jsons:
        return jsons[0], _json_frame(jsons[0], files[jsons[0]], mode)
    if len(headers) != 1:
        raise EcglatentError(
            f"a WFDB record needs exactly one .hea file with its .dat; got {sorted(files)}"
        )
    if mode != "record":
        raise EcglatentError(
            'this is a single-beat model: upload a JSON beat {"beat": [[...], ...], "rr": '
            "[pre_rr_s, post_rr_s]} at the model's sampling rate, not a whole WFDB record"
        )
    return headers[0], _wfdb_frame(headers[0], files)


def _json_frame(name: str, content: bytes, mode: str) -> pd.DataFrame:
    try:
        obj = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EcglatentError(f"{name}: not valid JSON ({exc})") from None
    if isinstance(obj, dict) and "dataframe_records" in obj:
        obj = obj["dataframe_records"]
    rows = obj if isinstance(obj, list) else [obj]
    if len(rows) != 1 or not isinstance(rows[0], dict):
        raise EcglatentError(f"{name}: expected one recording object, got {len(rows)} rows")
    need = ("signal", "fs", "leads") if mode == "record" else ("beat", "rr")
    missing = [k for k in need if k not in rows[0]]
    if missing:
        raise EcglatentError(f"{name}: missing field(s) {missing}; this model reads {list(need)}")
    return pd.DataFrame(rows)


def _wfdb_frame(header: str, files: dict[str, bytes]) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        for n, b in files.items():
            (Path(tmp) / n).write_bytes(b)
        try:
            rec = read_record(Path(tmp) / Path(header).stem)
        except RecordError as exc:
            raise EcglatentError(f"{header}: {exc.reason}") from None
    return pd.DataFrame([{"signal": rec.signal.tolist(), "fs": rec.fs, "leads": list(rec.leads)}])

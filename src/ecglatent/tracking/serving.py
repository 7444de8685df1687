"""Serving and batch scoring of registered models (MLflow's own scoring server, size-limited)."""

from __future__ import annotations

import glob
import logging
import multiprocessing as mp
import os
import subprocess
import sys
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import mlflow
import pandas as pd
from tqdm import tqdm

from ecglatent.config import Params
from ecglatent.errors import EcglatentError, RecordError
from ecglatent.sources.records import read_record
from ecglatent.tracking import runs
from ecglatent.tracking.serving_app import DEFAULT_MAX_REQUEST_MB

log = logging.getLogger(__name__)

# quality of a file that could not be read as a WFDB record, and of one the model failed on
UNREADABLE = "unreadable"
SCORING_ERROR = "error"


def default_model_uri(params: Params) -> str:
    """``models:/ecg-task-vae-ptbxl-<task>@champion`` for the configured PTB-XL task."""
    from ecglatent.tracking.registry import CHAMPION, model_name

    return f"models:/{model_name(params.tracking.model_prefix, 'ptbxl', params.split.task_name)}@{CHAMPION}"


def serve_command(
    model_uri: str,
    host: str,
    port: int,
    workers: int = 1,
    max_request_mb: float = DEFAULT_MAX_REQUEST_MB,
) -> list[str]:
    """MLflow's scoring server for ``model_uri`` behind the request-size limit (serving_app)."""
    return [sys.executable, "-m", "ecglatent.tracking.serving_app", "--model", model_uri,
            "--host", host, "--port", str(port), "--workers", str(workers),
            "--max-request-mb", f"{max_request_mb:g}"]  # fmt: skip


def serve(
    params: Params,
    model_uri: str | None,
    host: str,
    port: int,
    workers: int,
    max_request_mb: float = DEFAULT_MAX_REQUEST_MB,
) -> int:
    """Serve a registered model in the foreground against the configured tracking store."""
    runs.configure(params.tracking)
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri()}
    cmd = serve_command(model_uri or default_model_uri(params), host, port, workers, max_request_mb)
    print("+", " ".join(cmd), flush=True)
    return subprocess.call(cmd, env=env)


def expand_inputs(inputs: list[str]) -> list[Path]:
    """WFDB records named by header files, folders (searched recursively) or glob patterns."""
    found: dict[Path, None] = {}
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            matches = sorted(path.rglob("*.hea"))
        elif any(ch in item for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            matches = [m for m in matches if m.suffix == ".hea" or m.is_dir()]
            matches = [
                h for m in matches for h in (sorted(m.rglob("*.hea")) if m.is_dir() else [m])
            ]
        else:
            matches = [path]
        if not matches:
            raise EcglatentError(f"no WFDB header (.hea) matches {item!r}")
        for m in matches:
            found[m.with_suffix("") if m.suffix == ".hea" else m] = None
    return list(found)


def _done_records(out: Path) -> set[str]:
    """Records already in ``out`` (for --resume); a half-written last line is dropped."""
    if not out.exists() or out.stat().st_size == 0:
        return set()
    try:
        table = pd.read_csv(out, usecols=["record"], dtype={"record": str},
                            on_bad_lines="skip")  # fmt: skip
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise EcglatentError(
            f"cannot resume from {out}: {exc}; remove it or drop --resume"
        ) from None
    return set(table["record"].dropna())


def _drop_partial_line(out: Path) -> None:
    """Cut a line left half-written by a killed run, so appended rows start on a fresh line."""
    data = out.read_bytes()
    if data and not data.endswith(b"\n"):
        with out.open("r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)


def _read_chunk(paths: list[Path]) -> tuple[list[dict], list[str], list[dict]]:
    rows, names, failed = [], [], []
    for path in paths:
        try:
            rec = read_record(path)
        except RecordError as exc:
            failed.append({"record": str(path), "quality": UNREADABLE,
                           "quality_detail": exc.reason})  # fmt: skip
            continue
        except Exception as exc:  # a file no reader expects must not stop the run
            failed.append({"record": str(path), "quality": UNREADABLE,
                           "quality_detail": f"{type(exc).__name__}: {exc}"})  # fmt: skip
            continue
        rows.append({"signal": rec.signal, "fs": rec.fs, "leads": list(rec.leads)})
        names.append(str(path))
    return rows, names, failed


class _Readers:
    """Chunks of WFDB files read ahead, in order, by worker processes (in-process with 0)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self):
        if self.n > 0:
            # spawn: a fork of a process holding torch threads may hang
            self.pool = ProcessPoolExecutor(self.n, mp_context=mp.get_context("spawn"))
            # start every worker now (a spawned worker takes the sys.path of the moment)
            for future in [self.pool.submit(os.getpid) for _ in range(self.n)]:
                future.result()
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def __call__(self, chunks: list[list[Path]]):
        if self.pool is None:
            yield from (_read_chunk(c) for c in chunks)
            return
        ahead = self.n + 1
        pending = deque(self.pool.submit(_read_chunk, c) for c in chunks[:ahead])
        for k in range(len(chunks)):
            if k + ahead < len(chunks):
                pending.append(self.pool.submit(_read_chunk, chunks[k + ahead]))
            yield pending.popleft().result()


def _predict_rows(model, rows: list[dict]) -> list[tuple[pd.DataFrame, int]]:
    """The model's answer for ``rows`` as (table, offset of its first row) pieces. Should the
    model fail on a chunk, its records are scored one by one and a record it still fails on gets
    an ``error`` row with the message: one record never costs the others."""
    try:
        return [(model.predict(pd.DataFrame(rows)), 0)]
    except Exception as exc:
        if len(rows) == 1:
            msg = exc.message if isinstance(exc, mlflow.exceptions.MlflowException) else exc
            return [(pd.DataFrame({"quality": [SCORING_ERROR],
                                   "quality_detail": [f"{type(exc).__name__}: {msg}"]}), 0)]  # fmt: skip
    pieces = []
    for i, row in enumerate(rows):
        pieces += [(table, i) for table, _ in _predict_rows(model, [row])]
    return pieces


def _score_chunk(model, rows: list[dict], names: list[str], failed: list[dict]) -> pd.DataFrame:
    tables = []
    for result, offset in _predict_rows(model, rows) if rows else []:
        # a per-beat model (ecg-beat-classifier) answers several rows per record, each with the
        # index of its input row; a per-record model answers one row per record
        if "row" in result.columns:
            result = result.assign(row=result["row"].to_numpy() + offset)
            rows_of = result["row"].to_numpy()
        else:
            rows_of = range(offset, offset + len(result))
        result.insert(0, "record", [names[i] for i in rows_of])
        tables.append(result)
    return pd.concat([*tables, pd.DataFrame(failed)], ignore_index=True)


def predict_files(
    params: Params,
    model_uri: str | None,
    inputs: list[str],
    out: str | None,
    chunk_size: int = 64,
    resume: bool = False,
    progress: bool = True,
    readers: int = 0,
) -> pd.DataFrame | None:
    """Score WFDB records with a registered model, ``chunk_size`` files at a time.

    Every record gets its row(s): scores, or NaN scores and the ``quality`` saying why (an
    unreadable file is ``unreadable``). With ``out``, rows are appended to the CSV and flushed
    after each chunk, so an interrupted run keeps what it wrote and ``resume`` skips the records
    already there; the table is returned only when there is no ``out``. ``readers`` worker
    processes (default: one per core but one) read the next chunks' files while this process
    scores the current one (WFDB header parsing costs about as much as the scoring; the CLI
    uses one per core but one; from a script, guard the caller with ``if __name__ == "__main__"``).
    """
    runs.configure(params.tracking)
    uri = model_uri or default_model_uri(params)
    paths = expand_inputs(inputs)
    # the readers start first: loading the model puts its logged code copy first on sys.path,
    # and a process started after that would import this package from the copy
    with _Readers(readers) as read:
        try:
            model = mlflow.pyfunc.load_model(uri)
        except Exception as exc:
            raise EcglatentError(f"cannot load {uri} ({type(exc).__name__}: {exc}); train and "
                                 f"register one with `dvc repro` or pass --model") from None  # fmt: skip
        return _predict_chunks(model, paths, out, chunk_size, resume, progress, read)


def _predict_chunks(model, paths, out, chunk_size, resume, progress, read) -> pd.DataFrame | None:
    out_path = Path(out) if out else None
    columns: list[str] | None = None
    if out_path is not None and resume and out_path.exists() and out_path.stat().st_size:
        _drop_partial_line(out_path)
        done = _done_records(out_path)
        paths = [p for p in paths if str(p) not in done]
        columns = list(pd.read_csv(out_path, nrows=0).columns)
        log.info("predict: %d records already in %s; %d to go", len(done), out_path, len(paths))
    elif out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text("")
    if columns is None:
        schema = model.metadata.get_output_schema()
        columns = ["record", *(schema.input_names() if schema else [])]
    tables = []
    bar = tqdm(total=len(paths), unit="rec", desc="predict", disable=not progress,
               file=sys.stderr)  # fmt: skip
    chunks = [paths[i : i + chunk_size] for i in range(0, len(paths), chunk_size)]
    position = {str(path): i for i, path in enumerate(paths)}
    for chunk, parts in zip(chunks, read(chunks), strict=True):
        table = _score_chunk(model, *parts)
        if "row" in table.columns:  # per-beat models: the file's position in this run
            table["row"] = table["record"].map(position).astype("Int64")
        columns += [c for c in table.columns if c not in columns]
        table = table.reindex(columns=columns)
        if out_path is None:
            tables.append(table)
        else:
            with out_path.open("a", newline="") as fh:
                table.to_csv(fh, index=False, header=fh.tell() == 0)
                fh.flush()
                os.fsync(fh.fileno())
        bar.update(len(chunk))
    bar.close()
    if out_path is None:
        return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=columns)
    return None

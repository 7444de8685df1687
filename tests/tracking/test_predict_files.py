"""`ecglatent predict` over thousands of files: one row per file, rows kept when killed, --resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from ecglatent.sources import ptbxl

MODEL_URI = "models:/ecg-task-vae-ptbxl-norm@champion"
N_FILES = 2000
N_SOURCES = 6  # real PTB-XL records the files are made from
BROKEN_EVERY = 40  # every 40th file is broken, five kinds in turn


def _make_files(folder: Path, mirror: Path) -> dict[str, str]:
    """N_FILES WFDB headers over a few real signal files; returns {record path: expected quality
    or "" for a good one}."""
    root = mirror / "ptb-xl"
    table = ptbxl.read_database(root).sort_index().iloc[-N_SOURCES:]
    sources = []
    for _, row in table.iterrows():
        src = ptbxl.record_path(root, row, 500)
        dat = src.with_suffix(".dat")
        (folder / dat.name).symlink_to(dat)
        lines = src.with_suffix(".hea").read_text().splitlines()
        sources.append((lines, dat.name))
    (folder / "short.dat").write_bytes(b"\0" * 1000)  # a truncated signal file
    expected = {}
    for i in range(N_FILES):
        name = f"rec_{i:04d}"
        lines, dat = sources[i % N_SOURCES]
        head = lines[0].split()
        body = lines[1:]
        quality = ""
        if i % BROKEN_EVERY == BROKEN_EVERY - 1:
            kind = (i // BROKEN_EVERY) % 5
            quality = "unreadable"
            if kind == 0:
                text = ""  # empty header
            elif kind == 1:
                text = "this is not a WFDB header\n\x00\x01"
            elif kind == 2:  # signal file missing
                text = "\n".join([name, *head[1:], *[b.replace(dat, "gone.dat") for b in body]])
            elif kind == 3:  # truncated signal file
                text = "\n".join([name, *head[1:], *[b.replace(dat, "short.dat") for b in body]])
            else:  # sampling rate 0
                text = "\n".join([" ".join([name, head[1], "0", *head[3:]]), *body])
        else:
            text = "\n".join([" ".join([name, *head[1:]]), *body])
        (folder / f"{name}.hea").write_text(text + "\n")
        expected[str(folder / name)] = quality
    return expected


def _predict(params: Path, *args: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "ecglatent.cli", "--params", str(params), "predict", "--model",
           MODEL_URI, "--no-progress", *args]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _rows(csv: Path) -> int:
    return max(csv.read_bytes().count(b"\n") - 1, 0) if csv.exists() else 0


def test_predict_on_2000_files_one_row_each_and_a_killed_run_keeps_its_rows(
    tiny_vae_run, mirror: Path, tmp_path: Path
):
    work, params = tiny_vae_run
    folder = tmp_path / "records"
    folder.mkdir()
    expected = _make_files(folder, mirror)
    out = tmp_path / "scores.csv"
    # a glob pattern, as a user quotes it; the run is killed (SIGKILL) part-way
    proc = _predict(params, str(folder / "rec_*.hea"), "--out", str(out), "--chunk-size", "100")
    deadline = time.monotonic() + 600
    while _rows(out) < 400 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, f"finished before it could be killed: {proc.stdout.read()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = pd.read_csv(out)  # what the killed run wrote is a readable table
    assert 400 <= len(partial) < N_FILES
    assert partial["record"].notna().all() and partial["quality"].notna().all()
    assert partial["record"].is_unique
    # --resume scores only the rest; the folder itself is given this time
    t0 = time.monotonic()
    proc = _predict(params, str(folder), "--out", str(out), "--resume")
    log = proc.communicate(timeout=900)[0]
    assert proc.returncode == 0, log
    print(f"resumed run: {N_FILES - len(partial)} files in {time.monotonic() - t0:.1f} s")
    table = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert len(table) == N_FILES and table["record"].is_unique
    assert set(table["record"]) == set(expected)
    got = dict(zip(table["record"], table["quality"], strict=True))
    broken = {r for r, q in expected.items() if q}
    assert {r for r in broken if got[r] == "unreadable"} == broken
    assert {got[r] for r in expected if r not in broken} == {"ok"}
    reasons = table.set_index("record").loc[sorted(broken), "quality_detail"]
    assert reasons.str.len().gt(0).all()
    assert table.loc[table["quality"] == "unreadable", "latent_0"].isna().all()
    assert table.loc[table["quality"] == "ok", "latent_0"].notna().all()
    # identical files give identical scores, whichever run scored them
    ok = table[table["quality"] == "ok"].copy()
    ok["source"] = ok["record"].str[-4:].astype(int) % N_SOURCES
    assert (ok.groupby("source")["latent_0"].nunique() == 1).all()

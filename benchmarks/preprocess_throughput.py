"""Preprocessing throughput: 12-lead 10 s PTB-XL records → median beats, records per second.

    python benchmarks/preprocess_throughput.py [--n 200] [--jobs 1 2]

Times, in the same run:
  * ours, the `beats` stage's per-record work: read + lead check + quality check +
    resample/filter + R peaks + beats + both filters + median beat + RR, with 1 and N processes;
  * ours, the served path: the same records already in memory, through
    ``prepare_recordings`` (what a request costs after JSON decoding), one process;
  * a peer, neurokit2: read, ``ecg_clean`` of all 12 leads, ``ecg_peaks`` and ``ecg_segment``
    on lead II (one lead's beats, so less than ours does), one process.
Each one-process figure is also given per CPU second (``time.process_time``), which a machine
shared with other jobs disturbs less than the wall clock.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import mirror_dir, write_result  # noqa: E402

from ecglatent.config import PreprocessConfig, load_params  # noqa: E402
from ecglatent.pipeline.beats import _ptbxl_one  # noqa: E402
from ecglatent.signal.preprocess import prepare_recordings  # noqa: E402
from ecglatent.sources import ptbxl  # noqa: E402
from ecglatent.sources.records import read_record, to_standard_12  # noqa: E402


def _neurokit_one(task: tuple[int, str, str, PreprocessConfig, float]) -> int:
    """neurokit2's clean + R peaks + segmentation of one record; returns the beats found."""
    import neurokit2 as nk

    _, path, rid, _, _ = task
    rec = to_standard_12(read_record(path, rid))
    clean = [nk.ecg_clean(lead, sampling_rate=int(rec.fs)) for lead in rec.signal]
    _, info = nk.ecg_peaks(clean[1], sampling_rate=int(rec.fs))
    try:
        beats = nk.ecg_segment(clean[1], rpeaks=info["ECG_R_Peaks"], sampling_rate=int(rec.fs))
    except ValueError:  # neurokit2 cannot size its epochs when it finds too few peaks
        return 0
    return len(beats)


def _timed(fn, items) -> tuple[list, float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    out = [fn(x) for x in items]
    return out, time.perf_counter() - t0, time.process_time() - c0


def _entry(n: int, kept: int, secs: float, cpu: float | None = None) -> dict:
    entry = {"records": n, "kept": kept, "seconds": round(secs, 3),
             "records_per_s": round(n / secs, 1)}  # fmt: skip
    if cpu is not None:
        entry["records_per_cpu_s"] = round(n / cpu, 1)
    return entry


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore")  # neurokit2's warnings about short/odd segments
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200, help="records to process")
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rate", type=int, default=500, choices=[100, 500])
    ap.add_argument("--no-peer", action="store_true", help="skip neurokit2")
    args = ap.parse_args()
    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    root = mirror_dir() / "ptb-xl"
    table = ptbxl.read_database(root).sort_index().iloc[: args.n]
    cfg = params.preprocess
    tasks = [
        (int(i), str(ptbxl.record_path(root, row, args.rate)), f"ptb-xl/{i}", cfg, 500.0)
        for i, row in table.iterrows()
    ]
    _ptbxl_one(tasks[0])  # warm-up: imports, filter design caches
    results = {}
    for jobs in args.jobs:
        if jobs == 1:
            out, secs, cpu = _timed(_ptbxl_one, tasks)
        else:
            t0 = time.perf_counter()
            with ProcessPoolExecutor(jobs) as pool:
                out = list(pool.map(_ptbxl_one, tasks, chunksize=8))
            secs, cpu = time.perf_counter() - t0, None
        kept = sum("reject" not in r for r in out)
        results[f"jobs_{jobs}"] = _entry(len(tasks), kept, secs, cpu)
        print(f"ours, beats stage, {args.rate} Hz, {jobs} process(es): {results[f'jobs_{jobs}']}")
    recs = [read_record(path, rid) for _, path, rid, _, _ in tasks]
    rows = [(r.signal, r.fs, r.leads) for r in recs]
    prepared, secs, cpu = _timed(lambda rows: prepare_recordings(rows, 500.0, cfg), [rows])
    kept = sum(p.quality == "ok" for p in prepared[0])
    results["served_path_in_memory"] = _entry(len(rows), kept, secs, cpu)
    print(f"ours, served path (in memory): {results['served_path_in_memory']}")
    if not args.no_peer:
        _neurokit_one(tasks[0])
        out, secs, cpu = _timed(_neurokit_one, tasks)
        results["neurokit2_peer"] = _entry(len(tasks), sum(n > 0 for n in out), secs, cpu)
        print(f"neurokit2 clean x12 + peaks + segment (lead II): {results['neurokit2_peer']}")
        ours = results.get("jobs_1")
        if ours:
            results["ours_over_neurokit2"] = round(
                ours["records_per_s"] / results["neurokit2_peer"]["records_per_s"], 2
            )
    path = write_result(
        "preprocess_throughput",
        {"input_rate_hz": args.rate, "target_records_per_s_per_core": 80, "results": results},
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

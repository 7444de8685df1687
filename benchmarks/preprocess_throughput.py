"""Preprocessing throughput: 12-lead 10 s PTB-XL records → median beats, records per second.

    python benchmarks/preprocess_throughput.py [--n 200] [--jobs 1 2]

Times read + lead check + quality check + resample/filter + R peaks + beats + both filters +
median beat + RR, the `beats` stage's per-record work, with 1 and with N worker processes.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import mirror_dir, write_result  # noqa: E402

from ecglatent.config import load_params  # noqa: E402
from ecglatent.pipeline.beats import _ptbxl_one  # noqa: E402
from ecglatent.sources import ptbxl  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200, help="records to process")
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rate", type=int, default=500, choices=[100, 500])
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
        t0 = time.perf_counter()
        if jobs == 1:
            out = [_ptbxl_one(t) for t in tasks]
        else:
            with ProcessPoolExecutor(jobs) as pool:
                out = list(pool.map(_ptbxl_one, tasks, chunksize=8))
        secs = time.perf_counter() - t0
        kept = sum("reject" not in r for r in out)
        results[f"jobs_{jobs}"] = {
            "records": len(tasks),
            "kept": kept,
            "seconds": round(secs, 3),
            "records_per_s": round(len(tasks) / secs, 1),
        }
        print(f"{args.rate} Hz, {jobs} process(es): {len(tasks)} records in {secs:.2f} s "
              f"= {len(tasks) / secs:.1f} records/s ({kept} kept)")  # fmt: skip
    path = write_result("preprocess_throughput", {"input_rate_hz": args.rate, "results": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

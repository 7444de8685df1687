"""Benchmark R-peak detectors against the MIT-BIH reference beat annotations.

Scoring follows the issue: channel 0 of every record, reference = annotations whose symbol is a
beat (wfdb's beat codes, not '!' flutter waves, rhythm or other non-beat marks), 150 ms matching
window with ``wfdb.processing.compare_annotations``, TP/FP/FN summed over records. A record with
no detections counts as all misses. Every detector runs on the same signals in the same process;
only detection is timed (records are read once up front, read time reported separately).

Peers are scored twice: as they place their detections ("raw") and after the R-peak refinement
the pipeline applies to every detector ("refined", what ``detect_rpeaks`` returns). ecglatent has
one row: its output is always refined and its time includes the refinement.

A secondary table follows the ANSI/AAMI EC57 convention of excluding ventricular flutter and
fibrillation episodes (rhythm annotation '(VFL' or '(VF' until the next rhythm change) from
scoring, for all detectors alike.

    python benchmarks/rpeak_detection.py [--data DIR] [--detectors ...] [--records ...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import wfdb
import wfdb.processing as wp
from tqdm import tqdm

from ecglatent.signal.rpeaks import DETECTORS, detect_raw, refine_rpeaks

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "rpeak_detection.json"
TOLERANCE_S = 0.150
# wfdb's beat annotation codes (wfdb.io.annotation.ann_labels, "beat" group); '!' is not a beat.
BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")
# MIT-BIH split of de Chazal et al. (2004), used to report tuning (DS1) vs held-out (DS2) scores.
DS1 = [
    "101",
    "106",
    "108",
    "109",
    "112",
    "114",
    "115",
    "116",
    "118",
    "119",
    "122",
    "124",
    "201",
    "203",
    "205",
    "207",
    "208",
    "209",
    "215",
    "220",
    "223",
    "230",
]
DS2 = [
    "100",
    "103",
    "105",
    "111",
    "113",
    "117",
    "121",
    "123",
    "200",
    "202",
    "210",
    "212",
    "213",
    "214",
    "219",
    "221",
    "222",
    "228",
    "231",
    "232",
    "233",
    "234",
]
# Rhythm annotations that open an episode excluded under EC57 (until the next rhythm change).
EC57_EXCLUDED_RHYTHMS = ("(VFL", "(VF")


@dataclass
class Record:
    name: str
    fs: float
    signal: np.ndarray
    ref: np.ndarray
    excluded: list[tuple[int, int]] = field(default_factory=list)


def default_data_dir() -> Path:
    mirror = os.environ.get("ECGLATENT_DATA_MIRROR")
    if mirror:
        return Path(mirror) / "mitdb"
    return (REPO / ".." / "shared" / "data" / "mitdb").resolve()


def excluded_episodes(ann: wfdb.Annotation, n: int) -> list[tuple[int, int]]:
    """[start, end) sample intervals of ventricular flutter/fibrillation rhythm episodes."""
    out = []
    start = None
    for sample, aux in zip(ann.sample, ann.aux_note or [""] * len(ann.sample), strict=True):
        aux = (aux or "").strip("\x00").strip()
        if not aux.startswith("("):
            continue
        if start is not None:
            out.append((start, int(sample)))
            start = None
        if aux in EC57_EXCLUDED_RHYTHMS:
            start = int(sample)
    if start is not None:
        out.append((start, n))
    return out


def read_records(data: Path, names: list[str]) -> list[Record]:
    recs = []
    for name in tqdm(names, desc="reading", unit="rec"):
        rec = wfdb.rdrecord(str(data / name), channels=[0])
        ann = wfdb.rdann(str(data / name), "atr")
        sym = np.asarray(ann.symbol)
        ref = np.asarray(ann.sample)[np.isin(sym, list(BEAT_SYMBOLS))].astype(np.int64)
        sig = rec.p_signal[:, 0].astype(np.float64)
        recs.append(Record(name, float(rec.fs), sig, ref, excluded_episodes(ann, len(sig))))
    return recs


def score(ref: np.ndarray, test: np.ndarray, fs: float) -> dict:
    """TP/FP/FN (and matched offsets) of one record; no detections means all misses."""
    window = int(round(TOLERANCE_S * fs))
    if len(test) == 0 or len(ref) == 0:
        return {"tp": 0, "fp": int(len(test)), "fn": int(len(ref)), "offsets": []}
    try:
        c = wp.compare_annotations(ref, test, window)
    except Exception:  # wfdb raises on degenerate inputs; count as all misses
        return {"tp": 0, "fp": int(len(test)), "fn": int(len(ref)), "offsets": []}
    off = (test[c.matched_test_inds] - ref[c.matched_ref_inds]) / fs * 1000.0
    return {"tp": int(c.tp), "fp": int(c.fp), "fn": int(c.fn), "offsets": off.tolist()}


def outside(samples: np.ndarray, intervals: list[tuple[int, int]]) -> np.ndarray:
    keep = np.ones(len(samples), dtype=bool)
    for a, b in intervals:
        keep &= (samples < a) | (samples >= b)
    return samples[keep]


def rates(tp: int, fp: int, fn: int) -> dict:
    se = tp / (tp + fn) if tp + fn else float("nan")
    ppv = tp / (tp + fp) if tp + fp else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    return {"tp": tp, "fp": fp, "fn": fn, "se": se, "ppv": ppv, "f1": f1}


def summarise(per_record: dict[str, dict], names: list[str], key: str = "") -> dict:
    rows = [per_record[n] for n in names if n in per_record]
    tp = sum(r[key + "tp"] for r in rows)
    fp = sum(r[key + "fp"] for r in rows)
    fn = sum(r[key + "fn"] for r in rows)
    return {**rates(tp, fp, fn), "records": len(rows)}


def run_variant(recs: list[Record], detector: str) -> dict[str, dict]:
    """Detect on every record; returns per-variant ('raw', 'refined') per-record results."""
    out: dict[str, dict] = {"raw": {}, "refined": {}}
    for rec in tqdm(recs, desc=detector, unit="rec", leave=False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            raw = detect_raw(rec.signal, rec.fs, detector)
            t1 = time.perf_counter()
            refined = refine_rpeaks(rec.signal, rec.fs, raw)
            t2 = time.perf_counter()
        for variant, peaks, secs in (("raw", raw, t1 - t0), ("refined", refined, t2 - t0)):
            s = score(rec.ref, peaks, rec.fs)
            e = score(outside(rec.ref, rec.excluded), outside(peaks, rec.excluded), rec.fs)
            offs = np.asarray(s.pop("offsets"))
            e.pop("offsets")
            out[variant][rec.name] = {
                **rates(s["tp"], s["fp"], s["fn"]),
                "n_ref": int(len(rec.ref)),
                "n_detected": int(len(peaks)),
                "seconds": secs,
                "median_offset_ms": float(np.median(offs)) if len(offs) else None,
                "median_abs_offset_ms": float(np.median(np.abs(offs))) if len(offs) else None,
                "ec57_tp": e["tp"],
                "ec57_fp": e["fp"],
                "ec57_fn": e["fn"],
            }
    return out


def machine_info() -> dict:
    def ver(pkg: str) -> str | None:
        try:
            return version(pkg)
        except PackageNotFoundError:
            return None

    return {
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "scipy": ver("scipy"),
        "wfdb": ver("wfdb"),
        "neurokit2": ver("neurokit2"),
        "ecglatent": ver("ecglatent"),
    }


def fmt_row(label: str, s: dict, secs: float | None) -> str:
    t = f"{secs:8.2f}" if secs is not None else " " * 8
    return (
        f"{label:<22} {100 * s['se']:7.3f} {100 * s['ppv']:7.3f} {100 * s['f1']:7.3f} "
        f"{s['tp']:7d} {s['fp']:6d} {s['fn']:6d} {t}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=None, help="MIT-BIH folder (PhysioNet layout)")
    ap.add_argument("--detectors", nargs="+", default=list(DETECTORS), choices=list(DETECTORS))
    ap.add_argument("--records", nargs="+", default=None, help="record names (default: all)")
    ap.add_argument("--out", type=Path, default=OUT, help="JSON results file")
    args = ap.parse_args(argv)

    data = args.data or default_data_dir()
    if not data.is_dir():
        ap.error(f"MIT-BIH folder not found: {data} (use --data or ECGLATENT_DATA_MIRROR)")
    names = args.records or sorted(p.stem for p in data.glob("*.hea"))
    t0 = time.perf_counter()
    recs = read_records(data, names)
    read_s = time.perf_counter() - t0
    names = [r.name for r in recs]
    groups = {
        "all": names,
        "DS1": [n for n in names if n in DS1],
        "DS2": [n for n in names if n in DS2],
    }

    results: dict[str, dict] = {}
    for det in tqdm(args.detectors, desc="detectors", unit="det"):
        per = run_variant(recs, det)
        variants = ("refined",) if det == "ecglatent" else ("raw", "refined")
        for variant in variants:
            label = det if det == "ecglatent" else f"{det} ({variant})"
            pr = per[variant]
            results[label] = {
                "detector": det,
                "variant": variant,
                "seconds_total": float(sum(r["seconds"] for r in pr.values())),
                "overall": {g: summarise(pr, ns) for g, ns in groups.items()},
                "ec57_overall": {g: summarise(pr, ns, "ec57_") for g, ns in groups.items()},
                "per_record": pr,
            }

    header = f"{'detector':<22} {'Se %':>7} {'PPV %':>7} {'F1 %':>7} {'TP':>7} {'FP':>6} {'FN':>6} {'seconds':>8}"
    n_ref = sum(len(r.ref) for r in recs)
    print(
        f"\nMIT-BIH, {len(recs)} records, channel 0, {n_ref} reference beats, "
        f"{int(TOLERANCE_S * 1000)} ms window; records read in {read_s:.1f} s (not timed below)"
    )
    print(header)
    for label, r in results.items():
        print(fmt_row(label, r["overall"]["all"], r["seconds_total"]))
    if "ecglatent" in results:
        print("\necglatent by split (DS1 = tuning records, DS2 = held out):")
        print(header)
        for g in ("DS1", "DS2"):
            if results["ecglatent"]["overall"][g]["records"]:
                print(fmt_row(f"ecglatent {g}", results["ecglatent"]["overall"][g], None))
    print("\nSecondary (EC57 convention: ventricular flutter/fibrillation episodes excluded):")
    print(header)
    for label, r in results.items():
        print(fmt_row(label, r["ec57_overall"]["all"], None))

    payload = {
        "benchmark": "R-peak detection vs MIT-BIH reference beat annotations",
        "command": " ".join(
            [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]
        ),
        "data": str(data),
        "channel": 0,
        "tolerance_s": TOLERANCE_S,
        "beat_symbols": "".join(sorted(BEAT_SYMBOLS)),
        "ec57_excluded_rhythms": list(EC57_EXCLUDED_RHYTHMS),
        "records": names,
        "n_reference_beats": n_ref,
        "read_seconds": read_s,
        "splits": {"DS1": DS1, "DS2": DS2},
        "machine": machine_info(),
        "detectors": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1, allow_nan=True) + "\n")
    print(f"\nwrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

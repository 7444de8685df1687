"""Training throughput of the β-VAE and SiliconNet on this CPU: the old code path against the new.

For each model, samples/s of one training step (forward + backward + AdamW, gradient clipping
for the β-VAE), FLOP per sample (``torch.utils.flop_counter``, forward + backward), achieved
GFLOP/s, and a 2048² fp32 matmul measured in the same run as the machine's limit. Then one real
epoch with validation of each DVC training stage on the real data, old and new. The old code
is the frozen pre-change copy in ``benchmarks/_legacy/``.

Step timings are the mean of the fastest quarter of the steps (robust to other jobs on the
machine), with the median alongside; old and new alternate round by round.

    python benchmarks/training_throughput.py [--threads 0] [--precision auto] [--quick] [--out PATH]

Rows marked bf16 run SiliconNet's embedding under ``siliconet.precision`` (auto = bf16 where
the CPU has native bf16): a change of arithmetic, not the same math, so they sit beside the
float32 rows rather than replacing them.

writes benchmarks/results/training_throughput.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, mirror_dir, write_result  # noqa: E402
from _legacy import siliconet as old_sil  # noqa: E402
from _legacy import simsiam as old_simsiam  # noqa: E402
from _legacy import small_vae as old_vae  # noqa: E402
from _legacy import trainer as old_trainer  # noqa: E402

from ecglatent.models import siliconet as new_sil  # noqa: E402
from ecglatent.models import small_vae as new_vae  # noqa: E402
from ecglatent.training import simsiam as new_simsiam  # noqa: E402
from ecglatent.training import trainer as new_trainer  # noqa: E402
from ecglatent.training.device import set_threads  # noqa: E402
from ecglatent.training.losses import vae_loss  # noqa: E402
from ecglatent.training.optim import make_adamw  # noqa: E402
from ecglatent.training.precision import embeddings_in, resolve_precision  # noqa: E402


def say(*a) -> None:
    print(*a, flush=True)


def matmul_gflops(n: int = 2048, reps: int = 10, dtype: torch.dtype = torch.float32) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


# ------------------------------------------------------------------------------ training steps


def adamw(mod, params, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """The optimiser of ``mod``'s code path: the current (fused) one, or the legacy loop."""
    make = make_adamw if mod in (new_vae, new_sil) else torch.optim.AdamW
    return make(params, lr=lr, weight_decay=weight_decay)


def vae_step(mod, leads: int, samples: int, batch: int):
    torch.manual_seed(0)
    model = mod.build_small_vae(leads, samples, 2, dropout=0.1).train()
    opt = adamw(mod, model.parameters(), 1e-3, 1e-4)
    x = torch.randn(batch, leads, samples)

    def step():
        terms = vae_loss(model(x), x, beta=4.0, gamma=0.0)
        opt.zero_grad(set_to_none=True)
        terms.total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return step, model, (x,)


def classifier_step(mod, batch: int, precision: str = "fp32"):
    torch.manual_seed(0)
    model = mod.BeatClassifier().train()
    opt = adamw(mod, model.parameters(), 1e-3, 1e-2)
    x = torch.randn(batch, 1, new_sil.BEAT_SAMPLES)
    y = torch.randint(0, 2, (batch,))

    def step():
        with embeddings_in(model, precision):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, model, (x,)


def simsiam_step(mod, batch: int, precision: str = "fp32"):
    torch.manual_seed(0)
    model = mod.SimSiam().train()
    opt = adamw(mod, model.parameters(), 1e-3, 1e-2)
    x1, x2 = torch.randn(batch, 1, 301), torch.randn(batch, 1, 301)

    def step():
        with embeddings_in(model, precision):
            loss = new_simsiam.simsiam_loss(*model(x1, x2))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, model, (x1, x2)


def with_threads(fn, n: int | None):
    """``fn`` run with ``n`` intra-op threads (0 = one per core), as a pipeline stage sets them;
    ``fn`` itself for None."""
    if n is None:
        return fn

    def run():
        before = torch.get_num_threads()
        set_threads(n)
        try:
            fn()
        finally:
            torch.set_num_threads(before)

    return run


def flop_per_sample(model, inputs, loss_fn, batch: int) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        loss_fn(model, inputs).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch


def time_steps(steps: dict[str, callable], n: int) -> dict[str, dict[str, float]]:
    """Per-step seconds, old and new alternating; the fastest quarter's mean and the median."""
    for fn in steps.values():
        fn()
        fn()
    times = {k: [] for k in steps}
    for _ in range(n):
        for k, fn in steps.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    out = {}
    for k, ts in times.items():
        ts = sorted(ts)
        out[k] = {"best_quarter_s": float(np.mean(ts[: max(1, len(ts) // 4)])),
                  "median_s": float(np.median(ts))}  # fmt: skip
    return out


def bench_steps(n_steps: int, limits: dict[str, float], precision: str) -> list[dict]:
    def vae_loss_fn(m, inp):
        return vae_loss(m(inp[0]), inp[0], beta=4.0, gamma=0.0).total

    def clf_loss_fn(m, inp):
        return m(inp[0]).sum()

    def sim_loss_fn(m, inp):
        return new_simsiam.simsiam_loss(*m(*inp))

    # (name, batch, make, modules, loss, threads old/new). None keeps the process's setting;
    # the "pipeline" rows are SiliconNet as the pipeline runs it: the old default trained with
    # one thread (siliconet.threads: 1), the new one with one per core; batch 32 as in
    # params.yaml. The make functions take the path's precision (the old path is float32).
    same = (None, None)
    bf = f" [new: {precision}]"
    cases = [
        ("small β-VAE 12×400 (PTB-XL), L=2", 32,
         lambda mod: vae_step(mod, 12, 400, 32), (old_vae, new_vae), vae_loss_fn, same),
        ("small β-VAE 2×288 (MIT-BIH), L=2", 32,
         lambda mod: vae_step(mod, 2, 288, 32), (old_vae, new_vae), vae_loss_fn, same),
        ("small β-VAE 2×288 (MIT-BIH), L=2", 128,
         lambda mod: vae_step(mod, 2, 288, 128), (old_vae, new_vae), vae_loss_fn, same),
        ("SiliconNet CNN 1×301", 256,
         lambda mod: classifier_step(mod, 256), (old_sil, new_sil), clf_loss_fn, same),
        ("SiliconNet CNN 1×301 (downstream batch)", 128,
         lambda mod: classifier_step(mod, 128), (old_sil, new_sil), clf_loss_fn, same),
        ("SimSiam step, two views", 64,
         lambda mod: simsiam_step(mod, 64), (old_sil, new_sil), sim_loss_fn, same),
        ("SiliconNet CNN 1×301 (pipeline: batch 32, old 1 thread, new all cores)", 32,
         lambda mod: classifier_step(mod, 32), (old_sil, new_sil), clf_loss_fn, (1, 0)),
    ]  # fmt: skip
    if precision != "fp32":
        prec = {old_sil: "fp32", new_sil: precision}
        cases += [
            ("SiliconNet CNN 1×301 (downstream batch)" + bf, 128,
             lambda mod: classifier_step(mod, 128, prec[mod]), (old_sil, new_sil), clf_loss_fn,
             same),
            ("SimSiam step, two views" + bf, 64,
             lambda mod: simsiam_step(mod, 64, prec[mod]), (old_sil, new_sil), sim_loss_fn, same),
            ("SiliconNet CNN 1×301 (pipeline: batch 32, old 1 thread, new all cores)" + bf, 32,
             lambda mod: classifier_step(mod, 32, prec[mod]), (old_sil, new_sil), clf_loss_fn,
             (1, 0)),
        ]  # fmt: skip
    rows = []
    for name, batch, make, (old_mod, new_mod), loss_fn, (old_th, new_th) in cases:
        say(f"[step] {name}, batch {batch} ...")
        old_fn, old_model, inputs = make(old_mod)
        new_fn, new_model, _ = make(new_mod)
        flops = flop_per_sample(new_model, inputs, loss_fn, batch)
        t = time_steps({"old": with_threads(old_fn, old_th), "new": with_threads(new_fn, new_th)},
                       n_steps)  # fmt: skip
        row = {"model": name, "batch": batch, "mflop_per_sample": flops / 1e6}
        rows.append(rate_row(row, t, batch, flops, limits, precision if bf in name else "fp32"))
    return rows


def rate_row(row: dict, t: dict, batch: int, flops: float, limits: dict[str, float],
             new_precision: str = "fp32") -> dict:  # fmt: skip
    """``row`` with samples/s (fastest quarter, median), GFLOP/s and share of the matmul figure
    of the old and new path from :func:`time_steps`' timings, and their ratio; printed. The
    old path is float32; the new one's share is of the matmul in its own precision."""
    row["new_precision"] = new_precision
    for k, prec in (("old", "fp32"), ("new", new_precision)):
        sps = batch / t[k]["best_quarter_s"]
        row[f"{k}_samples_per_s"] = round(sps, 1)
        row[f"{k}_samples_per_s_median"] = round(batch / t[k]["median_s"], 1)
        row[f"{k}_gflops"] = round(sps * flops / 1e9, 1)
        row[f"{k}_share_of_matmul"] = round(sps * flops / 1e9 / limits[prec], 3)
    row["speedup"] = round(row["new_samples_per_s"] / row["old_samples_per_s"], 2)
    say(f"    old {row['old_samples_per_s']:.0f}/s, new {row['new_samples_per_s']:.0f}/s "
        f"({row['speedup']}×), {flops / 1e6:.1f} MFLOP/sample, "
        f"new {row['new_gflops']} GFLOP/s = {row['new_share_of_matmul']:.0%} of the "
        f"{new_precision} matmul")  # fmt: skip
    return row


def bench_scoring(n_rounds: int, limits: dict[str, float], precision: str) -> list[dict]:
    """Eval-mode scoring (validation, siliconet-evaluate, serving): the module as trained
    (old) against its BatchNorm-folded inference copy (new), batch 2048; then the folded copy
    at ``precision`` against the old module."""
    say("[scoring] SiliconNet classifier, eval mode, batch 2048 ...")
    torch.manual_seed(0)
    old_model = old_sil.BeatClassifier().eval()
    new_model = new_sil.BeatClassifier()
    new_model.load_state_dict(old_model.state_dict())
    x = torch.randn(2048, 1, new_sil.BEAT_SAMPLES)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        old_model(x[:64])
    flops = counter.get_total_flops() / 64

    def score(model):
        def run():
            with torch.no_grad():
                model(x)

        return run

    def folded(prec: str):
        def run():  # the copy is made per call, as validation and predict_proba make it
            with embeddings_in(new_model, prec):
                score(new_sil.inference_copy(new_model))()

        return run

    rows = []
    for prec in ["fp32"] + ([precision] if precision != "fp32" else []):
        t = time_steps({"old": score(old_model), "new": folded(prec)}, n_rounds)
        name = "SiliconNet classifier scoring (eval, batch 2048)"
        row = {"model": name + (f" [new: {prec}]" if prec != "fp32" else ""), "batch": 2048,
               "mflop_per_sample_forward": flops / 1e6}  # fmt: skip
        rows.append(rate_row(row, t, 2048, flops, limits, prec))
    return rows


# ------------------------------------------------------------------------ end-to-end epochs


def mitdb_ds1(root: Path, quick: bool):
    from ecglatent.datasets.single_lead import mitdb_nv_beats, split_ds1
    from ecglatent.sources import mitdb

    recs = [r for r in mitdb.DS1 if r in set(mitdb.list_records(root))]
    recs = recs[:2] if quick else recs
    x, table = mitdb_nv_beats(root, recs, "MLII", fs=250.0, before_s=1.0, after_s=0.2,
                              band=(0.5, 60.0))  # fmt: skip
    y = table["label"].to_numpy(np.int64)
    tr, va = split_ds1(y, 0.5, 42, None)
    mean, std = float(x[tr].mean()), float(x[tr].std())
    x = ((x - mean) / std).astype(np.float32)[:, None, :]
    return x[tr], y[tr], x[va], y[va]


def vae_data(root: Path, quick: bool):
    """PTB-XL median beats (12×400) and MIT-BIH beats (2×288), via the beats stage's workers."""
    from ecglatent.config import load_params
    from ecglatent.pipeline import beats as bp
    from ecglatent.sources import mitdb

    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    cfg = params.preprocess
    import pandas as pd

    db = pd.read_csv(root / "ptb-xl" / "ptbxl_database.csv")
    db = db.head(30 if quick else 500)
    med = []
    for row in db.itertuples():
        path = str(root / "ptb-xl" / row.filename_hr)
        r = bp._ptbxl_one((row.ecg_id, path, f"ptb-xl/{row.ecg_id}", cfg, 500))
        if "median" in r:
            med.append(r["median"])
    ptb = np.stack(med).astype(np.float32)
    recs = [r for r in mitdb.DS1 if r in set(mitdb.list_records(root / "mitdb"))][
        : 2 if quick else 8
    ]
    wins, labels = [], []
    for rec in recs:
        r = bp._mitdb_one((rec, str(root / "mitdb" / rec), cfg, 360))
        if "windows" in r:
            wins.append(r["windows"])
            labels.append((r["table"]["aami"] == "V").to_numpy(np.float32))
    mit = np.concatenate(wins).astype(np.float32)
    return ptb, mit, np.concatenate(labels)


def _norm(x: np.ndarray) -> np.ndarray:
    return ((x - x.mean()) / x.std()).astype(np.float32)


def vae_epoch(tr_mod, vae_mod, x: np.ndarray, y: np.ndarray, phase: str, items: int,
              val_items: int, tmp: Path) -> float:  # fmt: skip
    n_val = min(val_items or len(x) // 5, len(x) // 5)
    rr = np.zeros((len(x), 2), np.float32)
    val = tr_mod.TensorSet.from_numpy(x[:n_val], rr[:n_val], y[:n_val], torch.device("cpu"))
    train = tr_mod.TensorSet.from_numpy(x[n_val:], rr[n_val:], y[n_val:], torch.device("cpu"))
    torch.manual_seed(0)
    model = vae_mod.build_small_vae(x.shape[1], x.shape[2], 2,
                                    latent_pred=None if phase == "pretrain" else 2, dropout=0.1)  # fmt: skip
    spec = tr_mod.PhaseSpec(phase=phase, lr=1e-3, max_epochs=1, beta=4.0, gamma=5000.0,
                            batch_size=32, max_train_items=items, balanced=phase != "pretrain")  # fmt: skip
    ckpt = tmp / f"{phase}-{id(tr_mod)}.pt"
    ckpt.unlink(missing_ok=True)
    t = time.perf_counter()
    tr_mod.fit_phase(model, train, val, spec, ckpt, seed=0, progress=False)
    n = items or len(train)
    return n / (time.perf_counter() - t)


def bench_epochs(quick: bool, threads: int, precision: str) -> list[dict]:
    import tempfile

    root = mirror_dir()
    rows = []
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        say("[epoch] building PTB-XL and MIT-BIH β-VAE beats ...")
        ptb, mit, mit_y = vae_data(root, quick)
        ptb_y = (np.arange(len(ptb)) % 2).astype(np.float32)  # labels only steer the sampler
        cases = [
            ("vae pretrain ptbxl", _norm(ptb), np.full(len(ptb), np.nan, np.float32),
             "pretrain", 0, 0),
            ("vae pretrain mitdb", _norm(mit), np.full(len(mit), np.nan, np.float32), "pretrain",
             300 if quick else 4000, 150 if quick else 2000),
            ("vae finetune ptbxl", _norm(ptb), ptb_y, "finetune", 0, 0),
            ("vae finetune mitdb", _norm(mit), mit_y, "finetune", 300 if quick else 4000,
             150 if quick else 2000),
        ]  # fmt: skip
        for name, x, y, phase, items, val_items in cases:
            r = {"stage": name, "n_train": items or int(len(x) - min(len(x) // 5, len(x)))}
            for k, (tm, vm) in {
                "old": (old_trainer, old_vae),
                "new": (new_trainer, new_vae),
            }.items():
                r[f"{k}_samples_per_s"] = round(
                    vae_epoch(tm, vm, x, y, phase, items, val_items, tmp), 1
                )
            r["speedup"] = round(r["new_samples_per_s"] / r["old_samples_per_s"], 2)
            say(f"    {name}: old {r['old_samples_per_s']}/s, new {r['new_samples_per_s']}/s")
            rows.append(r)

    say("[epoch] SimSiam pretrain on PTB-XL 12-lead beats ...")
    import pandas as pd

    from ecglatent.datasets.single_lead import ptbxl_multilead_beats

    ids = pd.read_csv(root / "ptb-xl" / "ptbxl_database.csv")["ecg_id"].head(20 if quick else 300)
    xb, _ = ptbxl_multilead_beats(root / "ptb-xl", list(ids), rate=500, fs=250.0, before_s=1.0,
                                  after_s=0.2, band=(0.5, 60.0))  # fmt: skip
    xb = _norm(xb)
    n_tr = int(len(xb) * 0.8)
    # at the benchmark's threads, then as the pipeline runs it (old default 1 thread, new all)
    settings = [("", (threads, threads), "fp32"),
                (", pipeline threads: old 1, new all cores", (1, 0), "fp32")]  # fmt: skip
    if precision != "fp32":
        settings.append((f", pipeline threads and precision: old 1 thread, new all cores, "
                         f"{precision}", (1, 0), precision))  # fmt: skip
    for suffix, ths, prec in settings:
        r = {"stage": f"siliconet pretrain (SimSiam, batch 64){suffix}", "n_train": n_tr}
        for k, tm, mm, th in (("old", old_simsiam, old_sil, ths[0]),
                              ("new", new_simsiam, new_sil, ths[1])):  # fmt: skip
            set_threads(th)
            torch.manual_seed(0)
            kw = {"precision": prec} if k == "new" else {}
            t = time.perf_counter()
            tm.pretrain_simsiam(mm.SimSiam(), xb[:n_tr], xb[n_tr:], batch_size=64, max_epochs=1,
                                progress=False, **kw)  # fmt: skip
            r[f"{k}_samples_per_s"] = round(n_tr / (time.perf_counter() - t), 1)
        set_threads(threads)
        r["speedup"] = round(r["new_samples_per_s"] / r["old_samples_per_s"], 2)
        say(f"    {r['stage']}: old {r['old_samples_per_s']}/s, new {r['new_samples_per_s']}/s")
        rows.append(r)

    say("[epoch] SiliconNet downstream, randinit, all DS1 (train + DS1 validation) ...")
    xtr, ytr, xva, yva = mitdb_ds1(root / "mitdb", quick)
    # The default pipeline's downstream model: 2,000 DS1 training beats, 600 validation beats,
    # batch 32, with the old (1 thread) and new (all cores) thread setting.
    rng = np.random.default_rng(0)
    tr_i = rng.choice(len(xtr), min(2000, len(xtr)), replace=False)
    va_i = rng.choice(len(xva), min(600, len(xva)), replace=False)
    if yva[va_i].sum() == 0:  # validation F1 needs a V beat
        va_i[0] = int(np.flatnonzero(yva)[0])
    every = (np.arange(len(xtr)), np.arange(len(xva)))
    default = ("siliconet downstream randinit, default size (2000 train / 600 val, batch 32), "
               "pipeline threads: old 1, new all cores")
    cases = [
        ("siliconet downstream randinit, batch 128, train + DS1 validation", every, 128,
         (threads, threads), "fp32"),
        ("siliconet downstream randinit, batch 32, train + DS1 validation", every, 32,
         (threads, threads), "fp32"),
        (default, (tr_i, va_i), 32, (1, 0), "fp32"),
    ]  # fmt: skip
    if precision != "fp32":
        cases += [
            (f"siliconet downstream randinit, batch 128, train + DS1 validation [new: {precision}]",
             every, 128, (threads, threads), precision),
            (f"{default} [new: {precision}]", (tr_i, va_i), 32, (1, 0), precision),
        ]  # fmt: skip
    for name, (ti, vi), batch, ths, prec in cases:
        data = (xtr[ti], ytr[ti], xva[vi], yva[vi])
        r = {"stage": name, "n_train": len(ti), "n_val": len(vi)}
        for k, tm, th in (("old", old_simsiam, ths[0]), ("new", new_simsiam, ths[1])):
            set_threads(th)
            kw = {"precision": prec} if k == "new" else {}
            t = time.perf_counter()
            tm.train_classifier("randinit", *data, max_epochs=1, batch_size=batch,
                                progress=False, **kw)  # fmt: skip
            r[f"{k}_beats_per_s"] = round(len(ti) / (time.perf_counter() - t), 1)
        set_threads(threads)
        r["speedup"] = round(r["new_beats_per_s"] / r["old_beats_per_s"], 2)
        say(f"    {name}: old {r['old_beats_per_s']} beats/s, new {r['new_beats_per_s']}")
        rows.append(r)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=0, help="0 = one per core")
    ap.add_argument("--steps", type=int, default=24, help="timed steps per model and path")
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                    help="SiliconNet's embedding in the extra [new: bf16] rows (auto as in "
                         "params.yaml: bf16 where native; fp32 adds no rows)")  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="few steps, small data (a smoke run)")
    ap.add_argument("--no-epochs", action="store_true", help="training steps only")
    ap.add_argument("--no-steps", action="store_true", help="end-to-end epochs only")
    ap.add_argument("--out", type=Path, default=RESULTS / "training_throughput.json",
                    help="result file (a smoke run should not overwrite the real figures)")
    args = ap.parse_args()
    set_threads(args.threads)
    n_steps = 2 if args.quick else args.steps
    precision = resolve_precision(args.precision, "cpu")
    say(f"threads {torch.get_num_threads()}, torch {torch.__version__}, SiliconNet {precision}")
    matmul = matmul_gflops()
    say(f"[matmul] 2048² fp32: {matmul:.0f} GFLOP/s")
    limits = {"fp32": matmul}
    if precision == "bf16":
        limits["bf16"] = matmul_gflops(dtype=torch.bfloat16)
        say(f"[matmul] 2048² bf16: {limits['bf16']:.0f} GFLOP/s")
    steps = [] if args.no_steps else bench_steps(n_steps, limits, precision)
    scoring = [] if args.no_steps else bench_scoring(n_steps, limits, precision)
    epochs = [] if args.no_epochs else bench_epochs(args.quick, args.threads, precision)
    matmul_end = matmul_gflops()
    path = write_result(args.out, {
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "siliconet_precision": precision,
        "cpu_native_bf16": resolve_precision("auto", "cpu") == "bf16",
        "load_average": os.getloadavg(), "quick": args.quick, "steps_timed": n_steps,
        "matmul_2048_fp32_gflops": round(max(matmul, matmul_end), 1),
        "matmul_2048_fp32_gflops_start_end": [round(matmul, 1), round(matmul_end, 1)],
        "matmul_2048_bf16_gflops": round(limits["bf16"], 1) if "bf16" in limits else None,
        "training_step": steps, "scoring": scoring, "epoch_end_to_end": epochs,
        "gpu": "none: no GPU was lent to this task; the CUDA path is untested here",
        "note": "step figures: mean of the fastest quarter of steps, old and new alternating "
                "in the same process; old = benchmarks/_legacy (the pre-change code)",
    })  # fmt: skip
    say(f"wrote {path}")


if __name__ == "__main__":
    main()

"""SiliconNet stages (Aublin et al.): beats → SimSiam pretraining → five downstream configs → DS2.

* `siliconet-beats`: MIT-BIH N/V windows (DS1 split 50/50 train/val stratified by class, DS2
  per test lead), PTB-XL 12-lead beats split by patient, INCART when fetched; normalisers.
* `siliconet-pretrain`: SimSiam on PTB-XL beats, the two views being two different leads.
* `siliconet-downstream`: every configuration × seed on DS1, early stopping on validation F1.
* `siliconet-evaluate`: every model on DS2 (MLII and the other channel per lead, INCART per
  lead when present), the report, and the best *validation* model as the registry champion.

Every training run is an MLflow run in ``siliconet.experiment``.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch

from ecglatent.config import Params, SiliconConfig
from ecglatent.datasets.single_lead import (
    BeatSet,
    fit_normaliser,
    mitdb_nv_beats,
    normalise,
    pretrain_split,
    ptbxl_multilead_beats,
    split_ds1,
    stratified_subsample,
)
from ecglatent.datasets.splits import verify_beat_set_records
from ecglatent.errors import EcglatentError
from ecglatent.evaluation.beat_metrics import (
    beat_metrics,
    metrics_row,
    pairwise_differences,
    per_lead_rows,
)
from ecglatent.models.siliconet import (
    BeatClassifier,
    Predictor,
    Projector,
    SimSiam,
    inference_copy,
)
from ecglatent.pipeline import siliconet_report as report
from ecglatent.pipeline.siliconet_data import (
    SiliconPaths,
    ds2_name,
    load_beat_set,
    load_set,
    read_json,
    save_set,
    stratified_cap,
    write_json,
)
from ecglatent.sources import cinc2021, incart, mitdb
from ecglatent.tracking import registry, runs
from ecglatent.training.device import pick_device, set_threads
from ecglatent.training.precision import embeddings_in, resolve_precision
from ecglatent.training.simsiam import (
    CONFIGS,
    _batched,
    predict_proba,
    pretrain_simsiam,
    train_classifier,
)

log = logging.getLogger(__name__)

EXAMPLE_SECONDS = 10.0
CINC_GROUP_BASE = 10**9  # PTB-XL patient ids stay below it
SCORE_NAME = "val_f1"  # the registry tag that holds a beat classifier's score


# ====================================================================================== beats


def run_siliconet_beats(params: Params) -> dict[str, Any]:
    """Cut every beat set from ``data.raw_dir`` into ``siliconet.out_dir``; returns the summary."""
    cfg = params.siliconet
    paths = SiliconPaths.of(params)
    raw = Path(params.data.raw_dir)
    if paths.data.exists():
        shutil.rmtree(paths.data)  # a stale DS2 lead or INCART set must not survive a re-run
    kw = _window_kwargs(cfg)
    rejects: list[dict[str, str]] = []
    summary: dict[str, Any] = {}

    train_records, test_records = _mitdb_records(raw / "mitdb")
    x, table = mitdb_nv_beats(raw / "mitdb", train_records, cfg.train_lead, **kw)
    rejects += _rejects("mitdb", table)
    if not len(x) or not (table["label"] == 1).any():
        raise EcglatentError(f"no usable DS1 beats with V in {raw / 'mitdb'}: see rejects")
    y = table["label"].to_numpy(np.int64)
    groups = table["record"].to_numpy() if cfg.split_by_record else None
    tr, va = split_ds1(y, cfg.ds1_val_fraction, params.seed, groups)
    mean, std = fit_normaliser(x[tr])
    save_set(paths.mitdb / "ds1_train", x[tr], table.iloc[tr])
    save_set(paths.mitdb / "ds1_val", x[va], table.iloc[va])
    summary["ds1_train"] = _counts(table.iloc[tr])
    summary["ds1_val"] = _counts(table.iloc[va])
    for lead in cfg.test_leads:
        xt, tt = mitdb_nv_beats(raw / "mitdb", test_records, lead, **kw)
        rejects += _rejects("mitdb", tt, f"DS2 {lead}: ")
        save_set(paths.mitdb / ds2_name(lead), xt, tt)
        summary[ds2_name(lead)] = _counts(tt)
        if lead != cfg.train_lead and len(tt):
            summary[ds2_name(lead)]["leads"] = tt.groupby("lead")["record"].nunique().to_dict()
    write_json(paths.example_record, _example_record(raw / "mitdb", test_records))
    _verify_written_sets(paths, cfg.test_leads)

    pmean, pstd = _pretrain_beats(params, paths, rejects, summary)
    if (raw / incart.DATABASE).is_dir():
        xi, ti = incart.incart_nv_beats(raw / incart.DATABASE, **kw)
        rejects += _rejects(incart.DATABASE, ti)
        # float16 halves ~2.5 GB of 12-lead windows; its ~1 µV steps are below ADC resolution
        save_set(paths.incart / "beats", xi.astype(np.float16), ti)
        summary["incartdb"] = _counts(ti)

    write_json(paths.normaliser, {
        "mitdb": {"mean": mean, "std": std, "fitted_on": f"DS1 train, lead {cfg.train_lead}",
                  "n_beats": len(tr)},
        "pretrain": {"mean": pmean, "std": pstd, "fitted_on": "pretraining train part "
                     f"({', '.join(cfg.pretrain_databases)}), all 12 leads"},
        "fs": cfg.fs, "before_s": cfg.before_s, "after_s": cfg.after_s,
        "bandpass_hz": list(cfg.bandpass_hz),
    })  # fmt: skip
    pd.DataFrame(rejects, columns=["database", "record", "reason"]).to_csv(
        paths.rejects, index=False
    )
    summary["n_rejects"] = len(rejects)
    write_json(paths.summary, summary)
    log.info("siliconet-beats: %s", {k: v.get("n", v) if isinstance(v, dict) else v
                                    for k, v in summary.items()})  # fmt: skip
    return summary


def _window_kwargs(cfg: SiliconConfig) -> dict[str, Any]:
    return {"fs": cfg.fs, "before_s": cfg.before_s, "after_s": cfg.after_s,
            "band": tuple(cfg.bandpass_hz)}  # fmt: skip


def _verify_written_sets(paths: SiliconPaths, leads) -> None:
    """Leakage check on the beat files as written: DS1 sets from DS1 records only, DS2 sets from
    DS2 only (raises LeakageError, which no `python -O` strips)."""
    def records(stem: Path) -> set[str]:
        csv = stem.with_name(stem.name + ".csv")
        return set(pd.read_csv(csv, dtype={"record": str})["record"]) if csv.exists() else set()

    dev = records(paths.mitdb / "ds1_train") | records(paths.mitdb / "ds1_val")
    test = set().union(*[records(paths.mitdb / ds2_name(lead)) for lead in leads])
    verify_beat_set_records(dev, test, mitdb.DS1, mitdb.DS2)


def _mitdb_records(root: Path) -> tuple[list[str], list[str]]:
    if not root.is_dir():
        raise EcglatentError(
            f"{root} not found: run `ecglatent fetch` with mitdb in data.databases"
        )
    available = set(mitdb.list_records(root))
    train = [r for r in mitdb.DS1 if r in available]
    test = [r for r in mitdb.DS2 if r in available]
    missing = sorted(set(mitdb.DS1 + mitdb.DS2) - available)
    if missing:
        log.warning("mitdb: %d DS1/DS2 records not fetched (data.subset?): %s", len(missing),
                    " ".join(missing))  # fmt: skip
    if not train or not test:
        raise EcglatentError(f"{root} needs DS1 and DS2 records; has {sorted(available)}")
    return train, test


def _pretrain_beats(
    params: Params, paths: SiliconPaths, rejects: list[dict[str, str]], summary: dict
) -> tuple[float, float]:
    """12-lead beats of every ``siliconet.pretrain_databases`` corpus, split 80/20 by patient
    (by record where a corpus has no patient ids); returns the training part's mean and std."""
    cfg = params.siliconet
    raw = Path(params.data.raw_dir)
    kw = {**_window_kwargs(cfg), "detector": cfg.rpeak_detector}
    # float16 halves a Challenge-sized corpus (~88k records); its ~1 µV steps are below ADC
    # resolution. PTB-XL alone stays float32.
    dtype = np.float16 if cinc2021.DATABASE in cfg.pretrain_databases else np.float32
    xs: list[np.ndarray] = []
    tables: list[pd.DataFrame] = []
    for db in cfg.pretrain_databases:
        root = raw / db
        if not root.is_dir():
            raise EcglatentError(
                f"{root} not found: siliconet.pretrain_databases lists {db}; add it to "
                f"data.databases and run `ecglatent fetch`"
            )
        if db == "ptb-xl":
            x, t = ptbxl_multilead_beats(root, None, rate=params.data.ptbxl_rate, **kw,
                                         max_beats_per_record=cfg.pretrain_beats_per_record)  # fmt: skip
            table = pd.DataFrame({"database": db, "record": t["ecg_id"].astype(str),
                                  "group": t["patient_id"].astype(np.int64),
                                  "sample": t["sample"]})  # fmt: skip
        else:
            # PTB-XL recordings reappear in the Challenge; keep one copy of each
            skip = ["ptb-xl"] if "ptb-xl" in cfg.pretrain_databases else []
            x, t = cinc2021.cinc_multilead_beats(root, None, **kw, skip_sources=skip,
                                                 max_beats_per_record=cfg.pretrain_beats_per_record)  # fmt: skip
            # no patient ids: each record is its own group, numbered above any PTB-XL patient
            table = pd.DataFrame({"database": db, "record": t["record"].astype(str),
                                  "group": CINC_GROUP_BASE + pd.factorize(t["record"])[0],
                                  "sample": t["sample"]})  # fmt: skip
        rejects += _rejects(db, t)
        summary[db] = {"n": len(table), "records": int(table["record"].nunique())}
        xs.append(x.astype(dtype, copy=False))
        tables.append(table)
    xb = np.concatenate(xs) if len(xs) > 1 else xs[0]
    tb = pd.concat(tables, ignore_index=True)
    if tb["group"].nunique() < 2:
        raise EcglatentError(
            f"pretraining corpus {list(cfg.pretrain_databases)}: fewer than 2 usable patients "
            f"or records, cannot split for pretraining"
        )
    tr, va = pretrain_split(tb, cfg.pretrain_val_fraction, params.seed, group="group")
    tb["role"] = "train"
    tb.loc[va, "role"] = "val"
    save_set(paths.pretrain_beats, xb, tb)
    summary["pretrain"] = {"databases": list(cfg.pretrain_databases), "n": len(tb),
                           "train": len(tr), "val": len(va)}  # fmt: skip
    return fit_normaliser(xb[tr])


def _rejects(database: str, table: pd.DataFrame, prefix: str = "") -> list[dict[str, str]]:
    return [{"database": database, "record": str(r), "reason": prefix + reason}
            for r, reason in table.attrs.get("rejects", {}).items()]  # fmt: skip


def _counts(table: pd.DataFrame) -> dict[str, Any]:
    n_v = int((table["label"] == 1).sum()) if len(table) else 0
    return {"n": len(table), "N": len(table) - n_v, "V": n_v,
            "records": sorted(set(table["record"].astype(str))) if len(table) else []}  # fmt: skip


def _example_record(root: Path, records: list[str]) -> dict[str, Any]:
    """10 s of the first DS2 record, MLII lead, at its own rate: the served model's example."""
    from ecglatent.sources.records import read_record, select_leads

    rec = select_leads(read_record(root / records[0]), ("MLII",))
    n = int(EXAMPLE_SECONDS * rec.fs)
    return {"signal": np.round(rec.signal[0, :n], 3).tolist(), "fs": rec.fs,
            "leads": list(rec.leads), "record": records[0]}  # fmt: skip


# ================================================================================== pretrain


def build_simsiam(cfg: SiliconConfig) -> SimSiam:
    projector = Projector(hidden_dim=cfg.projector_dim, out_dim=cfg.projector_dim,
                          n_layers=cfg.projector_layers)  # fmt: skip
    return SimSiam(
        projector=projector, predictor=Predictor(cfg.projector_dim, cfg.predictor_hidden)
    )


def run_siliconet_pretrain(params: Params) -> dict[str, float]:
    """SimSiam on PTB-XL beats; writes ``{models_dir}/pretrain/simsiam.pt``."""
    cfg = params.siliconet
    paths = SiliconPaths.of(params)
    set_threads(cfg.threads)
    device = pick_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    x, table = load_set(paths.pretrain_beats)
    norm = read_json(paths.normaliser)["pretrain"]
    tr = np.flatnonzero(table["role"].to_numpy() == "train")
    va = np.flatnonzero(table["role"].to_numpy() == "val")
    cap = cfg.max_pretrain_beats
    val_cap = round(cap * cfg.pretrain_val_fraction / (1 - cfg.pretrain_val_fraction)) if cap else 0
    rng = np.random.default_rng(params.seed)
    tr, va = _cap(tr, cap, rng), _cap(va, val_cap, rng)
    train_x, val_x = (
        normalise(x[tr], norm["mean"], norm["std"]),
        normalise(x[va], norm["mean"], norm["std"]),
    )
    del x
    torch.manual_seed(params.seed)
    model = build_simsiam(cfg)
    pc = cfg.pretrain
    log.info("siliconet-pretrain: %d train / %d val beats (12 leads) on %s, %s", len(tr),
             len(va), device, precision)  # fmt: skip
    runs.configure(params.tracking, cfg.experiment)
    run_params = {"seed": params.seed, "pretrain": asdict(pc), "projector_dim": cfg.projector_dim,
                  "projector_layers": cfg.projector_layers, "predictor_hidden": cfg.predictor_hidden,
                  "n_train": len(tr), "n_val": len(va), "device": str(device),
                  "precision": precision}  # fmt: skip
    with runs.run("siliconet/pretrain", run_params, {"stage": "siliconet_pretrain"}) as active:
        result = pretrain_simsiam(model, train_x, val_x, lr=pc.lr, weight_decay=pc.weight_decay,
                                  batch_size=pc.batch_size, max_epochs=pc.max_epochs,
                                  patience=pc.patience, lr_step_epochs=pc.lr_step_epochs,
                                  lr_gamma=pc.lr_gamma, seed=params.seed, device=device,
                                  on_epoch=runs.epoch_logger("pretrain"),
                                  precision=precision)  # fmt: skip
        mlflow.log_metrics({"pretrain/best_val_loss": result.best_val_loss,
                            "pretrain/best_epoch": result.best_epoch,
                            "pretrain/stopped_early": float(result.stopped_early)})  # fmt: skip
        paths.pretrain.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(result.history).to_csv(paths.pretrain / "history.csv", index=False)
        model.cpu()
        _save(paths.simsiam, {
            "embedding": model.embedding.state_dict(), "simsiam": model.state_dict(),
            "config": run_params, "run_id": active.info.run_id, "history": result.history,
            "best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss,
            "normaliser": norm,
        })  # fmt: skip
        mlflow.log_artifact(str(paths.pretrain / "history.csv"))
    log.info("siliconet-pretrain: best val loss %.4f at epoch %d", result.best_val_loss,
             result.best_epoch)  # fmt: skip
    return {"best_val_loss": result.best_val_loss, "best_epoch": float(result.best_epoch)}


def _cap(idx: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return idx if n <= 0 or n >= len(idx) else np.sort(rng.choice(idx, n, replace=False))


def _save(path: Path, obj: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


# ================================================================================ downstream


def run_siliconet_downstream(params: Params) -> pd.DataFrame:
    """Train every ``siliconet.configs`` × ``siliconet.seeds`` classifier; returns the index."""
    cfg = params.siliconet
    paths = SiliconPaths.of(params)
    unknown = sorted(set(cfg.configs) - set(CONFIGS))
    if unknown:
        raise EcglatentError(f"siliconet.configs: unknown {unknown}; known {sorted(CONFIGS)}")
    set_threads(cfg.threads)
    device = pick_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    norm = read_json(paths.normaliser)["mitdb"]
    train = load_beat_set(paths.mitdb / "ds1_train", norm["mean"], norm["std"])
    val = load_beat_set(paths.mitdb / "ds1_val", norm["mean"], norm["std"])
    _verify_written_sets(paths, cfg.test_leads)
    # One validation subset for every model, so validation F1 (which picks the champion)
    # compares like with like; the training subset changes with the seed.
    val_sub = stratified_subsample(val, cfg.max_val_beats, params.seed)
    embedding, pre_run = None, ""
    if any(CONFIGS[c].pretrained for c in cfg.configs):
        embedding, pre_run = _pretrained_embedding(paths)
    if paths.downstream.exists():
        shutil.rmtree(paths.downstream)
    paths.downstream.mkdir(parents=True)
    runs.configure(params.tracking, cfg.experiment)
    rows = []
    todo = [(c, s) for c in cfg.configs for s in cfg.seeds]
    for k, (config, seed) in enumerate(todo, 1):
        tr_sub = stratified_subsample(train, cfg.max_train_beats, seed)
        log.info("siliconet-downstream [%d/%d] %s seed %d: %d train / %d val beats", k,
                 len(todo), config, seed, len(tr_sub), len(val_sub))  # fmt: skip
        rows.append(_train_one(params, paths, config, seed, tr_sub, val_sub, embedding, pre_run,
                               device, precision))  # fmt: skip
    index = pd.DataFrame(rows)
    index.to_csv(paths.index, index=False)
    return index


def _pretrained_embedding(paths: SiliconPaths):
    from ecglatent.models.siliconet import SiliconEmbedding

    if not paths.simsiam.exists():
        raise EcglatentError(f"{paths.simsiam} not found: run `ecglatent siliconet-pretrain` first")
    saved = torch.load(paths.simsiam, map_location="cpu", weights_only=False)
    embedding = SiliconEmbedding()
    embedding.load_state_dict(saved["embedding"])
    return embedding, str(saved.get("run_id", ""))


def _max_epochs(dc, config: str) -> int:
    """A frozen embedding's epochs only train the linear layer: they may run longer."""
    frozen = not CONFIGS[config].train_embedding
    return dc.frozen_max_epochs if frozen and dc.frozen_max_epochs > 0 else dc.max_epochs


def _train_one(params: Params, paths: SiliconPaths, config: str, seed: int, train: BeatSet,
               val: BeatSet, embedding, pre_run: str, device: torch.device,
               precision: str) -> dict[str, Any]:  # fmt: skip
    cfg = params.siliconet
    dc = cfg.downstream
    run_params = {"config": config, "seed": seed, "table1": asdict(CONFIGS[config]),
                  "downstream": asdict(dc), "n_train": len(train), "n_val": len(val),
                  "n_train_v": int(train.y.sum()), "n_val_v": int(val.y.sum()),
                  "device": str(device), "precision": precision}  # fmt: skip
    tags = {"stage": "siliconet_downstream", "config": config, "seed": str(seed),
            "pretrain_run_id": pre_run}  # fmt: skip
    t0 = time.perf_counter()
    with runs.run(f"siliconet/{config}/seed{seed}", run_params, tags) as active:
        res = train_classifier(config, train.x, train.y, val.x, val.y,
                               pretrained_embedding=embedding, max_epochs=_max_epochs(dc, config),
                               schedule_epochs=dc.schedule_epochs, patience=dc.patience,
                               batch_size=dc.batch_size, weight_decay=dc.weight_decay,
                               weighted_loss=dc.weighted_loss, tune_threshold=dc.tune_threshold,
                               seed=seed, device=device, on_epoch=runs.epoch_logger("downstream"),
                               precision=precision)  # fmt: skip
        p_v = predict_proba(res.model, val.x, precision=precision)[:, 1]
        m = beat_metrics(val.y, (p_v >= res.threshold).astype(np.int64))
        mlflow.log_metrics({"val/f1": m.f1, "val/se": m.se, "val/ppv": m.ppv,
                            "val/best_epoch": res.best_epoch, "val/threshold": res.threshold,
                            "val/stopped_early": float(res.stopped_early)})  # fmt: skip
        report.log_confusions({"DS1 validation": m}, "confusion/val")
        res.model.cpu()
        _save(paths.model(config, seed), {
            "state_dict": res.model.state_dict(), "config": config, "seed": seed,
            "threshold": res.threshold, "val_f1": m.f1, "best_epoch": res.best_epoch,
            "history": res.history, "run_id": active.info.run_id,
            "normaliser": read_json(paths.normaliser)["mitdb"], "window": _window_kwargs(cfg),
            "train_lead": cfg.train_lead, "rpeak_detector": cfg.rpeak_detector,
        })  # fmt: skip
        # wall time goes to MLflow only: in the DVC output it would change every run's hash
        seconds = time.perf_counter() - t0
        mlflow.log_metric("train_seconds", seconds)
    log.info("siliconet-downstream %s seed %d: val F1 %.3f (epoch %d), %.0f s", config, seed,
             m.f1, res.best_epoch, seconds)  # fmt: skip
    return {"config": config, "seed": seed, "val_f1": m.f1, "best_epoch": res.best_epoch,
            "epochs": len(res.history), "threshold": res.threshold, "n_train": len(train),
            "n_val": len(val), "run_id": active.info.run_id,
            "path": paths.model(config, seed).name}  # fmt: skip


# ================================================================================== evaluate


def run_siliconet_evaluate(params: Params) -> dict[str, Any]:
    """Score every downstream model on DS2 (and INCART); report, metrics, champion."""
    cfg = params.siliconet
    paths = SiliconPaths.of(params)
    set_threads(cfg.eval_threads)
    device = pick_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    if not paths.index.exists():
        raise EcglatentError(f"{paths.index} not found: run `ecglatent siliconet-downstream` first")
    index = pd.read_csv(paths.index)
    norm = read_json(paths.normaliser)["mitdb"]
    test_sets = _test_sets(params, paths, norm["mean"], norm["std"])
    runs.configure(params.tracking, cfg.experiment)
    cache: dict[tuple[str, str], torch.Tensor] = {}
    rows: list[dict[str, object]] = []
    for k, entry in enumerate(index.itertuples(index=False), 1):
        t0 = time.perf_counter()
        model, saved = _load_classifier(paths.downstream / entry.path, device)
        model_rows: list[dict[str, object]] = []
        for set_name, (beats, leads) in test_sets.items():
            p_v = _probability_v(model, beats, cache, set_name, saved["config"], precision)
            y_pred = (p_v >= saved["threshold"]).astype(np.int64)
            model_rows += _eval_rows(params, entry.config, entry.seed, set_name, beats.y, y_pred,
                                     leads)  # fmt: skip
        rows += model_rows
        with runs.run(f"siliconet/{entry.config}/seed{entry.seed}", run_id=entry.run_id):
            report.log_test_metrics(model_rows, report.primary_eval(cfg))
        primary = next(r for r in model_rows if r["eval"] == report.primary_eval(cfg))
        log.info("siliconet-evaluate [%d/%d] %s seed %d: DS2 %s F1 %.3f (%.0f s)", k, len(index),
                 entry.config, entry.seed, cfg.train_lead, primary["f1"],
                 time.perf_counter() - t0)  # fmt: skip
    results = pd.DataFrame(rows)
    paths.reports.mkdir(parents=True, exist_ok=True)
    results.to_csv(paths.results, index=False)
    champion = _champion(params, paths, index, results)
    context = report.ReportContext.build(params, paths, index, _set_sizes(test_sets),
                                         f"{device} ({precision})")  # fmt: skip
    v_beats = v_beats_per_lead(test_sets)
    paths.report.write_text(report.markdown(results, index, champion, context)
                            + lead_note(v_beats, cfg.min_v_beats))  # fmt: skip
    metrics = report.metrics_json(results, index, champion, context)
    metrics["v_beats_per_lead"] = v_beats
    metrics["min_v_beats"] = cfg.min_v_beats
    metrics["pairwise"] = {
        f"{r.b}-{r.a}": {"diff": r.diff, "lo": r.lo, "hi": r.hi, "p_wilcoxon": r.p_wilcoxon,
                         "n_seeds": int(r.n_seeds)}
        for r in pairwise_differences(results, report.primary_eval(cfg)).itertuples(index=False)
    }  # fmt: skip
    write_json(paths.metrics, metrics)
    with runs.run("siliconet/evaluate", {"n_models": len(index)}, {"stage": "siliconet_evaluate"}):
        report.log_summary(paths, metrics)
    log.info("siliconet-evaluate: wrote %s and %s", paths.report, paths.metrics)
    return metrics


def v_beats_per_lead(test_sets: dict[str, tuple[BeatSet, np.ndarray | None]]) -> dict[str, int]:
    """V beats per test set and, for multi-lead sets, per lead (e.g. "DS2 V1")."""
    out: dict[str, int] = {}
    for name, (beats, leads) in test_sets.items():
        out[name] = int((beats.y == 1).sum())
        if leads is not None:
            prefix = name.split()[0]
            for lead in sorted(set(leads.tolist())):
                out[f"{prefix} {lead}"] = int((beats.y[leads == lead] == 1).sum())
    return out


def lead_note(v_beats: dict[str, int], min_v_beats: int) -> str:
    """Markdown: how many V beats each test lead holds and which leads got no F1 row."""
    cells = ", ".join(f"{k} {v}" for k, v in v_beats.items())
    few = [k for k, v in v_beats.items() if v < min_v_beats and " " in k
           and not k.endswith(" other")]  # fmt: skip
    text = (f"\n### V beats per test set and lead\n\n{cells}. A lead gets its own F1 row only "
            f"with at least {min_v_beats} V beats (`siliconet.min_v_beats`)")  # fmt: skip
    text += f"; no row for {', '.join(few)}.\n" if few else ".\n"
    return text


def _set_sizes(test_sets: dict[str, tuple[BeatSet, np.ndarray | None]]) -> dict[str, int]:
    return {name: len(beats) for name, (beats, _) in test_sets.items()}


def _test_sets(
    params: Params, paths: SiliconPaths, mean: float, std: float
) -> dict[str, tuple[BeatSet, np.ndarray | None]]:
    """Test beats per set name, at most ~``max_test_beats`` per DS2 set and per INCART lead,
    stratified by lead and class (0 = all).

    Each value holds the beats and, for multi-lead sets, the lead name of each beat.
    """
    cfg = params.siliconet
    cap = cfg.max_test_beats
    sets: dict[str, tuple[BeatSet, np.ndarray | None]] = {}
    for lead in cfg.test_leads:
        beats = load_beat_set(paths.mitdb / ds2_name(lead), mean, std)
        assert not set(beats.table["record"]) - set(mitdb.DS2), "a non-DS2 record in a DS2 set"
        names = beats.table["lead"].astype(str).to_numpy()
        keep = stratified_cap(np.char.add(names.astype(str), beats.y.astype(str)), cap, params.seed)
        beats = beats.subset(keep)
        if not len(beats):
            log.warning("siliconet-evaluate: DS2 %s holds no beat; skipped", lead)
            continue
        sets[f"DS2 {lead}"] = (beats, None if lead == cfg.train_lead else names[keep])
    if (paths.incart / "beats.npy").exists():
        x, table = load_set(paths.incart / "beats")
        leads = list(incart.LEADS)
        # choose the beats before building the (n·12, 1, T) copy: INCART holds ~175k beats
        y_all = np.tile(table["label"].to_numpy(np.int64), len(leads))
        names_all = np.repeat(np.asarray(leads), len(table))
        keep = stratified_cap(
            np.char.add(names_all.astype(str), y_all.astype(str)), cap * len(leads), params.seed
        )
        lead_k, beat_k = np.divmod(keep, len(table))  # per_lead's lead-major order
        singles = normalise(x[beat_k, lead_k].astype(np.float32), mean, std)[:, None, :]
        del x
        lead_table = pd.DataFrame({"record": table["record"].to_numpy()[beat_k],
                                   "lead": names_all[keep], "label": y_all[keep]})  # fmt: skip
        sets["INCART"] = (BeatSet(singles, y_all[keep], lead_table), names_all[keep])
    return sets


def _load_classifier(path: Path, device: torch.device) -> tuple[BeatClassifier, dict[str, Any]]:
    """A saved downstream model, only scored from here on: BatchNorm folded once, at load."""
    if not path.exists():
        raise EcglatentError(f"{path} not found: re-run `ecglatent siliconet-downstream`")
    saved = torch.load(path, map_location="cpu", weights_only=False)
    model = BeatClassifier()
    model.load_state_dict(saved["state_dict"])
    return inference_copy(model.to(device)), saved


def _embedding_key(model: BeatClassifier) -> str:
    h = hashlib.sha1()
    for t in model.embedding.state_dict().values():
        h.update(t.detach().cpu().numpy().tobytes())
    return h.hexdigest()


def _probability_v(model: BeatClassifier, beats: BeatSet, cache: dict, set_name: str,
                   config: str, precision: str) -> np.ndarray:  # fmt: skip
    """P(V) per beat from a folded model (:func:`_load_classifier`), the embedding at
    ``precision``. A frozen pretrained embedding is shared by every seed of its configuration,
    so its features are computed once per test set."""
    cfg = CONFIGS[config]
    if cfg.train_embedding or not cfg.pretrained:
        return predict_proba(model, beats.x, fold=False, precision=precision)[:, 1]
    key = (_embedding_key(model), set_name)
    with torch.no_grad(), embeddings_in(model, precision):
        if key not in cache:
            x = torch.as_tensor(beats.x, device=next(model.parameters()).device)
            cache[key] = _batched(model.embedding, x)
        return torch.softmax(model.classifier(cache[key]), dim=1)[:, 1].cpu().numpy()


def _eval_rows(params: Params, config: str, seed: int, set_name: str, y_true: np.ndarray,
               y_pred: np.ndarray, leads: np.ndarray | None) -> list[dict[str, object]]:  # fmt: skip
    if leads is None:
        return [metrics_row(config, seed, set_name, beat_metrics(y_true, y_pred))]
    prefix = set_name.split()[0]  # "DS2 other" → per-lead rows "DS2 V1", ...; "INCART" → "INCART I"
    return per_lead_rows(config, seed, y_true, y_pred, leads, prefix=prefix,
                         min_v_beats=params.siliconet.min_v_beats)  # fmt: skip


# ================================================================================= champion


def _champion(params: Params, paths: SiliconPaths, index: pd.DataFrame,
              results: pd.DataFrame) -> dict[str, Any]:  # fmt: skip
    """Log the best-validation-F1 model as a pyfunc into its run and register it.

    Chosen on DS1 validation F1 only: choosing on DS2 would make its DS2 score a leak.
    """
    cfg = params.siliconet
    best = index.sort_values(["val_f1", "config", "seed"], ascending=[False, True, True]).iloc[0]
    primary = report.primary_eval(cfg)
    ds2 = results[(results.config == best.config) & (results.seed == best.seed)
                  & (results["eval"] == primary)]["f1"]  # fmt: skip
    champ = {"config": str(best.config), "seed": int(best.seed), "val_f1": float(best.val_f1),
             "ds2_f1": float(ds2.iloc[0]) if len(ds2) else float("nan"), "run_id": best.run_id,
             "version": None, "is_champion": None}  # fmt: skip
    saved = torch.load(paths.downstream / best.path, map_location="cpu", weights_only=False)
    with runs.run(f"siliconet/{best.config}/seed{best.seed}", run_id=best.run_id):
        info = _log_pyfunc(params, paths, saved)
        # the logged model (and so its registry version) carries its own scores
        own = results[(results.config == best.config) & (results.seed == best.seed)]
        mlflow.log_metrics({**report.test_metrics(own.to_dict("records")),
                            "val/f1": champ["val_f1"]}, model_id=info.model_id)  # fmt: skip
    champ["model_uri"] = info.model_uri
    if params.tracking.register:
        tags = {"config": champ["config"], "seed": str(champ["seed"]),
                "ds2_f1": f"{champ['ds2_f1']:.6f}", "train_lead": cfg.train_lead}  # fmt: skip
        # DS1 validation F1 picks the champion; DS2 is reported, never used to choose
        version, is_champion = registry.register(
            info.model_uri, cfg.model_name, champ["val_f1"], tags, score_name=SCORE_NAME
        )
        champ.update(version=version, is_champion=is_champion)
    log.info("siliconet-evaluate: %s seed %d has the best validation F1 (%.3f): %s v%s",
             champ["config"], champ["seed"], champ["val_f1"], cfg.model_name, champ["version"])  # fmt: skip
    return champ


def _log_pyfunc(params: Params, paths: SiliconPaths, saved: dict[str, Any]):
    from ecglatent.tracking.beat_pyfunc import (
        BUNDLE,
        BeatClassifierModel,
        requirements,
        save_bundle,
        signature,
    )

    cfg = params.siliconet
    example = read_json(paths.example_record)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = save_bundle(Path(tmp) / "siliconet.pt", saved["state_dict"],
                             mean=saved["normaliser"]["mean"], std=saved["normaliser"]["std"],
                             threshold=saved["threshold"], fs=cfg.fs, before_s=cfg.before_s,
                             after_s=cfg.after_s, bandpass_hz=tuple(cfg.bandpass_hz),
                             rpeak_detector=cfg.rpeak_detector, train_lead=cfg.train_lead,
                             meta={"config": saved["config"], "seed": saved["seed"],
                                   "val_f1": saved["val_f1"]})  # fmt: skip
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=BeatClassifierModel(),
            artifacts={BUNDLE: str(bundle)},
            signature=signature(),
            input_example=pd.DataFrame([{k: example[k] for k in ("signal", "fs", "leads")}]),
            pip_requirements=requirements(),
            # the package travels with the model, so a fresh environment can load it
            code_paths=[str(Path(__file__).resolve().parents[1])],
        )

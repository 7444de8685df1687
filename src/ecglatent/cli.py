"""`ecglatent <command>`: one CLI for DVC stages, MLproject entry points and people."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from ecglatent.errors import EcglatentError


def _fetch(params, args) -> None:
    from ecglatent.pipeline.fetch import run_fetch

    run_fetch(params)


def _beats(params, args) -> None:
    from ecglatent.pipeline.beats import run_beats

    run_beats(params)


def _split(params, args) -> None:
    from ecglatent.pipeline.split import run_split

    run_split(params)


def _datasets(params, args) -> list[str]:
    return [args.dataset] if args.dataset else list(params.vae.datasets)


def _pretrain(params, args) -> None:
    from ecglatent.pipeline.vae_train import run_pretrain

    for ds in _datasets(params, args):
        run_pretrain(params, ds)


def _finetune(params, args) -> None:
    from ecglatent.pipeline.vae_train import run_finetune

    for ds in _datasets(params, args):
        run_finetune(params, ds)


def _evaluate(params, args) -> None:
    from ecglatent.pipeline.vae_evaluate import run_evaluate

    run_evaluate(params)


def _serve(params, args) -> None:
    from ecglatent.tracking.serving import serve

    raise SystemExit(
        serve(params, args.model, args.host, args.port, args.workers, args.max_request_mb)
    )


def _predict(params, args) -> None:
    from ecglatent.tracking.serving import predict_files

    table = predict_files(params, args.model, args.files, args.out, chunk_size=args.chunk_size,
                          resume=args.resume, progress=not args.no_progress,
                          readers=max(1, (os.cpu_count() or 2) - 1) if args.readers is None
                          else args.readers)  # fmt: skip
    if table is not None:
        cols = [c for c in table.columns if c != "reconstruction"]
        print(table[cols].to_string(index=False))


def _explore(params, args) -> None:
    from ecglatent.explorer.app import serve_explorer
    from ecglatent.tracking import runs
    from ecglatent.tracking.serving import default_model_uri

    runs.configure(params.tracking)
    serve_explorer(args.model or default_model_uri(params), args.port)


def _tune(params, args) -> None:
    from ecglatent.tuning.study import run_tune

    run_tune(params, study=args.study, n_trials=args.n_trials, storage=args.storage,
             workers=args.workers, timeout=args.timeout, multi_objective=args.multi_objective)  # fmt: skip


def _tune_best(params, args) -> None:
    from ecglatent.tuning.study import best_params

    print(best_params(params, study=args.study, storage=args.storage, as_dvc_args=args.dvc_args))


def _siliconet(stage: str) -> Callable:
    def run(params, args) -> None:
        from ecglatent.pipeline import siliconet

        getattr(siliconet, f"run_siliconet_{stage}")(params)

    return run


COMMANDS: dict[str, tuple[str, Callable]] = {
    "fetch": ("get PTB-XL / MIT-BIH from PhysioNet or a mirror into data/raw", _fetch),
    "beats": ("R peaks, beats, quality filters, median beats, RR features", _beats),
    "split": ("labels and patient-grouped, stratified splits", _split),
    "pretrain": ("pretrain the β-VAEs (reconstruction + β·KL)", _pretrain),
    "finetune": ("two-step fine-tune with the prediction head (+ γ·BCE)", _finetune),
    "evaluate": ("probes, baselines, Table 1, plots, MLflow registry", _evaluate),
    "serve": ("serve a registered model over HTTP (mlflow models serve)", _serve),
    "predict": ("score WFDB records (files, folders, globs) with a registered model", _predict),
    "explore": ("browse a model's latent space in the browser (127.0.0.1 only)", _explore),
    "siliconet-beats": (
        "SiliconNet beats: MIT-BIH N/V windows, PTB-XL 12-lead beats",
        _siliconet("beats"),
    ),
    "siliconet-pretrain": (
        "SimSiam pretraining, two leads of a beat as views",
        _siliconet("pretrain"),
    ),
    "siliconet-downstream": ("N vs V: the five configurations × seeds", _siliconet("downstream")),
    "siliconet-evaluate": (
        "DS2 per-lead F1, Wilcoxon tests, report, registry",
        _siliconet("evaluate"),
    ),
    "tune": ("Optuna study over L, β, γ and learning rates, tracked in MLflow", _tune),
    "tune-best": (
        "the best trial's params (a `dvc exp run -S ...` line with --dvc-args)",
        _tune_best,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecglatent", description=__doc__)
    parser.add_argument("--params", default=None, help="params file (default: params.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, _) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if name in ("pretrain", "finetune"):
            p.add_argument("--dataset", choices=["ptbxl", "mitdb"], default=None,
                           help="one dataset (default: every one in vae.datasets)")  # fmt: skip
        if name in ("serve", "predict", "explore"):
            p.add_argument("--model", default=None,
                           help="model URI (default: models:/ecg-task-vae-ptbxl-<task>@champion)")  # fmt: skip
        if name == "serve":
            p.add_argument("--host", default="127.0.0.1")
            p.add_argument("--port", type=int, default=5001)
            p.add_argument("--workers", type=int, default=1)
            p.add_argument("--max-request-mb", type=float, default=64.0,
                           help="larger request bodies are refused with 413 before parsing")  # fmt: skip
        if name == "explore":
            p.add_argument("--port", type=int, default=5002, help="port on 127.0.0.1")
        if name in ("tune", "tune-best"):
            p.add_argument("--study", required=True, help="study name (re-running resumes it)")
            p.add_argument("--storage", default=None, help="Optuna RDB URL (default: tune.storage)")
        if name == "tune":
            p.add_argument("--n-trials", type=int, default=20, help="finished trials wanted in all")
            p.add_argument(
                "--workers", type=int, default=1, help="worker processes on this machine"
            )
            p.add_argument("--timeout", type=float, default=None, help="seconds per worker")
            p.add_argument("--multi-objective", action="store_true",
                           help="maximise AUROC and minimise reconstruction MSE (Pareto front)")  # fmt: skip
        if name == "tune-best":
            p.add_argument("--dvc-args", action="store_true",
                           help="print a `dvc exp run -S key=value ...` line for the pipeline")  # fmt: skip
        if name == "predict":
            p.add_argument("files", nargs="+",
                           help="WFDB header files (.hea), folders (searched recursively) or "
                                "quoted glob patterns ('data/**/*.hea')")  # fmt: skip
            p.add_argument("--out", default=None,
                           help="append rows to this CSV chunk by chunk instead of printing")  # fmt: skip
            p.add_argument("--chunk-size", type=int, default=64, help="records scored at a time")
            p.add_argument("--resume", action="store_true",
                           help="keep the rows already in --out and score only the other files")  # fmt: skip
            p.add_argument("--no-progress", action="store_true", help="no progress bar")
            p.add_argument("--readers", type=int, default=None,
                           help="processes reading files ahead (default: cores - 1; 0: none)")  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("alembic", "mlflow.store", "urllib3", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        from ecglatent.config import load_params

        params = load_params(args.params)
        COMMANDS[args.command][1](params, args)
    except EcglatentError as exc:
        print(f"ecglatent {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ecglatent {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

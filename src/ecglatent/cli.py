"""`ecglatent <stage>`: one CLI for DVC stages, MLproject entry points and people."""

from __future__ import annotations

import argparse
import logging
import sys

from ecglatent.errors import EcglatentError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ecglatent", description=__doc__)
    parser.add_argument("--params", default=None, help="params file (default: params.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="get PTB-XL / MIT-BIH from PhysioNet or a mirror into data/raw")
    sub.add_parser("beats", help="R peaks, beats, quality filters, median beats, RR features")
    sub.add_parser("split", help="labels and patient-grouped, stratified splits")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        from ecglatent.config import load_params

        params = load_params(args.params)
        if args.command == "fetch":
            from ecglatent.pipeline.fetch import run_fetch

            run_fetch(params)
        elif args.command == "beats":
            from ecglatent.pipeline.beats import run_beats

            run_beats(params)
        elif args.command == "split":
            from ecglatent.pipeline.split import run_split

            run_split(params)
    except EcglatentError as exc:
        print(f"ecglatent {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ecglatent {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

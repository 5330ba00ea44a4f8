"""Many users at once on the real app: browser sessions share uploads on the Predict page, every
answer checked against the Python API (the driver of tests/test_load.py, tests/loaddriver.py).

    python bench/load.py [CHECKPOINTS] [--sessions 8] [--uploads 200] [--warmup 4] [--json]

Prints one line (uploads, sessions, latency p50/p95/max, server RSS after the warm-up, halfway and
at the end, wall time, wrong answers) and, with --json, the whole report with its RSS trace.
CHECKPOINTS (default checkpoints/) is copied to a temporary folder first, without resume states,
so neither the server nor the ONNX export ever writes into it (the copy is removed unless
the run fails). Needs Chromium (FVCORE_CHROMIUM,
default /usr/bin/chromium) and Playwright. Exit status 1 when any answer was wrong.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from loaddriver import run_load  # noqa: E402 - needs the paths above


def get_parser() -> argparse.ArgumentParser:
    """The options of bench/load.py."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="?", default=str(ROOT / "checkpoints"))
    parser.add_argument("--sessions", type=int, default=8, help="browser sessions at once")
    parser.add_argument("--uploads", type=int, default=200, help="measured uploads in all")
    parser.add_argument("--warmup", type=int, default=4, help="uploads per session first")
    parser.add_argument("--timeout", type=float, default=1800.0, help="hard limit, seconds")
    parser.add_argument("--threads", help="FVCORE_THREADS for the server")
    parser.add_argument("--json", action="store_true", help="also print the whole report")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the load on a copy of the checkpoints and print the numbers."""
    args = get_parser().parse_args(argv)
    env = {"FVCORE_THREADS": args.threads} if args.threads else None
    tmp = Path(tempfile.mkdtemp(prefix="fvcore-load-"))  # kept when the run fails: its log
    root = tmp / "checkpoints"                            # and screenshots are in run/
    shutil.copytree(args.checkpoints, root, ignore=shutil.ignore_patterns(".train", "*.tmp"))
    report = run_load(root, sessions=args.sessions, uploads=args.uploads, warmup=args.warmup,
                      timeout=args.timeout, workdir=tmp / "run", env=env)
    shutil.rmtree(tmp, ignore_errors=True)
    print(report.summary())
    for problem in report.problems[:20]:
        print(f"  wrong: {problem}")
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``explain-eval`` subcommand: how faithful each CAM method's heatmaps are (ROAD, deletion
and insertion areas against a random heatmap) and whether they pass the model-randomisation
sanity check; argparse stays out of the library."""
from __future__ import annotations

import argparse
from pathlib import Path

from fvcore.cli.bars import progress_bar
from fvcore.errors import FvError
from fvcore.evaluation.explain_eval import LIMIT, explain_eval
from fvcore.evaluation.explanations import QUALITY, ExplainQuality
from fvcore.explain.cam import CAM_METHODS
from fvcore.explain.quality import PERCENTILES, STEPS
from fvcore.inference.loading import load_checkpoint


def parse_list(text: str | None) -> list[str]:
    """A comma-separated list (None or empty: an empty list)."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def parse_percentiles(text: str) -> list[int]:
    """``"20,50,80"`` -> ROAD's percentiles, each checked to lie in 1-99."""
    try:
        values = [int(v) for v in parse_list(text)]
    except ValueError:
        raise FvError(f"--percentiles {text!r}: write whole numbers such as 20,50,80") from None
    if not values or any(not 1 <= v <= 99 for v in values):
        raise FvError(f"--percentiles {text!r}: each must lie between 1 and 99")
    return sorted(set(values))


def summary_lines(result: ExplainQuality) -> list[str]:
    """The table the command prints for one checkpoint: one line per method, the random
    baseline last, with the Spearman correlation once every layer is randomised."""
    last = {p.method: p for p in result.sanity}   # the last stage stored per method
    lines = [f"  {'method':<11} {'ROAD MoRF':>9} {'LeRF':>7} {'ROAD':>7} {'deletion':>9} "
             f"{'insertion':>9} {'ms/img':>8} {'rho (all random)':>17}"]
    for m in result.methods:
        rho = f"{last[m.method].spearman:+.3f}" if m.method in last else "-"
        lines.append(f"  {m.method:<11} {m.road_morf:>9.3f} {m.road_lerf:>7.3f} {m.road:>+7.3f} "
                     f"{m.deletion:>9.3f} {m.insertion:>9.3f} {m.ms:>8.1f} {rho:>17}")
    return lines


def cmd_explain_eval(args: argparse.Namespace) -> int:
    """Score each CAM method's heatmaps on a fixed sample of test images (ROAD most and least
    relevant first, deletion and insertion areas, ms per image, and the same for a random
    heatmap) and run the model-randomisation sanity check; saved in explain_quality.csv and
    explain_sanity.csv beside each checkpoint (resumable per method)."""
    methods = parse_list(args.methods) or None
    percentiles = parse_percentiles(args.percentiles)
    for folder in args.checkpoints:
        classifier = load_checkpoint(folder)
        with progress_bar(classifier.name, "map", quiet=args.quiet) as advance:
            result = explain_eval(classifier, args.data, methods=methods, limit=args.limit,
                                  seed=args.seed, percentiles=percentiles, steps=args.steps,
                                  sanity=not args.no_sanity, progress=advance)
        n = max((m.n_images for m in result.methods), default=0)
        print(f"{folder}: {QUALITY} " + (f"updated: {', '.join(result.computed)}"
                                         if result.computed else
                                         "unchanged (every result was stored)")
              + f"; {n} test images")
        print("\n".join(summary_lines(result)))
    return 0


def add_parsers(add) -> None:
    """The ``explain-eval`` subcommand, added with the parser's ``add``."""
    p = add("explain-eval", cmd_explain_eval)
    p.add_argument("checkpoints", nargs="+", type=Path)
    p.add_argument("--data", required=True, action="append",
                   help="folder of class sub-folders (e.g. DIR/test); repeat to pool several")
    p.add_argument("--limit", type=int, default=LIMIT,
                   help=f"test images, spread over the classes (default {LIMIT}; 0: all)")
    p.add_argument("--methods", help="comma-separated subset (default: all): "
                                     + ", ".join(CAM_METHODS))
    p.add_argument("--seed", type=int, default=0,
                   help="seeds the random heatmap, ROAD's noise and the randomised weights")
    p.add_argument("--percentiles", default=",".join(map(str, PERCENTILES)),
                   help="ROAD's thresholds (default %(default)s: 80%%, 50%%, 20%% removed)")
    p.add_argument("--steps", type=int, default=STEPS,
                   help="points of the deletion and insertion curves, minus one "
                        "(default %(default)s)")
    p.add_argument("--no-sanity", action="store_true",
                   help="skip the model-randomisation check")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

"""The subcommands away from the test split: ``robustness`` (corruption sweeps, mCE) and ``ood``
(scores of unknown inputs); argparse stays in :mod:`fvcore.cli.parser`."""
from __future__ import annotations

import argparse
from pathlib import Path

from fvcore.cli.bars import progress_bar
from fvcore.errors import FvError
from fvcore.evaluation.corruptions import corruption_names
from fvcore.evaluation.ood import measure_ood
from fvcore.evaluation.robustness import ROBUSTNESS, corruption_errors, mean_corruption_error
from fvcore.evaluation.sweep import sweep
from fvcore.inference.loading import load_checkpoint


def parse_severities(text: str) -> list[int]:
    """``"1-5"``, ``"1,5"`` or ``"3"`` -> the severities, each checked to be 1-5."""
    out: list[int] = []
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            out += list(range(int(low), int(high or low) + 1))
    except ValueError:
        raise FvError(f"--severities {text!r}: write a range such as 1-5 or a list such as "
                      "1,3,5") from None
    if not out or any(not 1 <= s <= 5 for s in out):
        raise FvError(f"--severities {text!r}: severities run from 1 to 5")
    return sorted(set(out))


def parse_corruptions(text: str | None) -> list[str]:
    """A comma-separated list of corruption names (None: every one), checked."""
    if not text:
        return corruption_names()
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in corruption_names()]
    if unknown:
        raise FvError(f"unknown corruption {', '.join(unknown)}; choose from "
                      f"{', '.join(corruption_names())}")
    return names


def cmd_robustness(args: argparse.Namespace) -> int:
    """Accuracy and ECE of each checkpoint under ImageNet-C corruptions at each severity, saved
    in robustness.csv beside it (resumable), with the mCE relative to a baseline checkpoint."""
    names, severities = parse_corruptions(args.corruptions), parse_severities(args.severities)
    baseline = args.baseline or args.checkpoints[0]
    folders = list(dict.fromkeys([*args.checkpoints, baseline]))
    results = {}
    for folder in folders:
        classifier = load_checkpoint(folder)
        with progress_bar(classifier.name, "img", quiet=args.quiet) as advance:
            results[folder] = sweep(classifier, args.data, corruptions=names,
                                    severities=severities, limit=args.limit, seed=args.seed,
                                    progress=advance)
        computed = results[folder].computed
        print(f"{folder}: {ROBUSTNESS} " + (f"updated: {', '.join(computed)}" if computed
                                            else "unchanged (every result was stored)"))
    base = results[baseline].errors()
    print(f"\nbaseline for mCE: {baseline}")
    print(f"{'checkpoint':<40} {'clean':>7} {'corrupt':>8} {'drop':>6} {'mCE':>6}")
    for folder in args.checkpoints:
        got = results[folder]
        print(f"{str(folder)[-40:]:<40} {got.clean.accuracy:>7.1%} {got.mean_accuracy:>8.1%} "
              f"{got.drop * 100:>5.1f}p {mean_corruption_error(got.errors(), base):>6.1%}")
        if args.verbose:
            for name, ce in corruption_errors(got.errors(), base).items():
                print(f"    CE {name:<18} {ce:.1%}")
    return 0


def cmd_ood(args: argparse.Namespace) -> int:
    """AUROC of each checkpoint's out-of-distribution scores (maximum softmax probability,
    energy) on its test images against non-class images; saved in ood.json beside it, with the
    threshold that keeps 95% of the test images."""
    for folder in args.checkpoints:
        report = measure_ood(load_checkpoint(folder), args.data, limit=args.limit, seed=args.seed)
        print(f"{folder}: {report.n_in} test vs {report.n_out} unknown images; "
              + "; ".join(f"{s.name} AUROC {s.auroc:.3f}, threshold {s.threshold:.3g} "
                          f"(FPR at 95% TPR {s.fpr95:.1%})" for s in report.scores))
    return 0


def add_parsers(add) -> None:
    """The ``robustness`` and ``ood`` subcommands, added with the parser's ``add``."""
    p = add("robustness", cmd_robustness)
    p.add_argument("checkpoints", nargs="+", type=Path)
    p.add_argument("--data", required=True, action="append",
                   help="folder of class sub-folders (e.g. DIR/test); repeat to pool several")
    p.add_argument("--corruptions", help="comma-separated subset (default: all): "
                                         + ", ".join(corruption_names()))
    p.add_argument("--severities", default="1-5", help="e.g. 1-5 (default) or 1,3,5")
    p.add_argument("--limit", type=int, help="at most N test images, spread over the classes")
    p.add_argument("--baseline", type=Path,
                   help="checkpoint whose errors the mCE divides by (default: the first)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verbose", "-v", action="store_true", help="also print CE per corruption")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p = add("ood", cmd_ood)
    p.add_argument("checkpoints", nargs="+", type=Path)
    p.add_argument("--data", required=True, action="append",
                   help="in-distribution images: folder of class sub-folders (e.g. DIR/test)")
    p.add_argument("--limit", type=int, help="at most N test images, spread over the classes")
    p.add_argument("--seed", type=int, default=0)

"""The robustness table of a shipped zoo: every checkpoint of one group swept under the
ImageNet-C corruptions (:func:`fvcore.evaluation.sweep.sweep`, the work of ``python -m fvcore
robustness``: stored in ``robustness.csv`` beside each checkpoint and resumable, so a rerun only
computes what is missing), optionally its unknown-input scores (``ood.json``), and a markdown
table written between ``<!-- robustness:start -->`` and ``<!-- robustness:end -->`` in the README.

    python bench/robustness.py checkpoints/hymenoptera --data ../shared/datasets/hymenoptera/val \
        --limit 40 --corruptions gaussian_noise,defocus_blur,contrast --severities 1-5 --ood
    python bench/robustness.py checkpoints/produce --data ../shared/datasets/grocery-produce/test \
        --data ../shared/datasets/produce-wild/test --limit 200 --ood
    python bench/robustness.py GROUP --data DIR --table-only   # the table from the stored files

Columns: clean accuracy and the mean accuracy over every (corruption, severity) measured, the
drop between them (relative robustness, in points), the mCE against ``--baseline`` (100% = the
baseline; lower is more robust), the corruption that hurts the model most, and the AUROC of the
maximum softmax probability and the energy score against unknown inputs when ``ood.json`` exists.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Mapping, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fvcore.checkpoints.catalog import scan  # noqa: E402
from fvcore.cli.shift import parse_corruptions, parse_severities  # noqa: E402
from fvcore.errors import FvError  # noqa: E402
from fvcore.evaluation.ood import OodReport, load_ood  # noqa: E402
from fvcore.evaluation.robustness import (  # noqa: E402
    Robustness,
    load_robustness,
    mean_corruption_error,
)

MARKER = "robustness"


def measure(folders: Mapping[str, Path], data: Sequence[str], *, corruptions: Sequence[str],
            severities: Sequence[int], limit: Optional[int], seed: int, ood: bool
            ) -> dict[str, Robustness]:
    """Sweep (and with ``ood``, score unknown inputs for) every checkpoint; by name."""
    from fvcore.evaluation.ood import measure_ood
    from fvcore.evaluation.sweep import sweep
    from fvcore.inference.loading import load_checkpoint
    found = {}
    for name, folder in folders.items():
        start = time.perf_counter()
        classifier = load_checkpoint(folder)
        found[name] = sweep(classifier, data, corruptions=corruptions, severities=severities,
                            limit=limit, seed=seed)
        if ood:
            measure_ood(classifier, data, limit=limit, seed=seed)
        computed = ", ".join(found[name].computed) or "nothing (all stored)"
        print(f"{name}: computed {computed} in {time.perf_counter() - start:.0f} s",
              file=sys.stderr, flush=True)
    return found


def _pct(value: float) -> str:
    return "–" if value != value else f"{value:.1%}"


def markdown(found: Mapping[str, Robustness], reports: Mapping[str, OodReport], baseline: str,
             *, command: str, seconds: Optional[float]) -> str:
    """The README block: how it was measured, then one row per model, lowest mCE first."""
    base = found[baseline].errors()
    any_sweep = next(iter(found.values()))
    severities = sorted({r.severity for r in any_sweep.rows})
    timing = f" in {seconds / 60:.1f} min" if seconds is not None else ""
    lines = [f"Measured by `{command}` on {time.strftime('%Y-%m-%d')}{timing}: "
             f"{any_sweep.clean.n_images} test images per model, {len(any_sweep.corruptions)} "
             f"corruptions ({', '.join(c.replace('_', ' ') for c in any_sweep.corruptions)}) at "
             f"severities {', '.join(map(str, severities))}, applied to the crop each model sees. "
             f"mCE: the model's errors summed over severities divided by {baseline}'s, per "
             "corruption, then averaged (100% = the baseline; lower is more robust). Drop: "
             "clean minus mean corrupted accuracy, in points. OOD AUROC: test images against "
             "scikit-image's photos and generated patterns (`ood.json`; – where none is stored).",
             "", "| model | clean acc | corrupted acc | drop (points) | mCE | hardest corruption "
             "(its mean acc) | OOD AUROC (MSP / energy) |",
             "|---|---:|---:|---:|---:|---|---:|"]
    rows = []
    for name, sweep in found.items():
        mce = mean_corruption_error(sweep.errors(), base)
        means = {c: sum(r.accuracy for r in sweep.rows if r.corruption == c)
                 / sum(r.corruption == c for r in sweep.rows) for c in sweep.corruptions}
        hardest = min(means, key=means.get)
        report = reports.get(name)
        auroc = ("–" if report is None else " / ".join(
            f"{s.auroc:.3f}" for s in report.scores if s.name in ("msp", "energy")))
        rows.append((mce if mce == mce else float("inf"), name,
                     f"| {name}{' (baseline)' if name == baseline else ''} | "
                     f"{_pct(sweep.clean.accuracy)} | {_pct(sweep.mean_accuracy)} | "
                     f"{sweep.drop * 100:.1f} | {_pct(mce)} | {hardest.replace('_', ' ')} "
                     f"({_pct(means[hardest])}) | {auroc} |"))
    lines += [row for _, _, row in sorted(rows)]
    return "\n".join(lines)


def command_line(args: argparse.Namespace) -> str:
    """The command that measures this table (what ``--table-only`` reprints, without it)."""
    words = [str(args.group)] + [w for d in args.data for w in ("--data", d)]
    words += ["--limit", str(args.limit)] if args.limit else []
    words += ["--corruptions", args.corruptions] if args.corruptions else []
    words += ["--severities", args.severities]
    words += ["--seed", str(args.seed)] if args.seed else []
    words += ["--baseline", args.baseline] if args.baseline else []
    words += ["--ood"] if args.ood else []
    return "python bench/robustness.py " + shlex.join(words)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/robustness.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("group", type=Path, help="a group folder: checkpoints/<dataset>")
    parser.add_argument("--data", required=True, action="append",
                        help="test images: folder of class sub-folders; repeat to pool several")
    parser.add_argument("--limit", type=int, default=200,
                        help="at most N test images, spread over the classes (default 200)")
    parser.add_argument("--corruptions", help="comma-separated subset (default: all 13)")
    parser.add_argument("--severities", default="1-5", help="e.g. 1-5 (default) or 1,3,5")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline", help="model name for the mCE (default: cnn, else the first)")
    parser.add_argument("--ood", action="store_true", help="also measure ood.json")
    parser.add_argument("--table-only", action="store_true",
                        help="compute nothing: the table from the stored files")
    parser.add_argument("--threads", type=int, help="torch threads (default: its own choice)")
    parser.add_argument("--readme", default=str(ROOT / "README.md"),
                        help="README to update ('' to print only)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Sweep the group, print the table, update the README."""
    args = get_parser().parse_args(argv)
    try:
        entries, _ = scan(args.group)
        folders = {e.path.name: e.path for e in sorted(entries, key=lambda e: e.path.name)}
        if not folders:
            raise FvError(f"no checkpoints under {args.group}")
        start = time.perf_counter()
        if args.table_only:
            found = {n: s for n, f in folders.items() if (s := load_robustness(f, n)) and s.rows}
            seconds = None
        else:
            if args.threads:
                import torch
                torch.set_num_threads(args.threads)
            found = measure(folders, args.data, corruptions=parse_corruptions(args.corruptions),
                            severities=parse_severities(args.severities), limit=args.limit,
                            seed=args.seed, ood=args.ood)
            seconds = time.perf_counter() - start
        if not found:
            raise FvError(f"no robustness.csv under {args.group}: run without --table-only")
        baseline = args.baseline or ("cnn" if "cnn" in found else next(iter(found)))
        if baseline not in found:
            raise FvError(f"--baseline {baseline}: choose from {', '.join(found)}")
    except FvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    reports = {n: r for n, f in folders.items() if (r := load_ood(f)) is not None}
    table = markdown(found, reports, baseline, command=command_line(args), seconds=seconds)
    print(table)
    if args.readme:
        from fvcore.training.zoo import update_readme
        update_readme(args.readme, MARKER, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

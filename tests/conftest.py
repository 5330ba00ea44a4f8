"""Shared fixtures: a tiny generated image dataset and tiny real checkpoints made from it.

Nothing here downloads anything. Checkpoints are built with the real pipeline (create_model,
save_checkpoint, predict_samples), with a short made-up training history.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from fvcore.checkpoints.card import ModelCard
from fvcore.checkpoints.folder import save_checkpoint
from fvcore.datasets.folders import load_splits
from fvcore.evaluation.evaluate import evaluate_predictions, predict_samples, save_evaluation
from fvcore.inference.loading import load_checkpoint
from fvcore.models.cost import count_flops, count_params
from fvcore.models.registry import create_model, get_spec

SHAPES = ("circle", "square", "triangle")
GROUPS = {"circle": "round", "square": "angular", "triangle": "angular"}


def shape_image(kind: str, rng: np.random.Generator, size: int = 48) -> Image.Image:
    """A coloured shape on a noisy background: easy for a small CNN to learn."""
    background = rng.integers(0, 80, (size, size, 3), dtype=np.uint8)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    r = int(size * rng.uniform(0.25, 0.4))
    cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
    colour = {"circle": (230, 60, 60), "square": (60, 220, 60), "triangle": (70, 90, 240)}[kind]
    if kind == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif kind == "square":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=colour)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    return image


def make_dataset(root: Path, counts: dict[str, int], *, seed: int = 0, size: int = 48) -> Path:
    """Write an image-folder dataset ``root/<split>/<shape>/*.png`` plus ``classes.json``."""
    rng = np.random.default_rng(seed)
    for split, n in counts.items():
        for kind in SHAPES:
            folder = root / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                shape_image(kind, rng, size).save(folder / f"{kind}_{i:03d}.png")
    (root / "classes.json").write_text(json.dumps({"groups": GROUPS}))
    return root


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """3 classes of generated shapes: 30 train, 6 validation, 8 test images per class."""
    return make_dataset(tmp_path_factory.mktemp("shapes"),
                        {"train": 30, "validation": 6, "test": 8})


def make_checkpoint(folder: Path, arch: str, data_root: Path, *, image_size: int = 64,
                    dataset: str = "shapes", seed: int = 0) -> Path:
    """A checkpoint folder of an untrained ``arch`` with real test predictions and a short
    made-up history, in exactly the shipped format."""
    torch.manual_seed(seed)
    data = load_splits(data_root)
    spec = get_spec(arch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, init = create_model(arch, len(data.classes), image_size=image_size)
    model.eval()
    history = [{"epoch": e, "train_loss": 1.2 / e, "train_acc": 0.3 + 0.1 * e,
                "val_loss": 1.3 / e, "val_acc": 0.3 + 0.08 * e, "lr": 1e-3, "seconds": 1.0}
               for e in range(1, 5)]
    card = ModelCard(arch=arch, classes=data.classes, image_size=image_size,
                     mean=list(spec.mean), std=list(spec.std), dataset=dataset, init=init,
                     groups=data.groups, params=count_params(model),
                     flops=count_flops(model, image_size), best_epoch=4, epochs_run=4,
                     recipe={"finetune": "full"}, command="pytest fixture")
    save_checkpoint(folder, model, card, history=history)
    classifier = load_checkpoint(folder)
    preds = predict_samples(classifier, data.splits["test"], root=data.root)
    save_evaluation(classifier, preds, evaluate_predictions(preds, data.groups), dataset=dataset)
    return folder


@pytest.fixture(scope="session")
def checkpoint_root(tmp_path_factory, tiny_data) -> Path:
    """A checkpoints/ tree with a CNN, an EfficientNet-Lite0 and a ViT on the shapes dataset."""
    root = tmp_path_factory.mktemp("checkpoints")
    for arch in ("cnn", "efficientnet_lite0", "vit"):
        make_checkpoint(root / "shapes" / arch, arch, tiny_data)
    return root


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium for the browser tests. Missing is a failure, not a skip: those tests
    are skipped only by FVCORE_SKIP_E2E=1 (their skip mark runs before any fixture)."""
    from appserver import CHROMIUM
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium package (apt-get install "
                    "chromium), or set FVCORE_SKIP_E2E=1 to skip the browser tests")
    return CHROMIUM

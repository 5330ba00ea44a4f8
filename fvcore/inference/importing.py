"""Import a notebook's ``best_model.pth`` as a checkpoint folder, checked before it is written:
the state dict is loaded into the plain torchvision/timm model as the notebook had it (fed by
torchvision's classic transforms), and its softmax on a few real photos must equal what the
written checkpoint predicts (through :func:`~fvcore.inference.loading.load_checkpoint`: the
stored float16/float32 weights, the card's preprocessing, the ONNX fast path) within
:data:`TOLERANCE`. The folder is written under a hidden temporary name and renamed into place
only when the check passes, so a failed import writes nothing."""
from __future__ import annotations

import functools
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from PIL import Image

from fvcore.checkpoints.card import ModelCard
from fvcore.checkpoints.catalog import CARD
from fvcore.checkpoints.folder import atomic_write, save_checkpoint
from fvcore.checkpoints.importer import Prepared, Preprocessing, prepare_import
from fvcore.errors import FvError
from fvcore.inference.loading import load_checkpoint

TOLERANCE = {False: 1e-4, True: 1e-2}
"""Largest allowed difference of any class probability, notebook model vs imported checkpoint:
float32 weights (exact up to kernel order), float16 weights (rounded to 11 bits)."""


@dataclass(frozen=True)
class ImportResult:
    """A written checkpoint and how its self-check went."""

    path: Path
    card: ModelCard
    summary: str              # the module it was matched to, e.g. "torchvision:resnet50, ..."
    difference: float         # max |probability difference| over the check photos
    tolerance: float
    photos: int

    def __str__(self) -> str:
        return (f"wrote {self.path}: {self.summary}; self-check on {self.photos} photos: max "
                f"probability difference {self.difference:.1e} (tolerance {self.tolerance:g})")


@functools.lru_cache(maxsize=1)
def _photos() -> tuple[Image.Image, ...]:
    from skimage import data
    return tuple(Image.fromarray(fn()).convert("RGB") for fn in (data.astronaut, data.coffee,
                                                                  data.chelsea))


def check_photos() -> list[Image.Image]:
    """The real photos of the self-check: scikit-image's astronaut, coffee and chelsea."""
    return [photo.copy() for photo in _photos()]


def notebook_probs(prepared: Prepared, photos: Sequence[Image.Image]) -> np.ndarray:
    """Softmax of the model as the notebook had it: its exact tensors in float32, fed by
    torchvision's classic transforms (Resize, CenterCrop, ToTensor, Normalize)."""
    from torchvision import transforms as T
    card = prepared.card
    transform = T.Compose([T.Resize(card.resize_size or round(card.image_size / 0.875)),
                           T.CenterCrop(card.image_size), T.ToTensor(),
                           T.Normalize(card.mean, card.std)])
    model = prepared.model.float().eval()
    with torch.inference_mode():
        logits = model(torch.stack([transform(p) for p in photos]))
    return torch.softmax(logits.float(), 1).numpy()


def _fresh_folder(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FvError("exists and is not a folder", source=str(out))
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FvError("folder exists and is not empty; choose a new --out or pass --force",
                      source=str(out))


def import_state_dict(weights: str | Path, *, arch: str, classes: Sequence[str],
                      out: str | Path, preprocessing: Optional[Preprocessing] = None,
                      activation: str = "relu", half: bool = False, dataset: str = "imported",
                      overwrite: bool = False, backend: Optional[str] = None) -> ImportResult:
    """Import ``weights`` (see :func:`fvcore.checkpoints.importer.prepare_import`) as the
    checkpoint folder ``out``, self-checked; ``half`` stores float16 weights (default float32).
    Any failure raises FvError with one line and leaves nothing behind."""
    out = Path(out)
    _fresh_folder(out, overwrite)
    prepared = prepare_import(weights, arch=arch, classes=classes, preprocessing=preprocessing,
                              activation=activation, dataset=dataset)
    photos = check_photos()
    expected = notebook_probs(prepared, photos)
    new_parents = [p for p in out.parents if not p.exists()]
    tmp = out.parent / f".{out.name}.import-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        save_checkpoint(tmp, prepared.model, prepared.card, half=half)
        got = load_checkpoint(tmp, name=out.name, backend=backend).predict(photos)
        difference = float(np.abs(got - expected).max())
        tolerance = TOLERANCE[half]
        if not difference <= tolerance:
            flips = int((got.argmax(1) != expected.argmax(1)).sum())
            raise FvError(f"self-check failed: the imported checkpoint's probabilities differ "
                          f"from the notebook model's by up to {difference:.2e} on "
                          f"{len(photos)} photos (tolerance {tolerance:g}; {flips} top-1 "
                          f"changes); nothing was written", source=str(weights))
        prepared.card.notes += f"; self-check: max probability difference {difference:.1e} " \
                               f"on {len(photos)} photos"
        atomic_write(tmp / CARD, prepared.card.to_json())
        if out.exists():
            old = out.parent / f".{out.name}.replaced-{os.getpid()}"
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for parent in new_parents:
            if parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
        raise
    return ImportResult(out, prepared.card, prepared.summary, difference, tolerance, len(photos))

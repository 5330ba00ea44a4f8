"""Training-time augmentation: the train preset (per image) and CutMix/MixUp (per batch), with
the one check of their settings."""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from PIL import Image
from torchvision.transforms import v2 as T

from fvcore.errors import FvError

AUGMENT_POLICIES = ("basic", "trivial")


def check_augmentation(policy: str, mix: float = 0.0) -> None:
    """Refuse an unknown augmentation policy or a negative mixing alpha before any work."""
    if policy not in AUGMENT_POLICIES:
        raise FvError(f"unknown --augment-policy {policy!r}; choose one of "
                      f"{', '.join(AUGMENT_POLICIES)}")
    if mix < 0:
        raise FvError(f"--mix must be >= 0 (the CutMix/MixUp Beta alpha), got {mix}")


def batch_mixer(num_classes: int, alpha: float) -> Optional[Callable]:
    """CutMix or MixUp (one of the two, at random, per batch) with Beta(alpha, alpha) mixing;
    None when ``alpha`` is 0. Labels become soft targets of shape (batch, classes)."""
    if alpha <= 0:
        return None
    return T.RandomChoice([T.CutMix(num_classes=num_classes, alpha=alpha),
                           T.MixUp(num_classes=num_classes, alpha=alpha)])


class TrainPreset:
    """Augmentation for training only. ``basic``: random resized crop, flip, rotation, colour
    jitter. ``trivial``: random resized crop, flip, TrivialAugmentWide (one random operation of
    random strength per image) and random erasing -- stronger, for fine-tuning on small data."""

    def __init__(self, *, crop_size: int, mean: Sequence[float], std: Sequence[float],
                 scale: tuple[float, float] = (0.35, 1.0), hflip: float = 0.5,
                 rotation: float = 15.0, jitter: float = 0.3, policy: str = "basic") -> None:
        check_augmentation(policy)
        geometry = [T.RandomResizedCrop(crop_size, scale=scale, antialias=True),
                    T.RandomHorizontalFlip(hflip)]
        tensor = [T.ToImage(), T.ToDtype(torch.float32, scale=True), T.Normalize(mean, std)]
        if policy == "basic":
            self.transforms = T.Compose([*geometry, T.RandomRotation(rotation),
                                         T.ColorJitter(jitter, jitter, jitter, jitter / 6),
                                         *tensor])
        else:
            self.transforms = T.Compose([*geometry, T.TrivialAugmentWide(), *tensor,
                                         T.RandomErasing(0.25)])

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.transforms(image)

"""Image transforms: one eval preset (prediction, evaluation, Grad-CAM, ONNX export) and one train
preset, both rebuilt from a model card's numbers."""
from __future__ import annotations

from typing import Sequence

import torch
from PIL import Image
from torchvision.transforms import v2 as T


class EvalPreset:
    """Resize the shorter side to ``resize_size``, centre-crop ``crop_size``, normalise."""

    def __init__(self, *, crop_size: int, resize_size: int | None = None,
                 mean: Sequence[float], std: Sequence[float]) -> None:
        self.crop_size = crop_size
        self.resize_size = resize_size or round(crop_size / 0.875)
        self.mean, self.std = tuple(mean), tuple(std)
        self.geometry = T.Compose([T.Resize(self.resize_size, antialias=True),
                                   T.CenterCrop(crop_size)])
        self.tensor = T.Compose([T.ToImage(), T.ToDtype(torch.float32, scale=True),
                                 T.Normalize(self.mean, self.std)])

    @property
    def key(self) -> tuple:
        """Presets with equal keys produce identical tensors (used to share preprocessing)."""
        return (self.crop_size, self.resize_size, self.mean, self.std)

    def crop(self, image: Image.Image) -> Image.Image:
        """The RGB crop the model sees (what a Grad-CAM heatmap is drawn over)."""
        return self.geometry(image)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.tensor(self.geometry(image))


AUGMENT_POLICIES = ("basic", "trivial")


class TrainPreset:
    """Augmentation for training only. ``basic``: random resized crop, flip, rotation, colour
    jitter. ``trivial``: random resized crop, flip, TrivialAugmentWide (one random operation of
    random strength per image) and random erasing -- stronger, for fine-tuning on small data."""

    def __init__(self, *, crop_size: int, mean: Sequence[float], std: Sequence[float],
                 scale: tuple[float, float] = (0.35, 1.0), hflip: float = 0.5,
                 rotation: float = 15.0, jitter: float = 0.3, policy: str = "basic") -> None:
        if policy not in AUGMENT_POLICIES:
            raise ValueError(f"unknown augmentation policy {policy!r}; choose "
                             f"{' or '.join(AUGMENT_POLICIES)}")
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

"""The eval preset: the one image transform of prediction, evaluation, Grad-CAM and ONNX export,
rebuilt from a model card's numbers (training's augmentation is :mod:`fvcore.training.augment`)."""
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

"""The training Dataset: labelled image files decoded once and kept in memory."""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from PIL import Image
from torch.utils.data import Dataset

from fvcore.datasets.folders import Sample
from fvcore.inference.images import load_image


class ImageListDataset(Dataset):
    """(image tensor, label) pairs; images decoded once and kept in memory, optionally shrunk
    so the shorter side is ``keep_size`` (cheap epochs on CPU)."""

    def __init__(self, samples: Sequence[Sample], transform: Callable[[Image.Image], torch.Tensor],
                 *, keep_size: Optional[int] = None, cache: bool = True) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.keep_size = keep_size
        self.cache: dict[int, Image.Image] = {}
        self.use_cache = cache

    def __len__(self) -> int:
        return len(self.samples)

    def image(self, i: int) -> Image.Image:
        """The decoded (and possibly shrunk) RGB image of sample ``i``."""
        if i in self.cache:
            return self.cache[i]
        image = load_image(self.samples[i][0])
        if self.keep_size and min(image.size) > self.keep_size:
            scale = self.keep_size / min(image.size)
            image = image.resize((max(1, round(image.width * scale)),
                                  max(1, round(image.height * scale))), Image.BICUBIC)
        if self.use_cache:
            self.cache[i] = image
        return image

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.image(i)), self.samples[i][1]

"""The training data: labelled image files decoded once and kept in memory, and the cached
inputs of a model's head (head-only training without augmentation)."""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from fvcore.datasets.folders import Sample
from fvcore.inference.images import load_image
from fvcore.models.registry import get_submodule


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


def head_features(model: nn.Module, head_prefix: str, dataset: Dataset, device: torch.device,
                  batch_size: int) -> TensorDataset:
    """The inputs of the head (``head_prefix``) for every image, computed once: with the
    backbone frozen and no augmentation they never change, so the backbone never runs again."""
    head = get_submodule(model, head_prefix)
    feats: list[torch.Tensor] = []
    hook = head.register_forward_pre_hook(lambda m, args: feats.append(args[0].detach().cpu()))
    labels = []
    model.eval()
    try:
        with torch.no_grad():
            for images, y in DataLoader(dataset, batch_size=batch_size):
                model(images.to(device))
                labels.append(y)
    finally:
        hook.remove()
    return TensorDataset(torch.cat(feats), torch.cat(labels))

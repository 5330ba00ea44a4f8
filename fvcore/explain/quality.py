"""How good one heatmap is at saying what the model uses: ROAD (Rong et al., 2022, "remove and
debias", through grad-cam's own metrics) most- and least-relevant-first, the deletion and insertion
areas of Petsiuk et al. (2018, RISE; grad-cam has no such metric), a random heatmap to compare
against, and the rank correlation of two heatmaps (the randomisation check of
:mod:`fvcore.explain.sanity`). Every score is about ``softmax(logits / temperature)`` of the
explained class, as the classifier's probabilities.

Heatmaps are ranked before they are scored (:func:`ranked`): ties (a Grad-CAM is often zero over
half the image) are broken by a seeded random order, so "the top 20%" is 20% of the pixels, not
every pixel tied at the threshold."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from fvcore.errors import FvError

PERCENTILES = (20, 50, 80)
"""ROAD's thresholds: removing 80%, 50% and 20% of the pixels (grad-cam averages nine, 10-90;
each one is a sparse linear solve over the removed pixels, about a second at 224 px)."""
STEPS = 16
"""Deletion and insertion curves: the target probability at 0, 1/16, ..., 16/16 of the pixels."""


@dataclass(frozen=True)
class HeatmapScores:
    """How faithful one heatmap of one image is, in probabilities of the explained class."""

    road_morf: float    # mean drop when the most relevant pixels are imputed (higher = better)
    road_lerf: float    # mean drop when the least relevant pixels are imputed (lower = better)
    deletion: float     # area under p as pixels are deleted, most relevant first (lower = better)
    insertion: float    # area under p as pixels are inserted, most relevant first (higher = better)

    @property
    def road(self) -> float:
        """ROAD combined, as grad-cam's ``ROADCombined``: (MoRF drop - LeRF drop) / 2."""
        return (self.road_morf - self.road_lerf) / 2


def ranked(heatmap: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The heatmap's pixel ranks scaled to [0, 1) (same order, ties broken at random by
    ``rng``): exactly k% of the pixels lie above each k-th percentile."""
    flat = np.asarray(heatmap, dtype=np.float64).ravel()
    order = np.lexsort((rng.random(flat.size), flat))
    ranks = np.empty(flat.size, dtype=np.float32)
    ranks[order] = np.arange(flat.size, dtype=np.float32) / flat.size
    return ranks.reshape(np.shape(heatmap))


def random_heatmap(size: int, rng: np.random.Generator, *, grid: int = 7) -> np.ndarray:
    """A random heatmap shaped like a CAM: uniform noise on a ``grid`` x ``grid`` map (a CNN's
    last stage), bilinearly upsampled to ``size`` x ``size``, in [0, 1]."""
    coarse = torch.from_numpy(rng.random((1, 1, grid, grid)).astype(np.float32))
    fine = nn.functional.interpolate(coarse, size=(size, size), mode="bilinear",
                                     align_corners=False)[0, 0].numpy()
    low, high = float(fine.min()), float(fine.max())
    return (fine - low) / (high - low) if high > low else np.zeros_like(fine)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two heatmaps (average ranks for ties). Two equal heatmaps
    give 1; a constant one against another gives 0 (it ranks nothing, so shares no order)."""
    from scipy.stats import rankdata
    x, y = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    if x.shape != y.shape:
        raise FvError(f"heatmaps of {x.size} and {y.size} pixels cannot be compared")
    if np.array_equal(x, y):
        return 1.0
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(np.corrcoef(rankdata(x), rankdata(y))[0, 1])


def class_probability(logits: torch.Tensor, target: int, temperature: float = 1.0
                      ) -> torch.Tensor:
    """``softmax(logits / temperature)`` of class ``target``, for one (C) or many (N x C)."""
    return torch.softmax(logits.float() / temperature, dim=-1)[..., target]


def _check(x: torch.Tensor, heatmap: np.ndarray) -> None:
    if x.ndim != 4 or x.shape[0] != 1 or tuple(x.shape[2:]) != np.shape(heatmap):
        raise FvError(f"a heatmap of shape {np.shape(heatmap)} does not fit an input of shape "
                      f"{tuple(x.shape)} (one image, the heatmap over its crop)")


def road(model: nn.Module, x: torch.Tensor, heatmap: np.ndarray, target: int, *,
         temperature: float = 1.0, percentiles: Sequence[int] = PERCENTILES,
         seed: int = 0) -> tuple[float, float]:
    """ROAD most- and least-relevant-first: the mean drop of the target probability when the
    most (least) relevant pixels are imputed from their neighbours (grad-cam's noisy linear
    imputation, its noise seeded by ``seed``), averaged over ``percentiles``. ``heatmap`` should
    be :func:`ranked`. Returns (MoRF drop, LeRF drop); a faithful heatmap has a large first and
    a small second."""
    from pytorch_grad_cam.metrics.road import (
        ROADLeastRelevantFirstAverage,
        ROADMostRelevantFirstAverage,
    )
    _check(x, heatmap)
    targets = [lambda out: class_probability(out, target, temperature)]
    cams = np.asarray(heatmap, dtype=np.float32)[None]
    drops = []
    for metric in (ROADMostRelevantFirstAverage(list(percentiles)),
                   ROADLeastRelevantFirstAverage(list(percentiles))):
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            drops.append(-float(np.asarray(metric(x, cams, targets, model)).reshape(-1)[0]))
    return drops[0], drops[1]


def _blurred(x: torch.Tensor) -> torch.Tensor:
    """Insertion's starting image: ``x`` under a Gaussian blur of sigma = size / 45 (RISE's
    sigma 5 at 224 px)."""
    from torchvision.transforms.functional import gaussian_blur
    sigma = max(1.0, x.shape[-1] / 45)
    return gaussian_blur(x, kernel_size=2 * math.ceil(2 * sigma) + 1, sigma=sigma)


def perturbation_curves(model: nn.Module, x: torch.Tensor, heatmap: np.ndarray, target: int, *,
                        temperature: float = 1.0, steps: int = STEPS,
                        batch_size: int = 17) -> tuple[np.ndarray, np.ndarray]:
    """The target probability at ``steps + 1`` evenly spaced fractions of the pixels (0 to all),
    taken in heatmap order (highest first): deleted (set to 0 after normalisation, the data's
    mean colour) and inserted into a blurred copy. Returns (deletion curve, insertion curve)."""
    _check(x, heatmap)
    if steps < 1:
        raise FvError(f"deletion and insertion need at least one step, got {steps}")
    n = int(np.size(heatmap))
    order = np.argsort(-np.ravel(heatmap), kind="stable")
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    position = torch.from_numpy(position.reshape(np.shape(heatmap)))
    counts = [round(k * n / steps) for k in range(steps + 1)]
    masks = torch.stack([position < c for c in counts])[:, None].float()   # K x 1 x H x W
    blurred = _blurred(x)
    curves = []
    for start, fill in ((x, torch.zeros_like(x)), (blurred, x)):
        # deletion: x, with the first pixels replaced by 0; insertion: the blur, with x's pixels
        images = start * (1 - masks) + fill * masks
        with torch.no_grad():
            probs = torch.cat([class_probability(model(images[i:i + batch_size]), target,
                                                 temperature)
                               for i in range(0, len(images), batch_size)])
        curves.append(probs.numpy().astype(np.float64))
    return curves[0], curves[1]


def area(curve: np.ndarray) -> float:
    """The area under a curve sampled at evenly spaced points of [0, 1] (trapezoids)."""
    curve = np.asarray(curve, dtype=np.float64)
    return float((curve[:-1] + curve[1:]).sum() / 2 / (len(curve) - 1))


def score_heatmap(model: nn.Module, x: torch.Tensor, heatmap: np.ndarray, target: int, *,
                  temperature: float = 1.0, percentiles: Sequence[int] = PERCENTILES,
                  steps: int = STEPS, seed: int = 0) -> HeatmapScores:
    """ROAD both ways and the deletion and insertion areas of one heatmap of one image
    (``x``: 1x3xHxW as the model takes it; ``heatmap``: H x W), ties broken by ``seed``."""
    ranks = ranked(heatmap, np.random.default_rng(seed))
    morf, lerf = road(model, x, ranks, target, temperature=temperature,
                      percentiles=percentiles, seed=seed)
    deletion, insertion = perturbation_curves(model, x, ranks, target, temperature=temperature,
                                              steps=steps)
    return HeatmapScores(morf, lerf, area(deletion), area(insertion))

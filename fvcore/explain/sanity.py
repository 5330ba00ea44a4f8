"""The model-randomisation sanity check of Adebayo et al. (2018, "Sanity checks for saliency
maps"): on a copy of the model, re-initialise its layers from the top (the head) downward in
cumulative stages and, at each stage, compare the randomised model's heatmap of each image with
the trained model's by Spearman's rank correlation. An explanation that depends on what the model
learned falls towards 0 as its layers are randomised; one that stays high is an edge detector."""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch
from torch import nn

from fvcore.explain.cam import compute_cam
from fvcore.explain.quality import spearman

FRACTIONS = (0.0, "head", 0.25, 0.5, 0.75, 1.0)
"""The cumulative stages: nothing (the check's own check: a copy explains as the original),
the last parameterised layer, then a quarter, half, three quarters and all of them, from the
top."""


@dataclass(frozen=True)
class Stage:
    """One stage of the cascade: the top ``randomised`` of the model's ``total`` parameterised
    layers (modules that own parameters) are re-initialised, down to the one named ``lowest``."""

    index: int
    randomised: int
    total: int
    lowest: str

    @property
    def fraction(self) -> float:
        """The share of the parameterised layers randomised."""
        return self.randomised / self.total if self.total else 0.0

    @property
    def label(self) -> str:
        """As people read it: ``none``, ``head (fc)``, ``50% (down to layer3.0.conv1)``."""
        if not self.randomised:
            return "none"
        if self.randomised == 1:
            return f"head ({self.lowest})"
        return f"{self.fraction:.0%} (down to {self.lowest or 'the input'})"


def parameterised(model: nn.Module) -> list[str]:
    """The names of the modules that own parameters themselves, in definition order (the root
    is ``""``; a ViT's class token and position embedding belong to it)."""
    return [name for name, module in model.named_modules()
            if next(module.parameters(recurse=False), None) is not None]


def plan_stages(model: nn.Module, fractions: Sequence[float | str] = FRACTIONS) -> list[Stage]:
    """The cumulative stages for ``model``: ``fractions`` of its parameterised layers from the
    top (``"head"``: the last one alone), repeated counts dropped."""
    names = parameterised(model)
    total = len(names)
    counts = sorted({min(total, 1) if f == "head" else math.ceil(float(f) * total)
                     for f in fractions})
    return [Stage(i, n, total, names[total - n] if n else "") for i, n in enumerate(counts)]


def reinitialise(module: nn.Module) -> None:
    """Draw a module's own parameters afresh: its ``reset_parameters`` (PyTorch's default
    initialisation) when it has one, else a normal draw with the parameter's spread (at least
    0.02). Uses torch's global generator: seed it."""
    with torch.no_grad():
        if callable(getattr(module, "reset_parameters", None)):
            module.reset_parameters()
            return
        for param in module.parameters(recurse=False):
            spread = float(param.float().std()) if param.numel() > 1 else 0.0
            param.normal_(0.0, max(spread, 0.02))


def cascade(model: nn.Module, stages: Sequence[Stage], *, seed: int = 0
            ) -> Iterator[tuple[Stage, nn.Module]]:
    """A deep copy of ``model`` randomised stage after stage (cumulatively, top first), yielded
    after each stage; ``model`` itself is never touched. Seeded: the same seed gives the same
    random weights."""
    twin = copy.deepcopy(model).eval()
    modules = dict(twin.named_modules())
    names = parameterised(twin)
    done = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for stage in stages:
            for name in reversed(names[len(names) - stage.randomised:len(names) - done]):
                reinitialise(modules[name])
            done = max(done, stage.randomised)
            yield stage, twin


def randomisation_check(model: nn.Module, find_layer: Callable[[nn.Module], nn.Module],
                        images: Sequence[torch.Tensor], targets: Sequence[int],
                        heatmaps: Sequence[np.ndarray], *, method: str = "gradcam",
                        reshape: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                        temperature: float = 1.0, stages: Optional[Sequence[Stage]] = None,
                        seed: int = 0,
                        progress: Optional[Callable[[int], None]] = None
                        ) -> list[tuple[Stage, list[float]]]:
    """For each stage of the cascade (default :func:`plan_stages`), the Spearman correlation of
    every image's heatmap under the randomised copy with ``heatmaps`` (the trained model's, of
    the same ``method``, explaining the same ``targets``). ``find_layer`` finds the CAM layer
    in a model (the copy's own); ``progress(1)`` is called after each image and stage."""
    stages = plan_stages(model) if stages is None else stages
    out = []
    for stage, twin in cascade(model, stages, seed=seed):
        layer = find_layer(twin)
        rhos = []
        for x, target, original in zip(images, targets, heatmaps, strict=True):
            cam = compute_cam(twin, layer, x, target=target, method=method, reshape=reshape,
                              temperature=temperature)
            rhos.append(spearman(original, cam.heatmap))
            if progress:
                progress(1)
        out.append((stage, rhos))
    return out

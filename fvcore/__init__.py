"""fvcore: train, evaluate, compare and explain image classifiers (not FAIR's fvcore).

The public names are imported on first use (PEP 562), so ``import fvcore`` and the app's
torch-free modules (catalog, dashboard, webapp) start without loading torch."""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Classifier": "fvcore.classifier",
    "CheckpointError": "fvcore.errors",
    "FvError": "fvcore.errors",
    "ImageError": "fvcore.errors",
    "ModelCard": "fvcore.card",
    "create_model": "fvcore.architectures",
    "discover": "fvcore.checkpoint",
    "get_spec": "fvcore.architectures",
    "list_archs": "fvcore.architectures",
    "load_checkpoint": "fvcore.checkpoint",
    "load_image": "fvcore.images",
    "save_checkpoint": "fvcore.checkpoint",
    "scan": "fvcore.checkpoint",
}
"""Public name -> the module that defines it."""

__all__ = ["Classifier", "CheckpointError", "FvError", "ImageError", "ModelCard", "create_model",
           "discover", "get_spec", "list_archs", "load_checkpoint", "load_image", "save_checkpoint",
           "scan"]

if TYPE_CHECKING:
    from fvcore.architectures import create_model, get_spec, list_archs
    from fvcore.card import ModelCard
    from fvcore.checkpoint import discover, load_checkpoint, save_checkpoint, scan
    from fvcore.classifier import Classifier
    from fvcore.errors import CheckpointError, FvError, ImageError
    from fvcore.images import load_image


def __getattr__(name: str) -> Any:
    """Import a public name's module when the name is first used, then keep the name."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'fvcore' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's own names plus the lazily imported public ones."""
    return sorted(set(globals()) | set(__all__))

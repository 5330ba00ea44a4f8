"""fvcore: train, evaluate, compare and explain image classifiers (not FAIR's fvcore).

The public names are imported on first use (PEP 562), so ``import fvcore`` and the app's
torch-free modules (the checkpoint catalog, the page shell) start without loading torch."""
from __future__ import annotations

from typing import TYPE_CHECKING

from fvcore._lazy import lazy_exports

EXPORTS = {
    "Classifier": "fvcore.inference.classifier",
    "CheckpointError": "fvcore.errors",
    "FvError": "fvcore.errors",
    "ImageError": "fvcore.errors",
    "ModelCard": "fvcore.checkpoints.card",
    "create_model": "fvcore.models.registry",
    "discover": "fvcore.inference.loading",
    "get_spec": "fvcore.models.registry",
    "list_archs": "fvcore.models.registry",
    "load_checkpoint": "fvcore.inference.loading",
    "load_image": "fvcore.inference.images",
    "save_checkpoint": "fvcore.checkpoints.folder",
    "scan": "fvcore.checkpoints.catalog",
}
"""Public name -> the module that defines it."""

__all__ = ["Classifier", "CheckpointError", "FvError", "ImageError", "ModelCard", "create_model",
           "discover", "get_spec", "list_archs", "load_checkpoint", "load_image", "save_checkpoint",
           "scan"]
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)

if TYPE_CHECKING:
    from fvcore.checkpoints.card import ModelCard
    from fvcore.checkpoints.catalog import scan
    from fvcore.checkpoints.folder import save_checkpoint
    from fvcore.errors import CheckpointError, FvError, ImageError
    from fvcore.inference.classifier import Classifier
    from fvcore.inference.images import load_image
    from fvcore.inference.loading import discover, load_checkpoint
    from fvcore.models.registry import create_model, get_spec, list_archs

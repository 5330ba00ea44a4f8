"""fvcore: train, evaluate, compare and explain image classifiers (not FAIR's fvcore)."""
from fvcore.architectures import create_model, get_spec, list_archs
from fvcore.card import ModelCard
from fvcore.checkpoint import discover, load_checkpoint, save_checkpoint, scan
from fvcore.classifier import Classifier
from fvcore.errors import CheckpointError, FvError, ImageError
from fvcore.images import load_image

__all__ = ["Classifier", "CheckpointError", "FvError", "ImageError", "ModelCard", "create_model",
           "discover", "get_spec", "list_archs", "load_checkpoint", "load_image", "save_checkpoint",
           "scan"]

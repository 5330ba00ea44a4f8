"""Checkpoints: the model card, the folder format (safetensors + JSON, atomic writes), the catalog
that finds and validates folders without torch, training histories and the notebook importer."""
from fvcore._lazy import lazy_exports

EXPORTS = {"ModelCard": "card", "Entry": "catalog", "Problem": "catalog", "datasets": "catalog",
           "scan": "catalog", "atomic_write": "folder", "save_checkpoint": "folder",
           "read_history": "history", "prepare_import": "importer"}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)

"""Checkpoint folders in, classifiers out: :func:`load_checkpoint` picks the runner (the cached
ONNX export, else PyTorch) and builds the torch module only when it is needed;
:func:`discover` loads a whole tree and reports the folders that fail, one line each."""
from __future__ import annotations

import warnings
from functools import partial
from pathlib import Path
from typing import Optional

from torch import nn

from fvcore import settings
from fvcore.checkpoints.card import ModelCard
from fvcore.checkpoints.catalog import WEIGHTS, Problem, read_entry, scan
from fvcore.checkpoints.folder import build_model
from fvcore.errors import CheckpointError, FvError
from fvcore.inference.classifier import Classifier
from fvcore.inference.runners import (
    FastPathWarning,
    cache_key,
    cached_export,
    export_onnx,
    onnx_runner,
    release_free_memory,
)


def _build_unchanged(folder: Path, card: ModelCard, key: str) -> nn.Module:
    """build_model for a classifier that predicts from the export of the weights with cache key
    ``key``: they must still be those weights, or predictions and Grad-CAM would disagree."""
    if cache_key(folder, card) != key:
        raise CheckpointError(f"{WEIGHTS} changed since the checkpoint was loaded; load it again",
                              source=str(folder))
    return build_model(folder, card)


def load_checkpoint(path: str | Path, *, name: str = "",
                    backend: Optional[str] = None) -> Classifier:
    """Load a checkpoint folder as a :class:`Classifier` (float32, eval mode).

    ``backend`` runs predictions on ``onnx`` (the cached ONNX Runtime fast path, falling back to
    PyTorch with a warning) or ``pytorch``; default :func:`fvcore.settings.backend`. With onnx and
    an export cached for exactly these weights, the torch module is built only when first used
    (Grad-CAM), so loading is quick and holds one copy of the weights; a load that exports drops
    the module once the export passed its parity check, for the same reason.

    Raises CheckpointError with a one-line reason for a missing file, a corrupt safetensors, an
    unknown architecture or a card that does not match the weights.
    """
    folder = Path(path)
    card = read_entry(folder).card
    name = name or folder.name
    backend = backend or settings.backend()
    if backend not in settings.BACKENDS:
        raise FvError(f"unknown backend {backend!r}; choose one of {', '.join(settings.BACKENDS)}")
    if backend == "pytorch":
        return Classifier(build_model(folder, card), card, name=name, path=folder)
    built: list[nn.Module] = []   # the module, when exporting needed it

    def module() -> nn.Module:
        if not built:
            built.append(build_model(folder, card))
        return built[0]

    rebuild = partial(_build_unchanged, folder, card, cache_key(folder, card))
    runner = onnx_runner(name, card, folder, module)
    release_free_memory()  # what loading the weights and exporting freed
    if runner is None:
        return Classifier(module(), card, name=name, path=folder)
    # exported and parity-checked (or cached): the module is not needed until Grad-CAM
    built.clear()
    return Classifier(None, card, name=name, path=folder, loader=rebuild, runner=runner)


def onnx_export(path: str | Path) -> bytes:
    """The checkpoint's parity-checked ONNX export (``<checkpoint>/.onnx/``), exported and cached
    first when there is none; FvError when the model cannot be exported."""
    folder = Path(path)
    card = read_entry(folder).card
    if cached_export(folder, card) is None:
        with warnings.catch_warnings():
            warnings.simplefilter("error", FastPathWarning)
            try:
                load_checkpoint(folder, backend="onnx")
            except FastPathWarning as exc:
                raise FvError(f"no ONNX export: {exc}", source=str(folder)) from None
    found = cached_export(folder, card)
    if found is None:   # a read-only folder and cache: export once more, in memory
        return export_onnx(build_model(folder, card), card.image_size)
    return found.read_bytes()


def discover(root: str | Path, *, backend: Optional[str] = None
             ) -> tuple[list[Classifier], list[Problem]]:
    """Load every checkpoint under ``root``; the ones that fail are returned as problems, and so
    is a scan that stopped early (its bound reached: some checkpoints may be missing)."""
    found = scan(root)
    entries, problems = found.entries, list(found.problems)
    if found.truncated:
        problems.append(Problem(str(root), found.truncated))
    classifiers = []
    for entry in entries:
        try:
            classifiers.append(load_checkpoint(entry.path, name=entry.name, backend=backend))
        except FvError as exc:
            problems.append(Problem(entry.name, exc.reason))
    return classifiers, problems

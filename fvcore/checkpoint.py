"""Checkpoint folders: ``model.safetensors`` + ``card.json`` (+ ``history.csv``,
``predictions.csv``). Saving is atomic per file; loading never unpickles anything.

Finding and validating folders (cards and safetensors headers) lives in :mod:`fvcore.catalog`
and is re-exported here. torch is imported by the functions that save or load weights, not by
importing this module, so the app lists the zoo without it."""
from __future__ import annotations

import csv
import errno
import os
import tempfile
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from fvcore.card import ModelCard
from fvcore.catalog import (CARD, HISTORY, PREDICTIONS, TRAIN_STATE, WEIGHTS, Entry,  # noqa: F401
                            Problem, checkpoint_folders, datasets, get_spec_or_raise, read_entry,
                            read_safetensors_header, scan)
from fvcore.errors import CheckpointError, FvError

if TYPE_CHECKING:
    from torch import nn

    from fvcore.classifier import Classifier

HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")
TEMP_SUFFIX = ".tmp"


class WriteError(FvError, OSError):
    """A file that could not be written (disk full, read-only folder); the old file is kept.
    Also an OSError, so callers that fall back on I/O failures still do."""


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: never half a file.

    A failure (a full disk, a read-only folder) raises :class:`WriteError` naming the file and
    leaves the previous ``path`` untouched and no temporary file behind.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        if not isinstance(exc, OSError) or isinstance(exc, FvError):
            raise
        hint = "the disk is full; free some space" if exc.errno == errno.ENOSPC else \
            "check the folder is writable"
        error = WriteError(f"cannot write {path.name}: {exc.strerror or exc} ({hint}); "
                           "the previous file, if any, is unchanged", source=str(path.parent))
        error.errno = exc.errno
        raise error from None


def remove_temp_files(folder: str | Path) -> list[Path]:
    """Delete what a killed :func:`atomic_write` left in ``folder`` and its ``.train/``
    (``.<name>.<random>.tmp``); returns the deleted paths."""
    folder = Path(folder)
    stale = [p for d in (folder, folder / TRAIN_STATE) if d.is_dir()
             for p in d.glob(f".*{TEMP_SUFFIX}") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def save_weights(path: Path, model: nn.Module, *, half: bool = True) -> None:
    """Write a model's state dict as safetensors (float16 when ``half``), atomically."""
    from safetensors.torch import save

    state = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu().contiguous()
        state[key] = value.half() if half and value.is_floating_point() else value
    atomic_write(path, save(state))


def rows_to_csv(rows: Sequence[dict], columns: Sequence[str]) -> str:
    """CSV text with a header row from a list of dicts."""
    import io
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def save_checkpoint(folder: str | Path, model: nn.Module, card: ModelCard, *,
                    history: Optional[Sequence[dict]] = None,
                    predictions: Optional[str] = None, half: bool = True) -> Path:
    """Write a checkpoint folder. Weights go first and the card last, each atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(folder / WEIGHTS, model, half=half)
    if history is not None:
        atomic_write(folder / HISTORY, rows_to_csv(history, HISTORY_COLUMNS))
    if predictions is not None:
        atomic_write(folder / PREDICTIONS, predictions)
    atomic_write(folder / CARD, card.to_json())
    return folder


def build_model(folder: Path, card: ModelCard) -> nn.Module:
    """The checkpoint's torch module: card -> create_model -> strict load of the weights."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from fvcore.architectures import create_model
    model, _ = create_model(card.arch, len(card.classes), image_size=card.image_size)
    try:
        state = {k: v.float() if v.is_floating_point() else v
                 for k, v in load_file(str(folder / WEIGHTS)).items()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"corrupt {WEIGHTS} ({str(exc)[:100]})", source=str(folder)) from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).split("\n\t")[1] if "\n\t" in str(exc) else str(exc)
        raise CheckpointError(f"weights do not match arch {card.arch}: {first[:160]}",
                              source=str(folder)) from None
    return model


def _build_unchanged(folder: Path, card: ModelCard, key: str) -> nn.Module:
    """build_model for a classifier that predicts from the export of the weights with cache key
    ``key``: they must still be those weights, or predictions and Grad-CAM would disagree."""
    from fvcore.fastpath import cache_key
    if cache_key(folder, card) != key:
        raise CheckpointError(f"{WEIGHTS} changed since the checkpoint was loaded; load it again",
                              source=str(folder))
    return build_model(folder, card)


def load_checkpoint(path: str | Path, *, name: str = "",
                    backend: Optional[str] = None) -> Classifier:
    """Load a checkpoint folder as a :class:`Classifier` (float32, eval mode).

    ``backend`` runs predictions on ``onnx`` (the cached ONNX Runtime fast path, falling back to
    PyTorch with a warning) or ``pytorch``; default ``$FVCORE_BACKEND``, else onnx when installed.
    With onnx and an export cached for exactly these weights, the torch module is built only when
    first used (Grad-CAM), so loading is quick and holds one copy of the weights; a load that
    exports drops the module once the export passed its parity check, for the same reason.

    Raises CheckpointError with a one-line reason for a missing file, a corrupt safetensors, an
    unknown architecture or a card that does not match the weights.
    """
    from fvcore.classifier import Classifier
    from fvcore.fastpath import (cache_key, cached_export, default_backend, release_free_memory,
                                 use_backend)
    folder = Path(path)
    card = read_entry(folder).card
    backend = backend or default_backend()
    onnx = backend == "onnx"
    export = cached_export(folder, card) if onnx else None
    unchanged = partial(_build_unchanged, folder, card, cache_key(folder, card)) if onnx else None
    classifier = Classifier(None if export else build_model(folder, card), card,
                            name=name or folder.name, path=folder,
                            loader=unchanged if export else partial(build_model, folder, card))
    if use_backend(classifier, backend) == "onnx" and not export:
        classifier.release_model(unchanged)  # exported and parity-checked: not needed until CAM
        release_free_memory()
    return classifier


def discover(root: str | Path, *, backend: Optional[str] = None
             ) -> tuple[list[Classifier], list[Problem]]:
    """Load every checkpoint under ``root``; the ones that fail are returned as problems."""
    entries, problems = scan(root)
    classifiers = []
    for entry in entries:
        try:
            classifiers.append(load_checkpoint(entry.path, name=entry.name, backend=backend))
        except FvError as exc:
            problems.append(Problem(entry.name, exc.reason))
    return classifiers, problems

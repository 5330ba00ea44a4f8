"""Checkpoint folders: ``model.safetensors`` + ``card.json`` (+ ``history.csv``,
``predictions.csv``). Saving is atomic per file; loading never unpickles anything."""
from __future__ import annotations

import csv
import errno
import os
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Iterable, Optional, Sequence

from torch import nn

from fvcore.architectures import create_model, get_spec
from fvcore.card import ModelCard
from fvcore.classifier import Classifier
from fvcore.errors import CheckpointError, FvError
from fvcore.fastpath import cache_key, cached_export, default_backend, use_backend

WEIGHTS, CARD, HISTORY, PREDICTIONS = ("model.safetensors", "card.json", "history.csv",
                                       "predictions.csv")
HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")
TEMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class Problem:
    """A checkpoint folder that was skipped, and why (one line)."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class Entry:
    """A checkpoint folder whose card and weight header are valid; weights not loaded yet."""

    name: str          # path relative to the discovery root, e.g. "grocery-produce/resnet50"
    path: Path
    card: ModelCard


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
    stale = [p for d in (folder, folder / ".train") if d.is_dir()
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
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
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


def _check_header(folder: Path, card: ModelCard) -> None:
    """Validate the safetensors header against the card without reading the tensors."""
    from safetensors import SafetensorError, safe_open
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"missing {WEIGHTS}", source=str(folder))
    try:
        with safe_open(str(weights), framework="pt") as handle:
            keys = set(handle.keys())
            head = f"{get_spec(card.arch).head_prefix}.5.weight"
            if head not in keys:
                raise CheckpointError(f"{WEIGHTS} has no classifier tensor {head!r}: "
                                      f"weights are not a {card.arch}", source=str(folder))
            outputs = handle.get_slice(head).get_shape()[0]
    except SafetensorError as exc:
        raise CheckpointError(f"corrupt {WEIGHTS} ({str(exc)[:100]})", source=str(folder)) from None
    except OSError as exc:
        raise CheckpointError(f"cannot read {WEIGHTS} ({exc})", source=str(folder)) from None
    if outputs != len(card.classes):
        raise CheckpointError(f"card/weights mismatch: card lists {len(card.classes)} classes, "
                              f"weights have {outputs} outputs", source=str(folder))


def read_entry(folder: str | Path, *, root: Optional[Path] = None) -> Entry:
    """Validate a checkpoint folder's card and weight header (cheap: no tensors are read)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError("not a checkpoint folder", source=str(folder))
    card = ModelCard.read(folder)
    get_spec_or_raise(card, folder)
    _check_header(folder, card)
    name = folder.relative_to(root).as_posix() if root else folder.name
    return Entry(name or folder.name, folder, card)


def get_spec_or_raise(card: ModelCard, folder: Path) -> None:
    try:
        get_spec(card.arch)
    except FvError as exc:
        raise CheckpointError(str(exc), source=str(folder)) from None


def build_model(folder: Path, card: ModelCard) -> nn.Module:
    """The checkpoint's torch module: card -> create_model -> strict load of the weights."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
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
    first used (Grad-CAM), so loading is quick and holds one copy of the weights.

    Raises CheckpointError with a one-line reason for a missing file, a corrupt safetensors, an
    unknown architecture or a card that does not match the weights.
    """
    folder = Path(path)
    card = read_entry(folder).card
    backend = backend or default_backend()
    export = cached_export(folder, card) if backend == "onnx" else None
    loader = partial(_build_unchanged, folder, card, cache_key(folder, card)) if export else \
        partial(build_model, folder, card)
    classifier = Classifier(None if export else build_model(folder, card), card,
                            name=name or folder.name, path=folder, loader=loader)
    use_backend(classifier, backend)
    return classifier


def checkpoint_folders(root: str | Path) -> list[Path]:
    """Every folder under ``root`` (recursively, sorted) holding a card or a weights file."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = {p.parent for pattern in (CARD, WEIGHTS) for p in root.rglob(pattern)
             if not any(part.startswith(".") for part in p.relative_to(root).parts)}
    return sorted(found)


def scan(root: str | Path) -> tuple[list[Entry], list[Problem]]:
    """Cheaply validate every checkpoint under ``root``: (good entries, problems)."""
    root = Path(root)
    entries, problems = [], []
    for folder in checkpoint_folders(root):
        try:
            entries.append(read_entry(folder, root=root))
        except FvError as exc:
            problems.append(Problem(folder.relative_to(root).as_posix() or ".", exc.reason))
    return entries, problems


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


def datasets(entries: Iterable[Entry]) -> dict[str, list[Entry]]:
    """Group entries by the dataset named in their cards (sorted by dataset, then name)."""
    groups: dict[str, list[Entry]] = {}
    for entry in sorted(entries, key=lambda e: (e.card.dataset, e.name)):
        groups.setdefault(entry.card.dataset, []).append(entry)
    return groups

"""Checkpoint folders: ``model.safetensors`` + ``card.json`` (+ ``history.csv``,
``predictions.csv``). Saving is atomic per file; loading never unpickles anything.

Finding and validating folders (cards and safetensors headers) lives in
:mod:`fvcore.checkpoints.catalog`; turning a folder into a classifier in
:mod:`fvcore.inference.loading`. torch is imported by the functions that save or load weights, not
by importing this module, so the app lists the zoo without it."""
from __future__ import annotations

import csv
import errno
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from fvcore.checkpoints.card import ModelCard
from fvcore.checkpoints.catalog import (
    CARD,
    DOMAIN_ACC,
    HISTORY,
    HISTORY_COLUMNS,
    PREDICTIONS,
    TRAIN_STATE,
    WEIGHTS,
)
from fvcore.errors import CheckpointError, FvError
from fvcore.models.foreign import build_foreign, is_foreign
from fvcore.models.registry import create_model

if TYPE_CHECKING:
    from torch import nn

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


def history_csv(rows: Sequence[dict]) -> str:
    """``history.csv`` text: the fixed :data:`HISTORY_COLUMNS`, then each ``val_acc:<domain>``
    column the rows have (a run on several dataset folders; older rows leave them empty)."""
    domains = dict.fromkeys(k for row in rows for k in row if k.startswith(DOMAIN_ACC))
    return rows_to_csv(rows, [*HISTORY_COLUMNS, *domains])


def save_checkpoint(folder: str | Path, model: nn.Module, card: ModelCard, *,
                    history: Optional[Sequence[dict]] = None,
                    predictions: Optional[str] = None, half: bool = True) -> Path:
    """Write a checkpoint folder. Weights go first and the card last, each atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(folder / WEIGHTS, model, half=half)
    if history is not None:
        atomic_write(folder / HISTORY, history_csv(history))
    if predictions is not None:
        atomic_write(folder / PREDICTIONS, predictions)
    atomic_write(folder / CARD, card.to_json())
    return folder


def build_model(folder: Path, card: ModelCard) -> nn.Module:
    """The checkpoint's torch module: card -> create_model (or, for an imported torchvision/timm
    model, the library's builder with the card's head) -> strict load of the weights; float32,
    eval mode, no gradients."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if is_foreign(card.arch):
        model = build_foreign(card.arch, card.builder)
    else:
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
    return model.float().eval().requires_grad_(False)

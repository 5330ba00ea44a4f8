"""The checkpoint catalog: find checkpoint folders and validate each one's card and safetensors
header without reading a tensor, and without importing torch (the Home page and the sidebar list
the whole zoo from this alone; :mod:`fvcore.checkpoints.folder` loads the weights).

A safetensors file is an 8-byte little-endian header length, a JSON header (tensor name ->
dtype, shape, byte offsets into the data) and the data. The header is checked the way the
``safetensors`` library checks it before handing out a tensor: size limit, UTF-8 JSON object,
known dtypes, offsets that tile the data exactly and a file of exactly that length.
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

from fvcore.checkpoints.card import ModelCard
from fvcore.errors import CheckpointError, FvError
from fvcore.models.foreign import head_weight_key, is_foreign
from fvcore.models.registry import get_spec
from fvcore.walk import walk

WEIGHTS, CARD, HISTORY, PREDICTIONS = ("model.safetensors", "card.json", "history.csv",
                                       "predictions.csv")
HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")
"""The columns of ``history.csv``, one row per epoch."""
DOMAIN_ACC = "val_acc:"
"""Prefix of a history column of validation accuracy on one source (test domain) of a run
trained on several dataset folders, e.g. ``val_acc:produce-wild``."""
TRAIN_STATE = ".train"
"""The sub-folder a training run keeps its resume state in; gone once the run has finished."""
MAX_HEADER_BYTES = 100_000_000   # the safetensors library refuses longer headers
DTYPE_BITS = {"BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
              "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32,
              "I64": 64, "U64": 64, "F64": 64, "C64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6}



def domain_accuracies(row: dict[str, Any]) -> dict[str, float]:
    """A history row's validation accuracy per source, ``{source: accuracy}``, from its
    ``val_acc:<source>`` keys (:data:`DOMAIN_ACC`); empty for a run on one folder."""
    return {k[len(DOMAIN_ACC):]: v for k, v in row.items() if k.startswith(DOMAIN_ACC)}


@functools.lru_cache(maxsize=256)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_sha256(folder: str | Path) -> str:
    """SHA-256 (hex) of a checkpoint folder's weights file, remembered per file size and
    modification time within a process; OSError when there is no weights file."""
    path = Path(folder) / WEIGHTS
    stat = path.stat()
    return _file_sha256(str(path), stat.st_size, stat.st_mtime_ns)


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


class HeaderError(ValueError):
    """A safetensors header that the safetensors library would refuse (the text says why)."""


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tensor_info(name: str, info: Any) -> tuple[int, int, int]:
    """One header entry -> (start, end, expected byte size); raises HeaderError when malformed."""
    if not isinstance(info, dict):
        raise HeaderError(f"tensor {name[:40]!r} is not described by an object")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in DTYPE_BITS:
        raise HeaderError(f"tensor {name[:40]!r} has unknown dtype {str(dtype)[:20]!r}")
    if not isinstance(shape, list) or not all(_count(d) for d in shape):
        raise HeaderError(f"tensor {name[:40]!r} has an invalid shape")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_count(o) for o in offsets):
        raise HeaderError(f"tensor {name[:40]!r} has invalid data offsets")
    bits = DTYPE_BITS[dtype]
    for dim in shape:
        bits *= dim
    if bits % 8:
        raise HeaderError(f"tensor {name[:40]!r} does not fill whole bytes")
    return offsets[0], offsets[1], bits // 8


def read_safetensors_header(path: str | Path) -> dict[str, dict[str, Any]]:
    """The validated header of a safetensors file: tensor name -> {dtype, shape, data_offsets}.

    Reads the header bytes only. Raises HeaderError (a corrupt, truncated or oversized file)
    or OSError (an unreadable one)."""
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise HeaderError("header too small")
        length = int.from_bytes(prefix, "little")
        if length > MAX_HEADER_BYTES:
            raise HeaderError("header too large")
        if 8 + length > size:
            raise HeaderError("header longer than the file")
        raw = handle.read(length)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HeaderError("header is not UTF-8") from None
    if not text.startswith("{"):
        raise HeaderError("header is not a JSON object")
    try:
        header = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HeaderError(f"header is not valid JSON ({exc.msg})") from None
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (isinstance(metadata, dict) and all(
            isinstance(v, str) for v in metadata.values())):
        raise HeaderError("header __metadata__ is not a map of strings")
    end = 0
    for start, stop, nbytes, name in sorted((*_tensor_info(n, i), n) for n, i in header.items()):
        if start != end or stop < start or stop - start != nbytes:
            raise HeaderError(f"tensor {name[:40]!r} has inconsistent data offsets")
        end = stop
    if 8 + length + end != size:
        raise HeaderError("file size does not match the header (truncated?)")
    return header


def _check_header(folder: Path, card: ModelCard) -> None:
    """Validate the safetensors header against the card without reading the tensors."""
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"missing {WEIGHTS}", source=str(folder))
    try:
        header = read_safetensors_header(weights)
    except HeaderError as exc:
        raise CheckpointError(f"corrupt {WEIGHTS} ({str(exc)[:100]})", source=str(folder)) from None
    except OSError as exc:
        raise CheckpointError(f"cannot read {WEIGHTS} ({exc})", source=str(folder)) from None
    head = head_weight_key(card.builder) if is_foreign(card.arch) else \
        f"{get_spec(card.arch).head_prefix}.5.weight"
    shape = header.get(head, {}).get("shape")
    if not shape:
        raise CheckpointError(f"{WEIGHTS} has no classifier tensor {head!r}: "
                              f"weights are not a {card.arch}", source=str(folder))
    if shape[0] != len(card.classes):
        raise CheckpointError(f"card/weights mismatch: card lists {len(card.classes)} classes, "
                              f"weights have {shape[0]} outputs", source=str(folder))


def get_spec_or_raise(card: ModelCard, folder: Path) -> None:
    """The card's architecture must be registered, or a torchvision/timm model with the head the
    card describes (a CheckpointError naming the folder if not)."""
    if is_foreign(card.arch):
        return   # the card checked its builder when it was read
    try:
        get_spec(card.arch)
    except FvError as exc:
        raise CheckpointError(str(exc), source=str(folder)) from None


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


def checkpoint_folders(root: str | Path) -> tuple[list[Path], Optional[str]]:
    """Every folder under ``root`` (sorted) holding a card or a weights file, found by a bounded
    walk (:func:`fvcore.walk.walk`), and why the walk stopped early (None when it did not)."""
    found = walk(root, lambda name: name in (CARD, WEIGHTS))
    return sorted({p.parent for p in found.files}), found.truncated


@dataclass(frozen=True)
class Scan:
    """A scan's valid entries, the folders skipped and, when the walk stopped early, why (one
    line). Unpacks as ``entries, problems``."""

    entries: list[Entry]
    problems: list[Problem]
    truncated: Optional[str] = None

    def __iter__(self):
        return iter((self.entries, self.problems))


def scan(root: str | Path) -> Scan:
    """Cheaply validate every checkpoint under ``root`` (a bounded walk): entries, problems and
    whether the walk stopped early."""
    root = Path(root)
    entries, problems = [], []
    folders, truncated = checkpoint_folders(root)
    for folder in folders:
        try:
            entries.append(read_entry(folder, root=root))
        except FvError as exc:
            problems.append(Problem(folder.relative_to(root).as_posix() or ".", exc.reason))
    return Scan(entries, problems, truncated)


def datasets(entries: Iterable[Entry]) -> dict[str, list[Entry]]:
    """Group entries by the dataset named in their cards (sorted by dataset, then name)."""
    groups: dict[str, list[Entry]] = {}
    for entry in sorted(entries, key=lambda e: (e.card.dataset, e.name)):
        groups.setdefault(entry.card.dataset, []).append(entry)
    return groups


def status_tag(entry: Entry) -> str:
    """``""`` for a checkpoint with test metrics, else ``"training"`` (a resumable ``.train/``
    state beside it) or ``"not evaluated"``. Cheap: the card and one directory check."""
    if entry.card.metrics:
        return ""
    return "training" if (entry.path / TRAIN_STATE).is_dir() else "not evaluated"

"""Image-folder datasets: split discovery, carving missing splits with a fixed seed, class groups,
a fingerprint for the run registry, and finding a stored prediction's image again. No torch here:
the training Dataset lives in :mod:`fvcore.training.data`; several folders are combined by
:mod:`fvcore.datasets.combine`."""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from fvcore.errors import FvError
from fvcore.walk import Walk, walk

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
SPLIT_NAMES = {"train": ("train",), "validation": ("validation", "val", "valid"), "test": ("test",)}
SPLITS = tuple(SPLIT_NAMES)

Sample = tuple[Path, int]
Named = tuple[Path, str]
"""An image and its class name: a folder's samples before the classes are numbered."""


def list_images(folder: Path) -> list[Path]:
    """Image files directly or recursively under ``folder``, sorted, hidden files skipped."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def find_images(folder: Path) -> Walk:
    """Image files under a folder someone else chose (a sample folder, a data root), by a bounded
    walk: no symlink out of it, at most :data:`fvcore.walk.MAX_ENTRIES` entries, and why it
    stopped early."""
    return walk(folder, lambda name: Path(name).suffix.lower() in IMAGE_SUFFIXES)


def class_folders(split_dir: Path) -> dict[str, list[Path]]:
    """Class name -> its images, for one split folder of class sub-folders."""
    classes = {d.name: list_images(d) for d in sorted(split_dir.iterdir())
               if d.is_dir() and not d.name.startswith(".")}
    if not classes:
        raise FvError("no class folders (expected one sub-folder of images per class)",
                      source=str(split_dir))
    empty = [name for name, files in classes.items() if not files]
    if empty:
        raise FvError(f"class folder without images: {', '.join(empty)}", source=str(split_dir))
    return classes


def labelled_samples(split_dir: Path, classes: Sequence[str]) -> list[Sample]:
    """The images of a split folder labelled by their index in ``classes`` (a model's classes);
    a class folder the list lacks is an error."""
    folders = class_folders(split_dir)
    unknown = sorted(set(folders) - set(classes))
    if unknown:
        raise FvError(f"classes the model does not know: {', '.join(unknown)}",
                      source=str(split_dir))
    index = {c: i for i, c in enumerate(classes)}
    return [(p, index[c]) for c in sorted(folders) for p in folders[c]]


@dataclass(frozen=True)
class Source:
    """One dataset folder of a :class:`DataSplits`: its name and root, the size of each split
    and where each split came from."""

    name: str
    root: Path
    counts: dict[str, int]
    provenance: dict[str, str]


@dataclass
class DataSplits:
    """A dataset's classes, groups and the samples of each split; ``sources`` are the folders it
    was read from and ``domains`` their test splits, kept apart (one per source)."""

    name: str
    root: Path
    classes: list[str]
    groups: dict[str, str]
    splits: dict[str, list[Sample]]
    provenance: dict[str, str] = field(default_factory=dict)   # split -> where it came from
    carved: dict[str, list[str]] = field(default_factory=dict)  # split -> relative paths carved
    sources: list[Source] = field(default_factory=list)
    domains: dict[str, list[Sample]] = field(default_factory=dict)  # source -> its test split

    def fingerprint(self) -> str:
        """Hash of every split's relative paths, sizes and labels: same data, same fingerprint."""
        digest = hashlib.sha256()
        for split in sorted(self.splits):
            for path, label in self.splits[split]:
                digest.update(f"{split}|{self.relative(path)}|{path.stat().st_size}|{label}\n"
                              .encode())
        return digest.hexdigest()[:16]

    def relative(self, path: Path) -> str:
        """A sample's path as cards and predictions name it: relative to the dataset root, or
        ``<source folder>/<split>/<class>/<file>`` when several folders were combined."""
        if len(self.sources) > 1:
            for source in self.sources:
                if path.is_relative_to(source.root):
                    return f"{source.name}/{path.relative_to(source.root).as_posix()}"
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()

    @property
    def test_domains(self) -> dict[str, list[Sample]]:
        """Test samples per domain (source folder name), in the order of the sources."""
        return self.domains or {self.name: self.splits["test"]}


@dataclass(frozen=True)
class FolderSplits:
    """One dataset folder read by :func:`load_splits`' rules, classes not yet numbered: each
    split's (image, class name) pairs, where each split came from and the classes.json groups."""

    root: Path
    classes: list[str]          # the classes of its train/ folder
    splits: dict[str, list[Named]]
    provenance: dict[str, str]
    groups: dict[str, str]


def _find(root: Path, split: str) -> Optional[Path]:
    for name in SPLIT_NAMES[split]:
        if (root / name).is_dir():
            return root / name
    return None


def _carve(samples: list[Named], fraction: float, seed: int) -> tuple[list[Named], list[Named]]:
    """Stratified split: ``fraction`` of every class (at least one image) goes second."""
    rng = random.Random(seed)
    by_class: dict[str, list[Named]] = {}
    for sample in samples:
        by_class.setdefault(sample[1], []).append(sample)
    keep, carved = [], []
    for label in sorted(by_class):
        items = sorted(by_class[label])
        rng.shuffle(items)
        n = max(1, round(len(items) * fraction)) if len(items) > 1 else 0
        carved += items[:n]
        keep += items[n:]
    return sorted(keep), sorted(carved)


def read_folder(root: str | Path, *, val_fraction: float = 0.15, test_fraction: float = 0.2,
                seed: int = 0, strict: bool = True) -> FolderSplits:
    """One dataset folder's splits by :func:`load_splits`' rules; ``strict`` also refuses class
    folders in validation/ or test/ that train/ lacks (a combined set checks its union instead)."""
    root = Path(root)
    if not root.is_dir():
        raise FvError("dataset folder not found", source=str(root))
    train_dir = _find(root, "train")
    if train_dir is None:
        raise FvError("no train/ folder (expected train/, validation/ or val/, test/ with one "
                      "folder per class)", source=str(root))
    train = class_folders(train_dir)
    classes = sorted(train)
    if strict and len(classes) < 2:
        raise FvError(f"need at least 2 classes, found {len(classes)}", source=str(train_dir))

    def samples_of(split_dir: Path) -> list[Named]:
        folders = class_folders(split_dir)
        unknown = sorted(set(folders) - set(classes))
        if unknown and strict:
            raise FvError(f"classes not in train/: {', '.join(unknown)}", source=str(split_dir))
        return [(p, c) for c in sorted(folders) for p in folders[c]]

    splits = {"train": [(p, c) for c in classes for p in train[c]]}
    provenance = {"train": f"{train_dir.name}/"}
    val_dir, test_dir = _find(root, "validation"), _find(root, "test")
    if test_dir is None and val_dir is not None:
        test_dir, val_dir = val_dir, None
        provenance["test"] = f"{test_dir.name}/ (the dataset has no test split)"
    elif test_dir is not None:
        provenance["test"] = f"{test_dir.name}/"
    if test_dir is not None:
        splits["test"] = samples_of(test_dir)
    else:
        splits["train"], splits["test"] = _carve(splits["train"], test_fraction, seed)
        provenance["test"] = f"carved from train: {test_fraction:.0%}, stratified, seed {seed}"
    if val_dir is not None:
        splits["validation"] = samples_of(val_dir)
        provenance["validation"] = f"{val_dir.name}/"
    else:
        splits["train"], splits["validation"] = _carve(splits["train"], val_fraction, seed + 1)
        provenance["validation"] = (f"carved from train: {val_fraction:.0%}, stratified, "
                                    f"seed {seed + 1}")
    return FolderSplits(root, classes, splits, provenance, read_groups(root))


def numbered(folder: FolderSplits, classes: Sequence[str]) -> dict[str, list[Sample]]:
    """A folder's splits with each class name replaced by its index in ``classes``."""
    index = {c: i for i, c in enumerate(classes)}
    return {split: [(p, index[c]) for p, c in samples] for split, samples in folder.splits.items()}


def load_splits(root: str | Path, *, val_fraction: float = 0.15, test_fraction: float = 0.2,
                seed: int = 0) -> DataSplits:
    """Read an image-folder dataset with ``train/``, ``validation/`` (or ``val/``), ``test/``.

    A missing test split is taken from ``val/`` when there is one (and validation is then carved
    from train), else carved from train; a missing validation split is carved from train. Carving
    is stratified with a fixed ``seed`` and recorded. ``classes.json`` beside the splits may give
    ``{"groups": {class: group}}``.
    """
    folder = read_folder(root, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    root, classes, provenance = folder.root, folder.classes, folder.provenance
    splits = numbered(folder, classes)
    groups = {c: folder.groups[c] for c in classes if c in folder.groups}
    source = Source(root.name, root, {k: len(v) for k, v in splits.items()}, dict(provenance))
    data = DataSplits(root.name, root, classes, groups, splits, provenance, sources=[source],
                      domains={root.name: splits["test"]})
    for split in ("validation", "test"):
        if provenance[split].startswith("carved"):
            data.carved[split] = [data.relative(p) for p, _ in splits[split]]
        missing = sorted(set(classes) - {classes[label] for _, label in splits[split]})
        if missing:
            raise FvError(f"{split} split has no images of: {', '.join(missing)}", source=str(root))
    return data


def read_groups(root: Path) -> dict[str, str]:
    """The ``{class: group}`` map of a dataset folder's ``classes.json`` (empty without one)."""
    path = root / "classes.json"
    if not path.is_file():
        return {}
    try:
        groups = json.loads(path.read_text(encoding="utf-8")).get("groups", {})
        return {str(c): str(g) for c, g in groups.items()}
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
        raise FvError(f"classes.json is not valid ({exc})", source=str(path)) from None


def resolve_image(relative: str, dataset: str, roots: Sequence[Path]) -> Optional[Path]:
    """A stored prediction's image path (relative to its dataset root) on this machine, or None.
    Each root may hold ``<dataset>/`` folders or be a dataset root itself."""
    rel = Path(relative)
    if rel.is_absolute():
        return rel if rel.is_file() else None
    for root in roots:
        for candidate in (root / dataset / rel, root / rel):
            if candidate.is_file():
                return candidate
    return None

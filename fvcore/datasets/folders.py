"""Image-folder datasets: split discovery, carving missing splits with a fixed seed, class groups,
a fingerprint for the run registry, and finding a stored prediction's image again. No torch here:
the training Dataset lives in :mod:`fvcore.training.data`."""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from fvcore.errors import FvError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
SPLIT_NAMES = {"train": ("train",), "validation": ("validation", "val", "valid"), "test": ("test",)}

Sample = tuple[Path, int]


def list_images(folder: Path) -> list[Path]:
    """Image files directly or recursively under ``folder``, sorted, hidden files skipped."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


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


@dataclass
class DataSplits:
    """A dataset's classes, groups and the samples of each split."""

    name: str
    root: Path
    classes: list[str]
    groups: dict[str, str]
    splits: dict[str, list[Sample]]
    provenance: dict[str, str] = field(default_factory=dict)   # split -> where it came from
    carved: dict[str, list[str]] = field(default_factory=dict)  # split -> relative paths carved

    def fingerprint(self) -> str:
        """Hash of every split's relative paths, sizes and labels: same data, same fingerprint."""
        digest = hashlib.sha256()
        for split in sorted(self.splits):
            for path, label in self.splits[split]:
                digest.update(f"{split}|{self.relative(path)}|{path.stat().st_size}|{label}\n"
                              .encode())
        return digest.hexdigest()[:16]

    def relative(self, path: Path) -> str:
        """A sample's path relative to the dataset root (how cards and predictions name it)."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()


def _find(root: Path, split: str) -> Optional[Path]:
    for name in SPLIT_NAMES[split]:
        if (root / name).is_dir():
            return root / name
    return None


def _carve(samples: list[Sample], fraction: float,
           seed: int) -> tuple[list[Sample], list[Sample]]:
    """Stratified split: ``fraction`` of every class (at least one image) goes second."""
    rng = random.Random(seed)
    by_class: dict[int, list[Sample]] = {}
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


def load_splits(root: str | Path, *, val_fraction: float = 0.15, test_fraction: float = 0.2,
                seed: int = 0) -> DataSplits:
    """Read an image-folder dataset with ``train/``, ``validation/`` (or ``val/``), ``test/``.

    A missing test split is taken from ``val/`` when there is one (and validation is then carved
    from train), else carved from train; a missing validation split is carved from train. Carving
    is stratified with a fixed ``seed`` and recorded. ``classes.json`` beside the splits may give
    ``{"groups": {class: group}}``.
    """
    root = Path(root)
    if not root.is_dir():
        raise FvError("dataset folder not found", source=str(root))
    train_dir = _find(root, "train")
    if train_dir is None:
        raise FvError("no train/ folder (expected train/, validation/ or val/, test/ with one "
                      "folder per class)", source=str(root))
    train = class_folders(train_dir)
    classes = sorted(train)
    if len(classes) < 2:
        raise FvError(f"need at least 2 classes, found {len(classes)}", source=str(train_dir))
    index = {name: i for i, name in enumerate(classes)}

    def samples_of(split_dir: Path) -> list[Sample]:
        folders = class_folders(split_dir)
        unknown = sorted(set(folders) - set(classes))
        if unknown:
            raise FvError(f"classes not in train/: {', '.join(unknown)}", source=str(split_dir))
        return [(p, index[c]) for c in sorted(folders) for p in folders[c]]

    splits = {"train": [(p, index[c]) for c in classes for p in train[c]]}
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
    data = DataSplits(root.name, root, classes, _groups(root, classes), splits, provenance)
    for split in ("validation", "test"):
        if provenance[split].startswith("carved"):
            data.carved[split] = [data.relative(p) for p, _ in splits[split]]
        missing = sorted(set(classes) - {classes[label] for _, label in splits[split]})
        if missing:
            raise FvError(f"{split} split has no images of: {', '.join(missing)}", source=str(root))
    return data


def _groups(root: Path, classes: Sequence[str]) -> dict[str, str]:
    path = root / "classes.json"
    if not path.is_file():
        return {}
    try:
        groups = json.loads(path.read_text(encoding="utf-8")).get("groups", {})
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
        raise FvError(f"classes.json is not valid ({exc})", source=str(path)) from None
    return {c: str(groups[c]) for c in classes if c in groups}


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

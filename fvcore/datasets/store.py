"""The datasets under the data roots (``$FVCORE_DATA``): listing them with their counts, and
adding one from an uploaded zip (the safe extraction of :mod:`fvcore.datasets.zipdata`) or from
a folder on the server (copied, or referenced by a symbolic link). A new dataset goes under the
first data root with a validated name, atomically: it is built in a hidden temporary folder
beside its place and renamed into it, so a failure leaves nothing behind."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Optional, Sequence

from fvcore import settings
from fvcore.datasets.folders import IMAGE_SUFFIXES, SPLIT_NAMES, list_images
from fvcore.datasets.health import find_splits
from fvcore.datasets.zipdata import MAX_FILES, MAX_TOTAL_BYTES, extract_labelled_zip
from fvcore.errors import FvError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""A dataset name: a letter or digit, then up to 63 letters, digits, '-', '_' or '.'."""
_SPLIT_FOLDERS = {name for names in SPLIT_NAMES.values() for name in names}


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset folder under a data root: its name, folder, classes and images per split
    folder (files with an image suffix, not yet checked)."""

    name: str
    path: Path
    classes: tuple[str, ...]
    counts: dict[str, int]
    linked: bool = False

    @property
    def n_images(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Added:
    """A dataset just stored: its folder, how it got there and the files left out, each as
    ``(name, reason)``."""

    name: str
    path: Path
    how: str
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return f"Added dataset {self.name} ({self.how})"


def check_name(name: str) -> str:
    """``name`` stripped, or FvError: no path separator, no '..', nothing hidden."""
    clean = name.strip()
    if not NAME.fullmatch(clean) or ".." in clean:
        raise FvError(f"dataset name {clean!r} is not allowed: use letters, digits, '-', '_' or "
                      "'.' (at most 64, no path separators, no '..', not starting with '.')")
    return clean


def describe(folder: Path) -> DatasetInfo:
    """A dataset folder's classes and image counts per split folder (a quick look: suffixes)."""
    counts, classes = {}, set()
    for path in find_splits(folder).values():
        dirs = [d for d in sorted(path.iterdir()) if d.is_dir() and not d.name.startswith(".")]
        classes.update(d.name for d in dirs)
        counts["train" if path == folder else path.name] = sum(len(list_images(d)) for d in dirs)
    return DatasetInfo(folder.name, folder, tuple(sorted(classes)), counts, folder.is_symlink())


def list_datasets(roots: Optional[Sequence[Path]] = None) -> list[DatasetInfo]:
    """Every dataset under the data roots (a root may itself be one), first root first; a name
    found twice is listed once (the first, as every page finds it)."""
    found: dict[str, DatasetInfo] = {}
    for root in settings.data_roots() if roots is None else roots:
        if not root.is_dir():
            continue
        folders = [root] if any((root / s).is_dir() for s in _SPLIT_FOLDERS) else sorted(
            p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        for folder in folders:
            if folder.name not in found and any((folder / s).is_dir() for s in _SPLIT_FOLDERS):
                found[folder.name] = describe(folder)
    return list(found.values())


def target(name: str, *, replace: bool = False, root: Optional[Path] = None) -> Path:
    """Where a new dataset ``name`` goes (the first data root); FvError when the name is taken
    (and ``replace`` not asked, or the dataset is under another root)."""
    name = check_name(name)
    roots = settings.data_roots()
    first = Path(root) if root is not None else roots[0]
    if any((first / s).is_dir() for s in _SPLIT_FOLDERS):
        raise FvError(f"the data root {first.name}/ is itself a dataset: set "
                      f"{settings.ENV_DATA} to a folder that holds datasets")
    for other in [first, *roots]:
        place = other / name
        if place.exists() or place.is_symlink():
            if other != first or not replace:
                raise FvError(f"a dataset named {name!r} already exists" +
                              ("; tick Replace to overwrite it" if other == first else
                               " under another data root; choose another name"))
    return first / name


def _install(built: Path, place: Path) -> None:
    """Rename ``built`` into ``place``; an existing ``place`` is renamed aside first and only
    deleted once the new one is in."""
    aside = place.with_name(f".{place.name}.old-{uuid.uuid4().hex[:8]}")
    if place.exists() or place.is_symlink():
        place.rename(aside)
    try:
        built.rename(place)
    except OSError:
        if aside.exists() or aside.is_symlink():
            aside.rename(place)
        raise
    if aside.is_symlink():
        aside.unlink()
    elif aside.exists():
        shutil.rmtree(aside, ignore_errors=True)


def _workspace(place: Path) -> Path:
    place.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{place.name}.adding-", dir=place.parent))


def _arrange(level: Path, out: Path) -> None:
    """Move an extracted or copied tree into ``out``: split folders as they are, class folders
    only as ``out/train/``; FvError for a mix of both."""
    dirs = [d for d in level.iterdir() if d.is_dir()]
    splits = [d for d in dirs if d.name in _SPLIT_FOLDERS]
    if splits and len(splits) < len(dirs):
        others = sorted(d.name for d in dirs if d.name not in _SPLIT_FOLDERS)
        raise FvError(f"split folders ({', '.join(sorted(d.name for d in splits))}) mixed with "
                      f"other folders ({', '.join(others[:5])}): use train/, validation/, test/ "
                      "each with class folders, or class folders only")
    if not any(s.name in SPLIT_NAMES["train"] for s in splits) and splits:
        raise FvError("split folders without train/: the classes are learnt from train/")
    out.mkdir()
    for d in splits or [level]:
        shutil.move(str(d), str(out / (d.name if splits else "train")))


def add_from_zip(source: bytes | BinaryIO | str | Path, name: str, *, replace: bool = False,
                 root: Optional[Path] = None, max_total_bytes: int = MAX_TOTAL_BYTES,
                 max_files: int = MAX_FILES) -> Added:
    """Store an uploaded zip (class folders, or train/, validation/, test/ with class folders)
    as dataset ``name``; unreadable images are left out and listed. Nothing is written when it
    fails."""
    place = target(name, replace=replace, root=root)
    work = _workspace(place)
    try:
        data = extract_labelled_zip(source, work / "zip", max_total_bytes=max_total_bytes,
                                    max_files=max_files)
        for rel, _ in data.skipped:   # unreadable images stay out of the stored dataset
            (work / "zip" / rel).unlink(missing_ok=True)
        _arrange(data.root, work / "data")
        _install(work / "data", place)
        return Added(place.name, place, "from a zip", list(data.skipped))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _copy_images(source: Path, out: Path) -> list[tuple[str, str]]:
    """Copy every image file (and classes.json) of ``source`` into ``out``; symbolic links and
    other files are left out and listed."""
    skipped = []
    for parent, dirs, files in os.walk(source):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(f for f in files if not f.startswith(".")):
            path = Path(parent) / name
            rel = path.relative_to(source)
            if path.is_symlink():
                skipped.append((rel.as_posix(), "symbolic link (not copied)"))
            elif path.suffix.lower() in IMAGE_SUFFIXES or rel.as_posix() == "classes.json":
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, out / rel)
            else:
                kind = path.suffix or "no suffix"
                skipped.append((rel.as_posix(), f"not an image file ({kind})"))
    return skipped


def add_from_folder(folder: str | Path, name: str, *, copy: bool = True, replace: bool = False,
                    root: Optional[Path] = None) -> Added:
    """Store a server folder as dataset ``name``: a copy of its images, or a symbolic link to it
    (``copy=False``: it must have a train/ folder already)."""
    source = Path(folder).expanduser()
    if not source.is_dir():
        raise FvError("folder not found", source=str(source))
    source = source.resolve()
    place = target(name, replace=replace, root=root)
    if place.resolve() == source or place.resolve() in source.parents:
        raise FvError("the folder is the dataset's own place", source=str(source))
    work = _workspace(place)
    try:
        if not copy:
            if not any((source / s).is_dir() for s in SPLIT_NAMES["train"]):
                raise FvError("a folder without train/ can be copied, not referenced (the copy "
                              "stores its class folders as train/)", source=str(source))
            (work / "link").symlink_to(source, target_is_directory=True)
            _install(work / "link", place)
            return Added(place.name, place, "a link to a server folder")
        skipped = _copy_images(source, work / "copy")
        if not (work / "copy").is_dir():
            raise FvError("no image files in the folder", source=str(source))
        groups = work / "copy" / "classes.json"
        if groups.is_file():
            groups.rename(work / "classes.json")
        _arrange(work / "copy", work / "data")
        if (work / "classes.json").is_file():
            (work / "classes.json").rename(work / "data" / "classes.json")
        _install(work / "data", place)
        return Added(place.name, place, "copied from a server folder", skipped)
    finally:
        shutil.rmtree(work, ignore_errors=True)

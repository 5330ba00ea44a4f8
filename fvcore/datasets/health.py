"""A dataset's health before any training: images per class and split, unreadable or unsupported
files, exact and near duplicates within and across splits (leakage), very small images, class
imbalance, and the problems that make it untrainable, each as one line. Every file is read and
hashed once (:mod:`fvcore.datasets.hashing`)."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from fvcore.datasets.folders import IMAGE_SUFFIXES, SPLIT_NAMES, SPLITS, load_splits
from fvcore.datasets.hashing import NEAR_DISTANCE, FileScan, groups, near_pairs, scan_files
from fvcore.errors import FvError

MIN_SIDE = 32
"""Images with a shorter side (in pixels) are listed as very small."""
IMBALANCE = 3.0
"""A largest/smallest train class ratio from which the imbalance is a warning."""
SAMPLES = 6
"""Sample images per class for the page's grid."""


@dataclass(frozen=True)
class FileIssue:
    """A file (relative to the dataset root) and what is wrong with it, in a few words."""

    path: str
    reason: str

    def line(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class Duplicates:
    """Files with the same content (``exact``) or almost the same picture (``near``: pHashes at
    most ``distance`` bits apart), with each file's split and class."""

    kind: str
    files: tuple[str, ...]
    splits: tuple[str, ...]
    classes: tuple[str, ...]
    distance: int = 0

    @property
    def leak(self) -> bool:
        """The same picture in more than one split: the test score would flatter the model."""
        return len(set(self.splits)) > 1

    def line(self) -> str:
        where = (f"across {' and '.join(sorted(set(self.splits)))} (leakage)" if self.leak
                 else f"within {self.splits[0]}")
        what = ("exact duplicates" if self.kind == "exact"
                else f"near duplicates (pHash distance {self.distance})")
        shown = ", ".join(self.files[:4]) + (f" and {len(self.files) - 4} more"
                                             if len(self.files) > 4 else "")
        labels = set(self.classes)
        return f"{what} {where}: {shown}" + (f"; labelled {', '.join(sorted(labels))}"
                                             if len(labels) > 1 else "")


@dataclass(frozen=True)
class HealthReport:
    """What :func:`dataset_health` found. ``counts`` is split -> class -> usable images;
    ``folders`` names each split's folder; ``blocking`` lists why it cannot be trained on."""

    name: str
    root: Path
    folders: dict[str, str]
    classes: tuple[str, ...]
    counts: dict[str, dict[str, int]]
    unreadable: tuple[FileIssue, ...] = ()
    small: tuple[FileIssue, ...] = ()
    duplicates: tuple[Duplicates, ...] = ()
    blocking: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    samples: dict[str, tuple[Path, ...]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def n_images(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())

    @property
    def split_sizes(self) -> dict[str, int]:
        """Usable images per split."""
        return {split: sum(per.values()) for split, per in self.counts.items()}

    @property
    def trainable(self) -> bool:
        return not self.blocking

    @property
    def imbalance(self) -> Optional[float]:
        """Largest over smallest train class (None with fewer than two non-empty classes)."""
        sizes = [n for n in self.counts.get("train", {}).values() if n]
        return max(sizes) / min(sizes) if len(sizes) > 1 else None

    @property
    def leaks(self) -> tuple[Duplicates, ...]:
        return tuple(d for d in self.duplicates if d.leak)

    def verdict(self) -> str:
        """One line: why it cannot be trained on, or that it can."""
        if self.blocking:
            return "cannot be trained on: " + "; ".join(self.blocking)
        return (f"ready to train: {len(self.classes)} classes, {self.n_images} images"
                + (f", {len(self.warnings())} warning(s)" if self.warnings() else ""))

    def table(self) -> list[dict]:
        """One row per class: its usable images in each split's folder, and the total."""
        rows = []
        for name in self.classes:
            row: dict = {"class": name}
            for split, folder in self.folders.items():
                row[folder] = self.counts.get(split, {}).get(name, 0)
            row["total"] = sum(v for k, v in row.items() if k != "class")
            rows.append(row)
        return rows

    def warnings(self) -> list[str]:
        """Every problem that does not stop training, one line each: leakage first."""
        lines = [d.line() for d in sorted(self.duplicates, key=lambda d: not d.leak)]
        ratio = self.imbalance
        if ratio is not None and ratio >= IMBALANCE:
            train = self.counts["train"]
            big = max(train, key=lambda c: train[c])
            few = min((c for c in train if train[c]), key=lambda c: train[c])
            lines.append(f"class imbalance: {ratio:.1f}x between {big} ({train[big]} train "
                         f"images) and {few} ({train[few]})")
        lines += [f"unreadable: {issue.line()}" for issue in self.unreadable]
        lines += [f"very small: {issue.line()}" for issue in self.small]
        return lines


def find_splits(root: Path) -> dict[str, Path]:
    """Split -> folder by :func:`fvcore.datasets.folders.load_splits`' names; a folder of class
    folders only is its own train split."""
    found = {}
    for split in SPLITS:
        for name in SPLIT_NAMES[split]:
            if (root / name).is_dir():
                found[split] = root / name
                break
    return found or {"train": root}


def _files(folder: Path) -> list[Path]:
    """Every file under ``folder``, hidden names skipped, no symlinked folder followed."""
    found = []
    for parent, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(parent) / f for f in sorted(files) if not f.startswith(".")]
    return found


def _notes(splits: dict[str, Path], root: Path) -> list[str]:
    if "test" not in splits and "validation" in splits:
        return [f"{splits['validation'].name}/ is used as the test split; validation is carved "
                "from train"]
    missing = [s for s in ("validation", "test") if s not in splits]
    return [f"{' and '.join(missing)} carved from train"] if missing else []


def _blocking(root: Path, splits: dict[str, Path], counts: dict[str, dict[str, int]]
              ) -> list[str]:
    """Why the dataset cannot be trained on, one line each (empty when it can)."""
    train = counts.get("train", {})
    if "train" not in splits:
        return ["no train/ folder: expected train/, validation/ (or val/), test/ with one folder "
                "per class, or class folders only"]
    if not any(train.values()):
        return ["no images: expected one folder of images per class (e.g. Apple/img1.jpg)"]
    classes = sorted(c for c, n in train.items() if n)
    problems = [f"class without usable images in {splits['train'].name}/: {c}"
                for c in sorted(train) if not train[c]]
    if len(classes) < 2:
        return problems + [f"fewer than two classes: found {len(classes)} ({', '.join(classes)}); "
                           "a classifier needs at least two"]
    for split in ("validation", "test"):
        if split not in splits:
            continue
        have = {c for c, n in counts.get(split, {}).items() if n}
        folder = splits[split].name
        if missing := sorted(set(classes) - have):
            problems.append(f"{folder}/ has no images of: {', '.join(missing)}")
        if extra := sorted(have - set(train)):
            problems.append(f"{folder}/ has classes that train/ lacks: {', '.join(extra)}")
    need = 1 + sum(s not in splits for s in ("validation", "test"))
    if need > 1 and (few := [c for c in classes if train[c] < need]):
        problems.append(f"too few images to carve validation/test from: {', '.join(few)} "
                        f"(need {need} per class)")
    if splits["train"] == root:
        problems.append("class folders without a train/ folder: training reads train/, "
                        "validation/ (or val/) and test/; add it as a copy to store them as train/")
    elif not problems:
        try:
            load_splits(root)
        except FvError as exc:   # the trainer's own rules, in case the checks above miss one
            problems.append(exc.reason)
    return problems


def _duplicates(scans: list[FileScan], where: dict[Path, tuple[str, str]], root: Path,
                max_distance: int) -> list[Duplicates]:
    def make(kind: str, members: list[FileScan], distance: int = 0) -> Duplicates:
        members = sorted(members, key=lambda s: s.path)
        return Duplicates(kind, tuple(s.path.relative_to(root).as_posix() for s in members),
                          tuple(where[s.path][0] for s in members),
                          tuple(where[s.path][1] for s in members), distance)

    by_digest: dict[str, list[FileScan]] = {}
    for scan in scans:
        by_digest.setdefault(scan.digest, []).append(scan)
    found = [make("exact", same) for same in by_digest.values() if len(same) > 1]
    unique = [same[0] for same in by_digest.values()]
    pairs = near_pairs([s.phash for s in unique], max_distance)
    distance = {}
    for i, _, d in pairs:
        distance[i] = max(distance.get(i, 0), d)
    for members in groups(len(unique), [(i, j) for i, j, _ in pairs]):
        found.append(make("near", [unique[i] for i in members],
                          max(distance.get(i, 0) for i in members)))
    return found


def dataset_health(root: str | Path, *, min_side: int = MIN_SIDE,
                   near_distance: int = NEAR_DISTANCE, samples: int = SAMPLES,
                   progress: Optional[Callable[[int, int], None]] = None) -> HealthReport:
    """Check a dataset folder (train/, validation/ or val/, test/ of class folders, or class
    folders only) and report everything found; only a missing folder raises."""
    start = time.perf_counter()
    root = Path(root)
    if not root.is_dir():
        raise FvError("dataset folder not found", source=str(root))
    splits = find_splits(root)
    where: dict[Path, tuple[str, str]] = {}
    unreadable: list[FileIssue] = []
    counts: dict[str, dict[str, int]] = {}
    for split, folder in splits.items():
        counts[split] = {d.name: 0 for d in sorted(folder.iterdir())
                         if d.is_dir() and not d.name.startswith(".")}
        for path in _files(folder):
            rel = path.relative_to(root).as_posix()
            if path.parent == folder:
                unreadable.append(FileIssue(rel, "file outside a class folder (ignored)"))
            elif path.suffix.lower() not in IMAGE_SUFFIXES:
                kind = path.suffix or "no suffix"
                unreadable.append(FileIssue(rel, f"not an image file ({kind})"))
            else:
                where[path] = (split, path.relative_to(folder).parts[0])
    scans = scan_files(sorted(where), progress=progress)
    good = [s for s in scans if s.ok]
    unreadable += [FileIssue(s.path.relative_to(root).as_posix(), s.error or "") for s in scans
                   if not s.ok]
    small = [FileIssue(s.path.relative_to(root).as_posix(),
                       f"{s.size[0]}x{s.size[1]} pixels, under {min_side} px")
             for s in good if min(s.size) < min_side]
    picks: dict[str, list[Path]] = {}
    for scan in good:
        split, name = where[scan.path]
        counts[split][name] += 1
        if split == "train":
            picks.setdefault(name, []).append(scan.path)
    classes = tuple(sorted({c for per in counts.values() for c in per}))
    chosen = {c: tuple(files[i * len(files) // samples] for i in range(min(samples, len(files))))
              for c, files in picks.items()}
    return HealthReport(
        name=root.name, root=root,
        folders={s: ("(class folders)" if f == root else f"{f.name}/") for s, f in splits.items()},
        classes=classes, counts=counts, unreadable=tuple(unreadable), small=tuple(small),
        duplicates=tuple(_duplicates(good, where, root, near_distance)),
        blocking=tuple(_blocking(root, splits, counts)), notes=tuple(_notes(splits, root)),
        samples=chosen, seconds=time.perf_counter() - start)

"""Several dataset folders as one: each read by :func:`~fvcore.datasets.folders.load_splits`' rules,
classes matched by name, train and validation concatenated, and each folder's test split kept
apart as a test domain (named by the folder) as well as available together. One folder is
exactly :func:`~fvcore.datasets.folders.load_splits`."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

from fvcore.datasets.folders import (
    SPLITS,
    DataSplits,
    FolderSplits,
    Source,
    load_splits,
    numbered,
    read_folder,
)
from fvcore.errors import FvError

NEEDED = ("train", "validation")
"""The splits every class must have images in, in at least one of the folders."""


def load_datasets(roots: str | Path | Sequence[str | Path], *, name: Optional[str] = None,
                  val_fraction: float = 0.15, test_fraction: float = 0.2,
                  seed: int = 0) -> DataSplits:
    """Read one or several dataset folders and combine them (``name`` defaults to the folder
    names joined with ``+``); one folder is :func:`load_splits`, renamed by ``name``."""
    roots = [roots] if isinstance(roots, (str, Path)) else list(roots)
    if not roots:
        raise FvError("no dataset folder given")
    if len(roots) == 1:
        data = load_splits(roots[0], val_fraction=val_fraction, test_fraction=test_fraction,
                           seed=seed)
        data.name = name or data.name
        return data
    folders = [read_folder(root, val_fraction=val_fraction, test_fraction=test_fraction,
                           seed=seed, strict=False) for root in roots]
    names = [folder.root.name for folder in folders]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise FvError(f"two dataset folders are named {', '.join(twice)}: the folder name names "
                      "the source (test domain, path prefix); give each a distinct name")
    classes = sorted({c for folder in folders for samples in folder.splits.values()
                      for _, c in samples})
    if len(classes) < 2:
        raise FvError(f"need at least 2 classes, found {len(classes)}", source=", ".join(names))
    parts = [numbered(folder, classes) for folder in folders]
    for split in NEEDED:
        have = {classes[label] for part in parts for _, label in part[split]}
        missing = sorted(set(classes) - have)
        if missing:
            raise FvError(f"{split} split has no images of: {', '.join(missing)} (in none of "
                          f"{', '.join(names)})")
    if not any(part["test"] for part in parts):
        raise FvError(f"test split has no images in any of {', '.join(names)}")
    data = DataSplits(
        name=name or "+".join(names), root=_common_parent(folders), classes=classes,
        groups=_merged_groups(folders, classes),
        splits={split: [s for part in parts for s in part[split]] for split in SPLITS},
        provenance={split: "; ".join(f"{n}: {f.provenance[split]}"
                                     for n, f in zip(names, folders, strict=True))
                    for split in SPLITS},
        sources=[Source(n, f.root, {k: len(v) for k, v in part.items()}, dict(f.provenance))
                 for n, f, part in zip(names, folders, parts, strict=True)],
        domains={n: part["test"] for n, part in zip(names, parts, strict=True) if part["test"]})
    for split in ("validation", "test"):
        carved = [data.relative(p) for f, part in zip(folders, parts, strict=True)
                  if f.provenance[split].startswith("carved") for p, _ in part[split]]
        if carved:
            data.carved[split] = carved
    return data


def _common_parent(folders: Sequence[FolderSplits]) -> Path:
    """The folder holding every source (their shared parent when they sit side by side)."""
    return Path(os.path.commonpath([os.path.abspath(f.root.parent) for f in folders]))


def _merged_groups(folders: Sequence[FolderSplits], classes: Sequence[str]) -> dict[str, str]:
    """Every folder's ``classes.json`` groups in one map; two folders disagreeing is an error."""
    merged: dict[str, tuple[str, str]] = {}
    for folder in folders:
        for cls, group in folder.groups.items():
            if cls not in classes:
                continue
            seen = merged.setdefault(cls, (group, folder.root.name))
            if seen[0] != group:
                raise FvError(f"classes.json groups disagree on {cls}: {seen[0]} in {seen[1]}, "
                              f"{group} in {folder.root.name}")
    return {cls: merged[cls][0] for cls in classes if cls in merged}

"""Bounded folder walks: every scan of a folder someone else chose (the checkpoints folder, a data
root, a sample folder) goes through :func:`walk`, which stops at a depth, a number of entries and
a time budget, follows no symlink out of its root (nor round a loop), skips hidden names and the
kernel's special filesystems (/proc, /sys, /dev, ...), and says so when it stopped early."""
from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional

MAX_DEPTH = 8
"""Folder levels below the root that a walk enters (a checkpoint sits 2 below its root)."""
MAX_ENTRIES = 50_000
"""Directory entries a walk looks at before it stops."""
SECONDS = 3.0
"""Wall-clock budget of one walk."""
SPECIAL_FS = frozenset({"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2",
                        "debugfs", "tracefs", "securityfs", "pstore", "bpf", "configfs",
                        "fusectl", "mqueue", "hugetlbfs", "autofs", "binfmt_misc", "efivarfs",
                        "rpc_pipefs", "nsfs", "selinuxfs"})
"""Filesystem types that hold kernel state, not files anyone keeps checkpoints in."""
SPECIAL_DIRS = ("/proc", "/sys", "/dev")
"""Skipped wherever /proc/self/mounts cannot be read."""


@dataclass(frozen=True)
class Walk:
    """What a walk found (paths under the root as given, sorted) and, when it stopped early,
    one line saying why (else None)."""

    files: list[Path]
    truncated: Optional[str] = None


@lru_cache(maxsize=1)
def special_mounts() -> frozenset[str]:
    """Mount points of the special filesystems (read once from /proc/self/mounts)."""
    found = set(SPECIAL_DIRS)
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return frozenset(found)
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and parts[2] in SPECIAL_FS:
            found.add(parts[1].replace("\\040", " "))
    return frozenset(found)


def is_special(path: Path) -> bool:
    """True for a (resolved) folder on or under a special filesystem's mount point."""
    text = str(path)
    return any(text == m or text.startswith(m.rstrip("/") + "/") for m in special_mounts()
               if m != "/")


def walk(root: str | Path, match: Callable[[str], bool], *, max_depth: int = MAX_DEPTH,
         max_entries: int = MAX_ENTRIES, seconds: float = SECONDS) -> Walk:
    """Files under ``root`` whose name ``match`` es, breadth first, within the bounds; names
    starting with a dot are skipped, and so is any symlink that resolves outside the root."""
    root = Path(root)
    try:
        top = root.resolve(strict=True)
    except (OSError, RuntimeError):
        return Walk([])
    if not top.is_dir():
        return Walk([])
    if is_special(top):
        return Walk([], f"{root.name or root} is on a special filesystem: not scanned")
    deadline = time.monotonic() + seconds
    seen, found, entries = {top}, [], 0
    level: list[tuple[Path, Path]] = [(root, top)]   # (path as named under root, resolved)
    for _ in range(max_depth + 1):
        below: list[tuple[Path, Path]] = []
        for named, real in level:
            if time.monotonic() > deadline:
                return Walk(sorted(found), f"scan stopped after {seconds:g} s: "
                                           "the folder is larger than a scan may read")
            try:
                with os.scandir(real) as listing:
                    items = sorted(listing, key=lambda e: e.name)
            except OSError:
                continue
            entries += len(items)
            if entries > max_entries:
                return Walk(sorted(found), f"scan stopped after {max_entries:,} entries: the "
                                           "folder is larger than a scan may read")
            for item in items:
                if item.name.startswith("."):
                    continue
                kind = _kind(item, top)
                if kind == "file" and match(item.name):
                    found.append(named / item.name)
                elif kind == "dir":
                    target = Path(item.path).resolve() if item.is_symlink() else Path(item.path)
                    if target not in seen and not is_special(target):
                        seen.add(target)
                        below.append((named / item.name, target))
        if not below:
            return Walk(sorted(found))
        level = below
    return Walk(sorted(found), f"scan stopped at {max_depth} folder levels: checkpoints and "
                               "images deeper than that are not listed")


def _kind(item: os.DirEntry, top: Path) -> str:
    """"file", "dir" or "" (skipped: a broken link, a link out of the root, a device...)."""
    try:
        if item.is_symlink():
            target = Path(item.path).resolve(strict=True)
            if not target.is_relative_to(top):
                return ""
            mode = target.stat().st_mode
        else:
            mode = item.stat(follow_symlinks=False).st_mode
    except (OSError, RuntimeError):
        return ""
    return "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else ""

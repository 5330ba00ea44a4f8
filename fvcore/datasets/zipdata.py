"""Safe extraction of an uploaded zip of labelled images (one folder per class).

Nothing is ever written outside the destination folder: absolute names, ``..`` components, drive
letters and symbolic links are refused. The total uncompressed size and the number of files are
limited (counted while extracting, so a lying header cannot get past), against zip bombs. Files
that are not readable images are skipped with a one-line reason each.
"""
from __future__ import annotations

import io
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Optional, Sequence

from fvcore.datasets.folders import IMAGE_SUFFIXES
from fvcore.errors import FvError, ImageError
from fvcore.inference.images import load_image

MAX_TOTAL_BYTES = 1024 * 1024 * 1024
"""Largest total uncompressed size accepted (1 GiB)."""

MAX_FILES = 20_000
"""Most entries accepted in one zip."""

_JUNK = ("__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini")
_CHUNK = 1 << 20


@dataclass
class LabelledZip:
    """The extracted images of a labelled zip: class name -> files, plus what was skipped."""

    root: Path
    classes: dict[str, list[Path]]
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (name in zip, reason)

    @property
    def n_images(self) -> int:
        return sum(len(files) for files in self.classes.values())

    def samples(self, classes: Sequence[str]) -> tuple[list[tuple[Path, int]], list[str]]:
        """(path, class index) samples for a model with ``classes``, and the zip's class folders
        that model does not know (their images are left out)."""
        index = {name: i for i, name in enumerate(classes)}
        unknown = sorted(c for c in self.classes if c not in index)
        samples = [(path, index[name]) for name in sorted(self.classes) if name in index
                   for path in self.classes[name]]
        return samples, unknown


def safe_member_path(name: str) -> PurePosixPath:
    """A zip entry name as a relative path inside the destination, or FvError when it would
    escape it (absolute, drive letter, ``..``)."""
    clean = name.replace("\\", "/")
    path = PurePosixPath(clean)
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        raise FvError("absolute path in zip refused", source=name)
    if any(part == ".." for part in path.parts):
        raise FvError("path leaving the zip folder ('..') refused", source=name)
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts:
        raise FvError("empty file name in zip", source=name)
    return PurePosixPath(*parts)


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _copy_limited(source: BinaryIO, target: Path, budget: int, name: str) -> int:
    """Copy at most ``budget`` bytes; raise when the entry is bigger (a lying header)."""
    written = 0
    with target.open("wb") as out:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > budget:
                raise FvError(f"zip expands beyond {MAX_TOTAL_BYTES // 2**20} MiB; "
                              "refusing it (zip bomb?)", source=name)
            out.write(chunk)
    return written


def _unwritable(exc: OSError) -> str:
    """One line for an entry this disk cannot hold (too long a name, a file/folder clash)."""
    return f"cannot be extracted here ({exc.strerror or type(exc).__name__})"


def _class_level(root: Path) -> Path:
    """The folder holding the class folders: single wrapper folders (``mydata/``, ``test/``)
    with no images beside them are stepped into."""
    level = root
    while True:
        dirs = [d for d in level.iterdir() if d.is_dir()]
        files = [f for f in level.iterdir() if f.is_file()]
        has_images_below = any(f.is_file() for d in dirs for f in d.iterdir())
        if len(dirs) == 1 and not files and not has_images_below:
            level = dirs[0]
            continue
        return level


def extract_labelled_zip(source: bytes | BinaryIO | str | Path, dest: str | Path, *,
                         max_total_bytes: int = MAX_TOTAL_BYTES,
                         max_files: int = MAX_FILES) -> LabelledZip:
    """Extract a zip of ``<class>/<image>`` folders (optionally inside one wrapper folder such as
    ``test/``) into ``dest`` and check every image. Raises FvError with one line for an unsafe,
    oversized or unlabelled zip; unreadable files are skipped and listed."""
    dest = Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, EOFError):
        raise FvError("not a zip file (or a damaged one)") from None
    skipped: list[tuple[str, str]] = []
    with archive:
        infos = archive.infolist()
        if len(infos) > max_files:
            raise FvError(f"zip holds {len(infos)} entries, limit {max_files}")
        declared = sum(info.file_size for info in infos)
        if declared > max_total_bytes:
            raise FvError(f"zip expands to {declared // 2**20} MiB, limit "
                          f"{max_total_bytes // 2**20} MiB")
        budget = max_total_bytes
        for info in infos:
            relative = safe_member_path(info.filename)
            if info.is_dir() or any(p in _JUNK or p.startswith("._") for p in relative.parts):
                continue
            if _is_symlink(info):
                raise FvError("symbolic link in zip refused", source=info.filename)
            if relative.suffix.lower() not in IMAGE_SUFFIXES:
                kind = relative.suffix or "no suffix"
                skipped.append((info.filename, f"not an image file ({kind})"))
                continue
            if info.flag_bits & 0x1:
                skipped.append((info.filename, "encrypted entry"))
                continue
            target = dest.joinpath(*relative.parts)
            try:
                inside = dest in target.resolve().parents
            except OSError as exc:  # e.g. a name longer than the file system allows
                skipped.append((info.filename, _unwritable(exc)))
                continue
            if not inside:  # belt and braces: safe_member_path already refused it
                raise FvError("path leaving the zip folder refused", source=info.filename)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as handle:
                    budget -= _copy_limited(handle, target, budget, info.filename)
            except OSError as exc:  # a name the disk refuses, a file/folder name clash
                skipped.append((info.filename, _unwritable(exc)))
            except (zipfile.BadZipFile, EOFError, RuntimeError, zlib.error) as exc:
                skipped.append((info.filename, f"damaged zip entry ({str(exc)[:80]})"))
                if target.is_file():
                    target.unlink()
    return _collect(dest, skipped, load_image)


def _collect(dest: Path, skipped: list[tuple[str, str]], load_image) -> LabelledZip:
    """Group the extracted images by class folder, dropping (and listing) unreadable ones."""
    level = _class_level(dest)
    loose = [f for f in level.iterdir() if f.is_file()]
    for path in loose:
        skipped.append((path.relative_to(dest).as_posix(), "image outside a class folder"))
    classes: dict[str, list[Path]] = {}
    for folder in sorted(d for d in level.iterdir() if d.is_dir()):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            try:
                load_image(path)
            except ImageError as exc:
                skipped.append((path.relative_to(dest).as_posix(), exc.reason))
                continue
            classes.setdefault(folder.name, []).append(path)
    if not classes:
        raise FvError("no class folders with images in the zip: put each class's images in a "
                      "folder named after the class (e.g. Apple/img1.jpg)")
    return LabelledZip(level, classes, skipped)


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """A zip (deflated) holding ``files`` {name in zip: content}; used by tests and examples."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def describe_skipped(skipped: Sequence[tuple[str, str]], limit: Optional[int] = 10) -> list[str]:
    """One line per skipped file (``name: reason``), with a summary line past ``limit``."""
    lines = [f"{name}: {reason}" for name, reason in skipped[:limit]]
    if limit is not None and len(skipped) > limit:
        lines.append(f"... and {len(skipped) - limit} more")
    return lines

"""Each image file of a dataset read once: its content hash (exact duplicates), whether it
decodes under the app's limits (with a one-line reason when not), its size, and a 256-bit
perceptual hash (ImageHash's pHash of a 16x16 DCT) for near duplicates, compared in numpy blocks
by XOR and popcount rather than pair by pair in Python."""
from __future__ import annotations

import hashlib
import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import imagehash
import numpy as np
from PIL import Image

from fvcore.errors import ImageError
from fvcore.inference.images import FORMATS, MAX_BYTES, MAX_PIXELS, check_size, load_image

HASH_SIZE = 16
"""pHash side: 16 x 16 = 256 bits. The 64-bit pHash put different simple pictures (one shape on
noise, at the same place) 4 bits apart, as close as a re-saved copy; at 256 bits they are 58 or
more apart and a JPEG re-save or a resize stays under 10."""
NEAR_DISTANCE = 24
"""Largest Hamming distance (of 256 bits) between two pHashes called near duplicates."""
BLOCK = 128
"""Rows of the distance matrix computed at once (BLOCK x n x hash bytes of memory per step)."""
HASH_SIDE = 256
"""Images are shrunk to at most this side before hashing (pHash looks at 32x32 anyway)."""


@dataclass(frozen=True)
class FileScan:
    """One file as read: its size in pixels, content hash and pHash, or why it is unusable."""

    path: Path
    size: tuple[int, int] = (0, 0)
    digest: str = ""
    phash: bytes = b""
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _decode(data: bytes, name: str) -> tuple[Image.Image, tuple[int, int]]:
    """The image (by the one loader, with its limits and reasons) and its stored size; a large
    JPEG is decoded at a reduced scale (the whole stream is still read, so damage shows)."""
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except Exception:  # noqa: BLE001 - the loader below says what is wrong, in its words
        image = load_image(data, name=name)
        return image, image.size
    size = image.size
    check_size(*size, MAX_PIXELS, name)
    if image.format == "JPEG":
        image.draft("RGB", (HASH_SIDE, HASH_SIDE))
    return load_image(image, name=name), size


def scan_file(path: Path) -> FileScan:
    """Read, hash and decode one image file (never raises for a bad file)."""
    try:
        length = path.stat().st_size
        if length > MAX_BYTES:
            return FileScan(path, error=f"file too large: {length} bytes, limit {MAX_BYTES}")
        data = path.read_bytes()
    except OSError as exc:
        return FileScan(path, error=f"cannot be read ({exc.strerror or type(exc).__name__})")
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    try:
        image, size = _decode(data, path.name)
    except ImageError as exc:
        return FileScan(path, digest=digest, error=exc.reason)
    except Exception as exc:  # noqa: BLE001 - hostile bytes make decoders raise anything
        return FileScan(path, digest=digest, error=f"corrupt image: {type(exc).__name__}")
    if max(size) > HASH_SIDE:
        image = image.copy()
        image.thumbnail((HASH_SIDE, HASH_SIDE), Image.Resampling.BILINEAR)
    bits = np.packbits(imagehash.phash(image, hash_size=HASH_SIZE).hash.flatten()).tobytes()
    return FileScan(path, size, digest, bits)


def scan_files(paths: Sequence[Path], *, workers: Optional[int] = None,
               progress: Optional[Callable[[int, int], None]] = None) -> list[FileScan]:
    """:func:`scan_file` over many files, in threads (decoding releases the GIL), in order."""
    workers = workers or min(8, os.cpu_count() or 1)
    results: list[FileScan] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for scan in pool.map(scan_file, paths):
            results.append(scan)
            if progress and (len(results) % 64 == 0 or len(results) == len(paths)):
                progress(len(results), len(paths))
    return results


def _popcount(values: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values)
    as_bytes = values.view(np.uint8).reshape(*values.shape, 8)   # numpy < 2.0
    return np.unpackbits(as_bytes, axis=-1).sum(axis=-1)


def near_pairs(hashes: Sequence[bytes], max_distance: int = NEAR_DISTANCE
               ) -> list[tuple[int, int, int]]:
    """(i, j, distance) for every i < j whose hashes (equal-length bytes, a multiple of 8)
    differ in at most ``max_distance`` bits: vectorised over blocks of rows, n^2/2 XORs of
    64-bit words in numpy (a few thousand images: about a second)."""
    if not hashes:
        return []
    values = np.frombuffer(b"".join(hashes), dtype=np.uint64).reshape(len(hashes), -1)
    found: list[tuple[int, int, int]] = []
    for start in range(0, len(values), BLOCK):
        block = values[start:start + BLOCK]
        distance = _popcount(block[:, None, :] ^ values[None, start:, :]).sum(
            axis=-1, dtype=np.int32)
        rows, cols = np.nonzero(distance <= max_distance)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            i, j = start + r, start + c
            if i < j:
                found.append((i, j, int(distance[r, c])))
    return found


def groups(n: int, pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Connected groups (of two or more) of ``n`` items joined by ``pairs`` (union-find)."""
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(find(i), []).append(i)
    return [m for m in members.values() if len(m) > 1]

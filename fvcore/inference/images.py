"""One image loader for every entry point: CLI, app, training and evaluation.

Whatever comes in (a path, bytes, a file object or a PIL image) leaves as an upright 8-bit RGB
``PIL.Image``, or raises :class:`~fvcore.errors.ImageError` with a sentence a person understands.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from fvcore.errors import ImageError

ImageInput = Union[str, Path, bytes, bytearray, BinaryIO, Image.Image, np.ndarray]

MAX_PIXELS = 64_000_000
"""Largest image accepted (width x height); larger ones are refused as decompression bombs."""

MAX_BYTES = 64 * 1024 * 1024
"""Largest encoded file accepted."""

MAX_ASPECT = 50
"""Largest ratio of the long side to the short side: resizing the short side of a 2000000x32
sliver (under the pixel limit) to the model's input size would need tens of GB."""

ORIENTATION = 0x0112   # the EXIF tag exif_transpose applies (and removes)
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "DIB", "TIFF")  # JPEG covers MPO
"""Pillow formats decoded; others (EPS, which runs Ghostscript, PSD, ...) are refused by name."""

Image.init()  # register every plugin, so that ``formats=FORMATS`` knows WEBP and TIFF
ImageFile.LOAD_TRUNCATED_IMAGES = False
Image.MAX_IMAGE_PIXELS = None  # we check the size ourselves, before decoding, with a clear message
# Pillow's complaints about damaged files ("Corrupt EXIF data", "Truncated File Read") say nothing
# our errors do not. A filter set once, not warnings.catch_warnings() per call: that swaps the
# process-wide filter list and is not thread-safe (concurrent app sessions could leave "ignore
# everything" installed for good).
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")

_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"ftypheic", 4, "HEIC"), (b"ftypheix", 4, "HEIC"), (b"ftypmif1", 4, "HEIF"),
    (b"ftyphevc", 4, "HEIC"), (b"ftypavif", 4, "AVIF"), (b"%PDF", 0, "PDF"),
)


def _unsupported_kind(head: bytes) -> str | None:
    """Name a known format that Pillow cannot read here, from the file's first bytes."""
    for magic, offset, name in _SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            return name
    text = head[:512].lstrip().lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in head.lower()):
        return "SVG"
    return None


def _pillow_kind(data: bytes) -> str | None:
    """The name of a format Pillow recognises but we do not decode (header parse only)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.format
    except Exception:  # noqa: BLE001 - anything Pillow cannot identify is just "not an image"
        return None


def check_size(width: int, height: int, max_pixels: int, name: str | None) -> None:
    """Refuse a decompression bomb, an empty image or a sliver, before any pixel is decoded."""
    if width * height > max_pixels:
        raise ImageError(f"image too large: {width}x{height} pixels, limit {max_pixels}",
                         source=name)
    if width < 1 or height < 1:
        raise ImageError("image has no pixels", source=name)
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise ImageError(f"image too elongated: {width}x{height} pixels, the long side may be "
                         f"at most {MAX_ASPECT} times the short side", source=name)


def _read_bytes(source: ImageInput) -> tuple[bytes, str]:
    """Return the encoded bytes and a display name for a path, bytes or file object."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ImageError("file not found", source=str(path))
        if path.stat().st_size > MAX_BYTES:
            raise ImageError(f"file too large: {path.stat().st_size} bytes, limit {MAX_BYTES}",
                             source=str(path))
        return path.read_bytes(), str(path)
    if isinstance(source, (bytes, bytearray)):
        return bytes(source), "image"
    if hasattr(source, "read"):
        data = source.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise ImageError(f"file too large: more than {MAX_BYTES} bytes",
                             source=getattr(source, "name", "image"))
        return data, str(getattr(source, "name", "image"))
    raise ImageError(f"cannot read an image from {type(source).__name__}")


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency is composited on white."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or array.max(initial=0) > 255 else 255.0
        array = np.clip(array / top * 255.0, 0, 255).astype(np.uint8)
        image = Image.fromarray(array, mode="L")
        mode = "L"
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("LA", "PA", "La", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image).convert("RGB")
    return image.convert("RGB") if image.mode != "RGB" else image


def _failure(exc: Exception, name: str | None, fmt: str) -> ImageError:
    """Translate whatever a decoder raised into one ImageError sentence."""
    if isinstance(exc, ImageError):
        return exc
    if isinstance(exc, UnidentifiedImageError):
        return ImageError("not an image (unrecognised file format)", source=name)
    if isinstance(exc, (MemoryError, Image.DecompressionBombError)):
        return ImageError(f"image too large to decode: {exc}", source=name)
    text = str(exc).lower()
    if "truncated" in text or "broken data stream" in text or isinstance(exc, EOFError):
        return ImageError(f"truncated {fmt}: the file ends before the image does", source=name)
    if isinstance(exc, (OSError, SyntaxError, ValueError)):
        return ImageError(f"corrupt {fmt}: {str(exc)[:160]}", source=name)
    # hostile bytes make decoders raise anything (fuzzing found TypeError and OverflowError
    # from TIFF offsets): it all means the file is corrupt
    return ImageError(f"corrupt {fmt}: {type(exc).__name__}: {str(exc)[:120]}", source=name)


def _upright_rgb(image: Image.Image, name: str | None, max_pixels: int) -> Image.Image:
    """Size-check, decode (an animated file opens on its first frame), apply EXIF orientation
    and convert to RGB."""
    fmt = image.format or "image"
    try:
        check_size(*image.size, max_pixels, name)
        image.load()
        return _to_rgb(ImageOps.exif_transpose(image) or image)
    except Exception as exc:  # noqa: BLE001 - translated by _failure, see there
        raise _failure(exc, name, fmt) from None


def _decode(data: bytes, name: str, max_pixels: int) -> Image.Image:
    """Decode bytes into an upright RGB image, checking size before any pixel is decoded."""
    if not data:
        raise ImageError("empty file: not an image", source=name)
    kind = _unsupported_kind(data[:1024])
    if kind:
        raise ImageError(f"unsupported image format: {kind}; convert it to JPEG or PNG",
                         source=name)
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        kind = _pillow_kind(data)
        if kind:
            raise ImageError(f"unsupported image format: {kind}; convert it to JPEG or PNG",
                             source=name) from None
        raise ImageError("not an image (unrecognised file format)", source=name) from None
    except Exception as exc:  # noqa: BLE001 - translated by _failure, see there
        raise _failure(exc, name, "image") from None
    return _upright_rgb(image, name, max_pixels)


def load_image(source: ImageInput, *, max_pixels: int = MAX_PIXELS,
               name: str | None = None) -> Image.Image:
    """Load ``source`` as an upright 8-bit RGB PIL image.

    EXIF orientation is applied; grayscale, palette, RGBA/LA (composited on white), CMYK, 16-bit
    and animated (first frame) inputs are converted. Raises :class:`ImageError` for anything that
    is not a usable image (including bombs over ``max_pixels`` and slivers over ``MAX_ASPECT``),
    naming the file when it is known.
    """
    if isinstance(source, Image.Image):
        return _upright_rgb(source, name, max_pixels)
    if isinstance(source, np.ndarray):
        try:
            array = source if source.dtype == np.uint8 else np.clip(source, 0, 255).astype(np.uint8)
            image = Image.fromarray(array)
        except (TypeError, ValueError) as exc:
            raise ImageError(f"array is not an image: {exc}", source=name) from None
        return _upright_rgb(image, name, max_pixels)
    data, default_name = _read_bytes(source)
    return _decode(data, name or default_name, max_pixels)


def ensure_rgb(source: ImageInput) -> Image.Image:
    """``source`` itself when it is already an upright 8-bit RGB PIL image (what
    :func:`load_image` returns: nothing to decode, convert or rotate again; the size limits still
    apply), else ``load_image(source)``."""
    if (isinstance(source, Image.Image) and source.mode == "RGB"
            and source.getexif().get(ORIENTATION, 1) == 1):
        check_size(*source.size, MAX_PIXELS, None)
        return source
    return load_image(source)

"""The bad-input corpus: every awkward file a person can upload, generated in memory at test time.

``corpus()`` returns :class:`Case` entries ``(filename, data, expected)`` where ``expected`` is
``"ok"`` (the loader must answer with an upright RGB image) or a substring of the one-line error.
``write_corpus(folder)`` writes them to disk. Nothing here is downloaded; the good photos are
scikit-image's bundled ``chelsea``, ``coffee`` and ``astronaut``.
"""
from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

OK = "ok"
BOMB_SIDE = 20_000


@dataclass(frozen=True)
class Case:
    """One corpus file: its name, its bytes, and ``"ok"`` or a substring of the expected error."""

    filename: str
    data: bytes
    expected: str

    @property
    def ok(self) -> bool:
        return self.expected == OK


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    """Encode a PIL image to bytes in ``fmt``."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def png_bytes(width: int, height: int, *, bit_depth: int = 1, colour_type: int = 0,
              idat: bytes | None = None) -> bytes:
    """A PNG written chunk by chunk. Without ``idat`` the pixel data is a real all-zero image,
    compressed in a stream so that a 20000x20000 bomb costs a few KB and a fraction of a second."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    if idat is None:
        channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
        row = b"\x00" * (1 + (width * channels * bit_depth + 7) // 8)   # filter byte + pixels
        packer = zlib.compressobj(9)
        parts = [packer.compress(row * 1000) for _ in range(height // 1000)]
        parts += [packer.compress(row * (height % 1000)), packer.flush()]
        idat = b"".join(parts)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat)
            + _chunk(b"IEND", b""))


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) is rewritten to claim ``width`` x ``height``."""
    data = bytearray(encode(Image.new("RGB", (16, 16), (200, 30, 30)), "JPEG"))
    at = data.index(b"\xff\xc0")
    data[at + 5:at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def asymmetric_image(width: int = 96, height: int = 64) -> Image.Image:
    """An image whose orientation is unmistakable: red top-left block, blue bottom row band."""
    array = np.full((height, width, 3), 255, np.uint8)
    array[: height // 2, : width // 3] = (220, 20, 20)
    array[-height // 6:, :] = (20, 20, 220)
    return Image.fromarray(array)


def exif_rotated_jpeg() -> bytes:
    """``asymmetric_image()`` stored sideways, with EXIF Orientation 6 ("rotate 90 CW to view")."""
    stored = asymmetric_image().transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def _skimage(name: str) -> Image.Image:
    from skimage import data
    return Image.fromarray(getattr(data, name)())


@lru_cache(maxsize=1)
def good_cases() -> tuple[Case, ...]:
    """The real photos that must always be answered."""
    return (Case("chelsea.jpg", encode(_skimage("chelsea"), "JPEG", quality=90), OK),
            Case("coffee.jpg", encode(_skimage("coffee"), "JPEG", quality=90), OK),
            Case("astronaut.png", encode(_skimage("astronaut").resize((256, 256)), "PNG"), OK))


def _animated_gif() -> bytes:
    colours = ((250, 0, 0), (0, 250, 0), (0, 0, 250))
    frames = [Image.new("RGB", (32, 32), colour) for colour in colours]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _palette_png_with_transparency() -> bytes:
    image = Image.new("P", (32, 32), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (0, 0, 16, 32))                 # left half red, right half index 0
    return encode(image, "PNG", transparency=0)    # index 0 is transparent -> white


def _rgba_webp() -> bytes:
    array = np.zeros((32, 32, 4), np.uint8)
    array[:, :16] = (0, 200, 0, 255)               # opaque green left, transparent right
    return encode(Image.fromarray(array, "RGBA"), "WEBP", lossless=True)


def _gray16_png() -> bytes:
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (32, 1))
    return encode(Image.fromarray(ramp), "PNG")


def _cmyk_jpeg() -> bytes:
    return encode(Image.new("RGB", (32, 32), (230, 30, 30)).convert("CMYK"), "JPEG", quality=95)


@lru_cache(maxsize=1)
def bad_cases() -> tuple[Case, ...]:
    """Unusual or broken files. Unusual-but-valid ones are ``ok``; broken ones name their error."""
    chelsea_jpg, _, astronaut_png = (c.data for c in good_cases())
    return (
        Case("empty.jpg", b"", "empty file"),
        Case("notes.jpg", b"shopping list: apples, pears\n" * 20, "not an image"),
        Case("truncated.jpg", chelsea_jpg[: len(chelsea_jpg) // 2], "truncated JPEG"),
        Case("truncated.png", astronaut_png[: len(astronaut_png) // 2], "truncated PNG"),
        Case("header-only.png", astronaut_png[:60], "PNG"),
        Case("one-pixel.png", encode(Image.new("RGB", (1, 1), (10, 200, 30)), "PNG"), OK),
        Case("bomb.png", png_bytes(BOMB_SIDE, BOMB_SIDE),
             f"image too large: {BOMB_SIDE}x{BOMB_SIDE}"),
        Case("liar.png", png_bytes(100_000, 100_000, idat=zlib.compress(b"\x00" * 64)),
             "image too large: 100000x100000"),
        Case("liar.jpg", jpeg_claiming(60_000, 60_000), "image too large: 60000x60000"),
        Case("sliver.png", png_bytes(200_000, 8), "image too elongated: 200000x8"),
        Case("cmyk.jpg", _cmyk_jpeg(), OK),
        Case("gray16.png", _gray16_png(), OK),
        Case("palette-transparent.png", _palette_png_with_transparency(), OK),
        Case("rgba.webp", _rgba_webp(), OK),
        Case("animated.gif", _animated_gif(), OK),
        Case("exif-rotated.jpg", exif_rotated_jpeg(), OK),
        Case("photo.heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64,
             "unsupported image format: HEIC"),
        Case("drawing.svg", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
             b'width="10" height="10"><rect width="10" height="10"/></svg>\n',
             "unsupported image format: SVG"),
        # Pillow would run Ghostscript
        Case("figure.eps", encode(Image.new("RGB", (8, 8)), "EPS"),
             "unsupported image format: EPS"),
        Case("document.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
             "unsupported image format: PDF"),
    )


def corpus() -> tuple[Case, ...]:
    """Every case: the bad and unusual files, then the good photos."""
    return bad_cases() + good_cases()


def write_corpus(folder: Path, cases: tuple[Case, ...] | None = None) -> dict[str, Path]:
    """Write the cases into ``folder``: filename -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for case in cases or corpus():
        path = folder / case.filename
        path.write_bytes(case.data)
        paths[case.filename] = path
    return paths

"""Property-based fuzzing of the image loader: random bytes and mutated real images (bit flips,
overwritten bytes, truncations, insertions, deletions, corrupted headers) either load as an RGB
image or raise ImageError, never anything else.

Found by fuzzing and fixed in fvcore/images.py: TIFFs whose strip offsets became floats, strings
or rationals raised TypeError/OverflowError; mutated animated WebPs claiming a 1835056x32 canvas
took seconds and hundreds of MB (now refused as too elongated, see MAX_ASPECT).
"""
from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from fvcore.errors import ImageError
from fvcore.inference.images import load_image

# fvcore.inference.images silences Pillow's own warnings once at import; pytest resets filters per
# test
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL")

FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LIMIT = 4_000_000   # pixel limit while fuzzing: a mutated header may claim a big-but-legal image


def _encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


@lru_cache(maxsize=1)
def seeds() -> dict[str, bytes]:
    """Small real files in every format the loader decodes (and a few tricky variants)."""
    from skimage import data
    photo = Image.fromarray(data.chelsea()).resize((48, 32))
    flipped = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    exif = Image.Exif()
    exif[0x0112] = 6
    gray16 = Image.fromarray(np.asarray(photo.convert("L")).astype(np.uint16) * 257)
    return {
        "png": _encode(photo, "PNG"),
        "palette.png": _encode(photo.convert("P"), "PNG", transparency=0),
        "gray16.png": _encode(gray16, "PNG"),
        "apng.png": _encode(photo, "PNG", save_all=True, append_images=[flipped]),
        "jpg": _encode(photo, "JPEG", quality=80),
        "progressive.jpg": _encode(photo, "JPEG", quality=80, progressive=True),
        "exif.jpg": _encode(photo, "JPEG", exif=exif.tobytes()),
        "cmyk.jpg": _encode(photo.convert("CMYK"), "JPEG"),
        "gif": _encode(photo, "GIF", save_all=True, append_images=[flipped]),
        "webp": _encode(photo, "WEBP", quality=80),
        "rgba.webp": _encode(photo.convert("RGBA"), "WEBP", lossless=True),
        "animated.webp": _encode(photo, "WEBP", save_all=True, append_images=[flipped]),
        "bmp": _encode(photo, "BMP"),
        "tiff": _encode(photo, "TIFF"),
        "deflate.tiff": _encode(photo, "TIFF", compression="tiff_deflate"),
    }


def _loads_or_refuses(data: bytes) -> None:
    """The property: an RGB image with pixels, or ImageError; any other exception fails."""
    try:
        image = load_image(data, max_pixels=LIMIT, name="fuzz.bin")
    except ImageError as exc:
        assert str(exc).startswith("fuzz.bin: ") and "\n" not in str(exc)
        return
    assert image.mode == "RGB" and image.width >= 1 and image.height >= 1
    assert image.width * image.height <= LIMIT


def _mutate(data: bytes, edits: list[tuple[str, float, int]]) -> bytes:
    buf = bytearray(data)
    for kind, where, value in edits:
        at = int(where * len(buf))
        if kind == "truncate":
            del buf[at:]
        elif not buf:
            continue
        elif kind == "flip":
            buf[min(at, len(buf) - 1)] ^= 1 << (value % 8)
        elif kind == "set":
            buf[min(at, len(buf) - 1)] = value
        elif kind == "header":     # the first 64 bytes hold sizes, offsets and chunk lengths
            buf[min(int(where * 64), len(buf) - 1)] = value
        elif kind == "insert":
            buf[at:at] = bytes([value]) * (1 + value % 16)
        elif kind == "delete":
            del buf[at:at + 1 + value % 16]
    return bytes(buf)


EDITS = st.lists(st.tuples(st.sampled_from(["flip", "set", "header", "truncate", "insert",
                                            "delete"]),
                           st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                 min_size=1, max_size=6)


def test_every_seed_loads_unmutated():
    for name, data in seeds().items():
        assert load_image(data, name=name).size == ((32, 48) if name == "exif.jpg" else (48, 32))


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_load_or_raise_image_error(data):
    _loads_or_refuses(data)


@FUZZ
@given(st.sampled_from(sorted(seeds())), EDITS)
def test_mutated_real_images_load_or_raise_image_error(name, edits):
    _loads_or_refuses(_mutate(seeds()[name], edits))


@FUZZ
@given(st.sampled_from(sorted(seeds())), st.binary(min_size=1, max_size=64))
def test_real_images_behind_a_random_header_load_or_raise_image_error(name, head):
    data = seeds()[name]
    _loads_or_refuses(head + data[len(head):])


def _retype_tiff_tag(data: bytes, tag: int, new_type: int) -> bytes:
    """Rewrite the type field of ``tag`` in a little-endian TIFF's first IFD."""
    buf = bytearray(data)
    ifd = int.from_bytes(buf[4:8], "little")
    for i in range(int.from_bytes(buf[ifd:ifd + 2], "little")):
        entry = ifd + 2 + 12 * i
        if int.from_bytes(buf[entry:entry + 2], "little") == tag:
            buf[entry + 2:entry + 4] = new_type.to_bytes(2, "little")
    return bytes(buf)


def test_tiff_strip_offsets_of_the_wrong_type_are_a_corrupt_file_not_a_type_error():
    # found by the fuzzer: StripOffsets (273) retyped as RATIONAL (5) made Pillow's seek() raise
    # TypeError: 'IFDRational' object cannot be interpreted as an integer
    data = _retype_tiff_tag(seeds()["tiff"], 273, 5)
    with pytest.raises(ImageError, match="fuzz.bin: corrupt TIFF: TypeError"):
        load_image(data, name="fuzz.bin")

"""The common corruptions of ImageNet-C (Hendrycks & Dietterich, ICLR 2019), five severities each,
with the original severity constants; deterministic given a seed.

Written here (numpy, PIL and ``scipy.ndimage``) rather than taken from the ``imagecorruptions``
package (1.1.2, its latest release), which was tried first: it fails on import with current
setuptools (``pkg_resources`` is gone since setuptools 81); with that patched, ``gaussian_blur``
and ``glass_blur`` still call scikit-image's removed ``multichannel`` argument and ``fog`` numpy's
removed ``np.float_``; and it requires ``opencv-python``, whose ``cv2`` collides with the
``opencv-python-headless`` that grad-cam installs. The functions follow that package's code
(itself the ImageNet-C code without Wand/ImageMagick: its motion blur is a Gaussian-weighted
line of shifted copies) with two changes: randomness comes from a ``numpy.random.Generator``,
and the disk kernel of defocus blur is anti-aliased with ``scipy.ndimage`` instead of OpenCV.
Weather (snow, frost, fog, spatter) and the geometric ones (glass blur, elastic) are left out.
"""
from __future__ import annotations

import math
import zlib
from io import BytesIO
from typing import Callable

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage.color import hsv2rgb, rgb2hsv

from fvcore.errors import FvError

Corruption = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
"""(H x W x 3 float image in [0, 1], severity 1-5, random generator) -> float image."""

SEVERITIES = (1, 2, 3, 4, 5)


def _noise_gaussian(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    c = [.08, .12, .18, .26, .38][s - 1]
    return x + rng.normal(size=x.shape, scale=c)


def _noise_shot(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    c = [60, 25, 12, 5, 3][s - 1]
    return rng.poisson(x * c) / float(c)


def _noise_impulse(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    """Salt and pepper on a share ``c`` of the values, half each (skimage's ``s&p`` mode)."""
    c = [.03, .06, .09, .17, .27][s - 1]
    hit, salt = rng.random(x.shape) < c, rng.random(x.shape) < 0.5
    return np.where(hit, salt.astype(x.dtype), x)


def _noise_speckle(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    c = [.15, .2, .35, .45, .6][s - 1]
    return x + x * rng.normal(size=x.shape, scale=c)


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    """ImageNet-C's aliased disk, anti-aliased by a Gaussian of 3 x 3 (5 x 5 above radius 8)."""
    size, half = (8, 1) if radius <= 8 else (radius, 2)
    grid = np.arange(-size, size + 1)
    xx, yy = np.meshgrid(grid, grid)
    disk = ((xx ** 2 + yy ** 2) <= radius ** 2).astype(np.float64)
    disk /= disk.sum()
    return ndimage.gaussian_filter(disk, sigma=alias_blur, truncate=half / alias_blur,
                                   mode="mirror")


def _per_channel(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    return np.stack([ndimage.convolve(x[..., d], kernel, mode="mirror") for d in range(3)], -1)


def _blur_defocus(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    radius, alias = [(3, .1), (4, .5), (6, .5), (8, .5), (10, .5)][s - 1]
    return _per_channel(x, _disk(radius, alias))


def _shift(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``image`` moved by (dx, dy), the edge row/column repeated into the gap."""
    out = np.roll(image, (dy, dx), axis=(0, 1))
    if dx > 0:
        out[:, :dx] = out[:, dx:dx + 1]
    elif dx < 0:
        out[:, dx:] = out[:, dx - 1:dx]
    if dy > 0:
        out[:dy] = out[dy:dy + 1]
    elif dy < 0:
        out[dy:] = out[dy - 1:dy]
    return out


def _blur_motion(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    radius, sigma = [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)][s - 1]
    angle = np.deg2rad(rng.uniform(-45, 45))
    width = 2 * radius + 1
    kernel = np.exp(-np.arange(width) ** 2 / (2 * sigma ** 2))
    kernel /= kernel.sum()
    out = np.zeros_like(x)
    for i in range(width):
        dy, dx = -math.ceil(i * math.sin(angle) - 0.5), -math.ceil(i * math.cos(angle) - 0.5)
        if abs(dy) >= x.shape[0] or abs(dx) >= x.shape[1]:
            break   # the motion left the image
        out += kernel[i] * _shift(x, dx, dy)
    return out


def _clipped_zoom(x: np.ndarray, factor: float) -> np.ndarray:
    h, w = x.shape[:2]
    ch, cw = int(np.ceil(h / factor)), int(np.ceil(w / factor))
    top, left = (h - ch) // 2, (w - cw) // 2
    zoomed = ndimage.zoom(x[top:top + ch, left:left + cw], (factor, factor, 1), order=1)
    return zoomed[:h, :w]


def _blur_zoom(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    step = [(1.11, .01), (1.16, .01), (1.21, .02), (1.26, .02), (1.31, .03)][s - 1]
    factors = np.arange(1, step[0], step[1])
    out = np.zeros_like(x)
    for factor in factors:
        layer = _clipped_zoom(x, factor)
        out[:layer.shape[0], :layer.shape[1]] += layer
    return (x + out) / (len(factors) + 1)


def _blur_gaussian(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    c = [1, 2, 3, 4, 6][s - 1]
    return ndimage.gaussian_filter(x, sigma=(c, c, 0), mode="nearest", truncate=4.0)


def _brightness(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    c = [.1, .2, .3, .4, .5][s - 1]
    hsv = rgb2hsv(x)
    hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
    return hsv2rgb(hsv)


def _contrast(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    c = [.4, .3, .2, .1, .05][s - 1]
    means = x.mean(axis=(0, 1), keepdims=True)
    return (x - means) * c + means


def _saturate(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    scale, offset = [(.3, 0), (.1, 0), (2, 0), (5, .1), (20, .2)][s - 1]
    hsv = rgb2hsv(x)
    hsv[..., 1] = np.clip(hsv[..., 1] * scale + offset, 0, 1)
    return hsv2rgb(hsv)


def _to_pil(x: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(x, 0, 1) * 255).astype(np.uint8))


def _from_pil(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0


def _jpeg(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    quality = [25, 18, 15, 10, 7][s - 1]
    buffer = BytesIO()
    _to_pil(x).save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return _from_pil(decoded)


def _pixelate(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    c = [.6, .5, .4, .3, .25][s - 1]
    h, w = x.shape[:2]
    small = _to_pil(x).resize((max(1, int(w * c)), max(1, int(h * c))), Image.BOX)
    return _from_pil(small.resize((w, h), Image.NEAREST))


CORRUPTIONS: dict[str, Corruption] = {
    "gaussian_noise": _noise_gaussian, "shot_noise": _noise_shot,
    "impulse_noise": _noise_impulse, "speckle_noise": _noise_speckle,
    "defocus_blur": _blur_defocus, "motion_blur": _blur_motion, "zoom_blur": _blur_zoom,
    "gaussian_blur": _blur_gaussian, "brightness": _brightness, "contrast": _contrast,
    "saturate": _saturate, "jpeg_compression": _jpeg, "pixelate": _pixelate,
}
"""Name (ImageNet-C's) -> corruption. Speckle noise, Gaussian blur and saturate are ImageNet-C's
held-out validation corruptions; the other ten are among its fifteen test corruptions."""


def corruption_names() -> list[str]:
    """The corruption names, in the order of :data:`CORRUPTIONS` (noise, blur, digital)."""
    return list(CORRUPTIONS)


def check_corruption(name: str, severity: int) -> None:
    """Raise an :class:`~fvcore.errors.FvError` listing the choices for an unknown name or
    a severity outside 1-5."""
    if name not in CORRUPTIONS:
        raise FvError(f"unknown corruption {name!r}; choose from {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise FvError(f"severity {severity!r} out of range: choose 1-5")


def seed_for(name: str, severity: int, seed: int = 0, index: int = 0) -> np.random.Generator:
    """The generator of image ``index`` under one corruption and severity: independent of the
    order in which images, corruptions and models are processed."""
    return np.random.default_rng([seed, zlib.crc32(name.encode()), severity, index])


def corrupt(image: np.ndarray | Image.Image, name: str, severity: int, *,
            rng: np.random.Generator | int | None = None) -> np.ndarray:
    """``image`` (H x W x 3 uint8 array or PIL image, grey and RGBA made RGB) under corruption
    ``name`` at ``severity`` 1-5: an H x W x 3 uint8 array. ``rng`` a generator or a seed (0
    when omitted), so the same call gives the same image."""
    check_corruption(name, severity)
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    x = array[..., :3].astype(np.float64) / 255.0
    generator = rng if isinstance(rng, np.random.Generator) else seed_for(name, severity,
                                                                          rng or 0)
    out = CORRUPTIONS[name](x, severity, generator)
    return (np.clip(out, 0, 1) * 255).astype(np.uint8)   # truncation, as ImageNet-C's np.uint8

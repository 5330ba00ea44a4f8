"""The stored results of explanation-quality runs (:mod:`fvcore.evaluation.explain_eval`), beside
the checkpoint: ``explain_quality.csv`` (one row per CAM method and test image: ROAD both ways,
deletion and insertion areas, milliseconds; the method ``random`` is the random-heatmap baseline)
and ``explain_sanity.csv`` (one row per method and randomisation stage: the mean Spearman
correlation with the trained model's heatmaps). Rows are keyed by the weights' SHA-256 with the
card's temperature, the test images and the seed: new weights make them stale. Torch-free: the
app reads them without loading a model."""
from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from fvcore.checkpoints.catalog import weights_sha256
from fvcore.checkpoints.folder import atomic_write

QUALITY, SANITY = "explain_quality.csv", "explain_sanity.csv"
KEYS = ("model_key", "data_key", "seed")
QUALITY_COLUMNS = (*KEYS, "method", "image", "label", "target", "road_morf", "road_lerf",
                   "deletion", "insertion", "ms")
SANITY_COLUMNS = (*KEYS, "method", "stage", "randomised", "total", "lowest", "n_images",
                  "spearman", "spearman_std")
RANDOM = "random"
"""The method name of the random-heatmap baseline."""
SCORES = ("road_morf", "road_lerf", "deletion", "insertion", "ms")


@dataclass(frozen=True)
class MethodQuality:
    """One method's means over the test images (``random``: the random-heatmap baseline)."""

    method: str
    n_images: int
    road_morf: float
    road_lerf: float
    deletion: float
    insertion: float
    ms: float

    @property
    def road(self) -> float:
        """ROAD combined: (MoRF drop - LeRF drop) / 2, higher = more faithful."""
        return (self.road_morf - self.road_lerf) / 2


@dataclass(frozen=True)
class SanityPoint:
    """One method at one randomisation stage: the mean (and spread) over the images of the
    Spearman correlation between the randomised and the trained model's heatmaps."""

    method: str
    stage: int
    randomised: int     # parameterised layers re-initialised, from the top
    total: int
    lowest: str         # the lowest one
    n_images: int
    spearman: float
    spearman_std: float

    @property
    def fraction(self) -> float:
        """The share of the layers randomised."""
        return self.randomised / self.total if self.total else 0.0


@dataclass(frozen=True)
class ExplainQuality:
    """One model's stored results for one set of weights, test images and seed (``computed``:
    the methods this run measured; the others were stored)."""

    model: str
    model_key: str
    data_key: str
    seed: int
    methods: tuple[MethodQuality, ...]
    sanity: tuple[SanityPoint, ...] = ()
    computed: tuple[str, ...] = ()

    def method(self, name: str) -> Optional[MethodQuality]:
        """The means of one method (None when it was not measured)."""
        return next((m for m in self.methods if m.method == name), None)

    def current(self, folder: str | Path, temperature: float = 1.0) -> bool:
        """Whether these results were computed from the checkpoint's present weights and
        temperature."""
        try:
            return self.model_key == explain_key(folder, temperature)
        except OSError:
            return False


def explain_key(folder: str | Path, temperature: float = 1.0) -> str:
    """16 hex digits of SHA-256 over the weights' SHA-256 and the card's temperature (which
    changes every probability these scores are made of)."""
    text = f"{weights_sha256(folder)}|T={temperature:.6g}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_rows(folder: str | Path, name: str, columns: Sequence[str]) -> list[dict[str, str]]:
    """The rows of ``folder/name`` that have ``columns`` (empty when there is no file)."""
    path = Path(folder) / name
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return [row for row in csv.DictReader(handle) if set(columns) <= set(row)]


def write_rows(folder: str | Path, name: str, columns: Sequence[str],
               rows: Sequence[Mapping[str, object]]) -> None:
    """Replace ``folder/name`` with ``rows`` atomically."""
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(Path(folder) / name, out.getvalue())


def keyed(rows: Sequence[Mapping[str, str]], keys: tuple[str, str, str]) -> list[Mapping]:
    """The rows of one set of weights, images and seed."""
    return [r for r in rows if (r["model_key"], r["data_key"], str(r["seed"])) == keys]


def method_means(rows: Sequence[Mapping[str, str]]) -> tuple[MethodQuality, ...]:
    """Per method (in the order first stored), the mean of each score over its images."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        means = {s: float(np.mean([float(r[s]) for r in mine])) for s in SCORES}
        out.append(MethodQuality(method, len(mine), **means))
    return tuple(out)


def sanity_points(rows: Sequence[Mapping[str, str]]) -> tuple[SanityPoint, ...]:
    """The stored randomisation stages, in file order."""
    return tuple(SanityPoint(r["method"], int(r["stage"]), int(r["randomised"]),
                             int(r["total"]), r["lowest"], int(r["n_images"]),
                             float(r["spearman"]), float(r["spearman_std"])) for r in rows)


def load_quality(folder: str | Path, name: str = "") -> Optional[ExplainQuality]:
    """The results last written into ``folder`` (the rows of ``explain_quality.csv`` sharing its
    last row's weights, images and seed, and the randomisation stages of the same), or None when
    there are none or they are unreadable."""
    try:
        raw = read_rows(folder, QUALITY, QUALITY_COLUMNS)
        if not raw:
            return None
        keys = (raw[-1]["model_key"], raw[-1]["data_key"], raw[-1]["seed"])
        methods = method_means(keyed(raw, keys))
        sanity = sanity_points(keyed(read_rows(folder, SANITY, SANITY_COLUMNS), keys))
    except (OSError, ValueError, KeyError, csv.Error):
        return None
    return ExplainQuality(name or Path(folder).name, keys[0], keys[1], int(keys[2]), methods,
                          sanity)

"""The results of corruption sweeps (:mod:`fvcore.evaluation.sweep`): a checkpoint's accuracy
and ECE per (corruption, severity) stored beside it in ``robustness.csv``, keyed by its weights
and the test images, and the mean corruption error (mCE) relative to a baseline model. Reading
them needs neither torch nor the corruptions (the app's Compare page reads them).
"""
from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from fvcore.checkpoints.catalog import WEIGHTS
from fvcore.checkpoints.folder import atomic_write
from fvcore.datasets.folders import Sample, labelled_samples
from fvcore.errors import FvError

ROBUSTNESS = "robustness.csv"
COLUMNS = ("model_key", "data_key", "seed", "corruption", "severity", "n_images", "accuracy",
           "ece")
CLEAN = "clean"
"""The corruption name of the uncorrupted row (severity 0)."""


@dataclass(frozen=True)
class SweepRow:
    """Accuracy and ECE of one model on the test images under one corruption and severity."""

    corruption: str
    severity: int
    n_images: int
    accuracy: float
    ece: float


@dataclass(frozen=True)
class Robustness:
    """One model's sweep: the clean row and every corrupted row, for one set of weights and
    images (``computed``: the corruptions this run measured; the others were stored)."""

    model: str
    model_key: str
    data_key: str
    clean: Optional[SweepRow]
    rows: tuple[SweepRow, ...]
    computed: tuple[str, ...] = ()

    @property
    def corruptions(self) -> list[str]:
        """The corruptions measured, in the order first stored."""
        return list(dict.fromkeys(r.corruption for r in self.rows))

    def errors(self) -> dict[tuple[str, int], float]:
        """(corruption, severity) -> top-1 error."""
        return {(r.corruption, r.severity): 1.0 - r.accuracy for r in self.rows}

    @property
    def mean_accuracy(self) -> float:
        """Mean accuracy over every corrupted row (NaN with none)."""
        return float(np.mean([r.accuracy for r in self.rows])) if self.rows else float("nan")

    @property
    def drop(self) -> float:
        """Relative robustness: clean accuracy minus the mean corrupted accuracy."""
        return (self.clean.accuracy if self.clean else float("nan")) - self.mean_accuracy


def weights_key(folder: Path, temperature: float = 1.0) -> str:
    """16 hex digits of SHA-256 over the weights file and the card's temperature (which changes
    the ECE, not the accuracy)."""
    digest = hashlib.sha256()
    with open(Path(folder) / WEIGHTS, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    digest.update(f"|T={temperature:.6g}".encode())
    return digest.hexdigest()[:16]


def data_key(samples: Sequence[Sample]) -> str:
    """16 hex digits of SHA-256 over the images' names (class folder and file) and labels."""
    text = "\n".join(f"{Path(p).parent.name}/{Path(p).name}|{label}" for p, label in samples)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def pick_samples(folders: Sequence[str | Path], classes: Sequence[str],
                 limit: Optional[int] = None) -> list[Sample]:
    """The labelled images of ``folders`` (class sub-folders), or ``limit`` of them spread
    evenly over the sorted list (so every class keeps a share)."""
    samples = [s for folder in folders for s in labelled_samples(Path(folder), classes)]
    if not samples:
        raise FvError(f"no labelled images under {', '.join(map(str, folders))}")
    if limit and limit < len(samples):
        picks = np.unique(np.linspace(0, len(samples) - 1, limit).round().astype(int))
        samples = [samples[i] for i in picks]
    return samples


def read_rows(folder: Path) -> list[dict[str, str]]:
    """The rows of ``folder/robustness.csv`` (empty when there is none)."""
    path = Path(folder) / ROBUSTNESS
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return [row for row in csv.DictReader(handle) if set(COLUMNS) <= set(row)]


def write_rows(folder: Path, rows: Sequence[Mapping[str, object]]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(Path(folder) / ROBUSTNESS, out.getvalue())


def sweep_row(raw: Mapping[str, str]) -> SweepRow:
    return SweepRow(raw["corruption"], int(raw["severity"]), int(raw["n_images"]),
                    float(raw["accuracy"]), float(raw["ece"]))


def load_robustness(folder: str | Path, name: str = "") -> Optional[Robustness]:
    """The sweep last written into ``folder/robustness.csv`` (the rows sharing its weights and
    images), or None when there is none or it is unreadable."""
    try:
        raw = read_rows(Path(folder))
        if not raw:
            return None
        keys = (raw[-1]["model_key"], raw[-1]["data_key"])
        mine = [sweep_row(r) for r in raw if (r["model_key"], r["data_key"]) == keys]
    except (OSError, ValueError, KeyError, csv.Error):
        return None
    clean = next((r for r in mine if r.corruption == CLEAN), None)
    return Robustness(name or Path(folder).name, keys[0], keys[1], clean,
                      tuple(r for r in mine if r.corruption != CLEAN))


def corruption_errors(errors: Mapping[tuple[str, int], float],
                      baseline: Mapping[tuple[str, int], float]) -> dict[str, float]:
    """CE per corruption (Hendrycks & Dietterich): the sum over severities of the model's error
    divided by the same sum of the baseline's, over the (corruption, severity) pairs both have;
    NaN where the baseline never errs."""
    shared = [key for key in errors if key in baseline]
    out: dict[str, float] = {}
    for name in dict.fromkeys(c for c, _ in shared):
        mine = sum(errors[k] for k in shared if k[0] == name)
        base = sum(baseline[k] for k in shared if k[0] == name)
        out[name] = mine / base if base > 0 else float("nan")
    return out


def mean_corruption_error(errors: Mapping[tuple[str, int], float],
                          baseline: Mapping[tuple[str, int], float]) -> float:
    """mCE: the mean of :func:`corruption_errors` (NaN when nothing is shared)."""
    ces = [v for v in corruption_errors(errors, baseline).values() if np.isfinite(v)]
    return float(np.mean(ces)) if ces else float("nan")

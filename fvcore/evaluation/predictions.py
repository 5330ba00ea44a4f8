"""``predictions.csv``, a checkpoint's stored test predictions: every test image's path, true and
predicted class, test domain (the dataset folder it came from) and full probability vector.
Files written before test domains existed have no domain column and still load: their rows are
one domain, named by the card's dataset."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from fvcore.checkpoints.card import ModelCard
from fvcore.checkpoints.catalog import PREDICTIONS
from fvcore.errors import CheckpointError, FvError

PROB_PREFIX = "p:"
DOMAIN = "domain"
"""The column of ``predictions.csv`` naming each row's test domain (absent in older files)."""
DEFAULT_DOMAIN = "test"
"""The domain of rows nothing names (an older ``predictions.csv`` without a card beside it)."""


@dataclass
class Predictions:
    """Stored test predictions of one model: paths, true and predicted labels, probabilities and
    each row's test domain (the dataset folder it came from)."""

    paths: list[str]
    labels: np.ndarray      # true class indices
    probs: np.ndarray       # N x C
    classes: list[str]
    domains: Optional[list[str]] = None   # one per row; None: every row is DEFAULT_DOMAIN

    def __post_init__(self) -> None:
        if self.domains is None:
            self.domains = [DEFAULT_DOMAIN] * len(self.paths)
        if len(self.domains) != len(self.paths):
            raise FvError(f"{len(self.domains)} domains for {len(self.paths)} predictions")

    @property
    def preds(self) -> np.ndarray:
        return self.probs.argmax(1)

    @property
    def domain_names(self) -> list[str]:
        """The test domains, in the order their first rows appear."""
        return list(dict.fromkeys(self.domains))

    def subset(self, domain: str) -> "Predictions":
        """The rows of one test domain."""
        if domain not in self.domain_names:
            raise FvError(f"no test domain {domain!r}; known: {', '.join(self.domain_names)}")
        idx = np.array([i for i, d in enumerate(self.domains) if d == domain], dtype=np.int64)
        return Predictions([self.paths[i] for i in idx], self.labels[idx], self.probs[idx],
                           self.classes, [domain] * len(idx))

    def to_csv(self) -> str:
        """CSV: path, label, pred, domain, then one probability column per class (``p:<class>``)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["path", "label", "pred", DOMAIN,
                         *[PROB_PREFIX + c for c in self.classes]])
        rows = zip(self.paths, self.labels, self.preds, self.domains, self.probs, strict=True)
        for path, label, pred, domain, row in rows:
            writer.writerow([path, self.classes[label], self.classes[pred], domain,
                             *[f"{p:.6g}" for p in row]])
        return out.getvalue()


def concat_predictions(parts: Sequence[Predictions]) -> Predictions:
    """One model's predictions on several test domains as one."""
    if not parts:
        raise FvError("no predictions to combine")
    classes = parts[0].classes
    if any(p.classes != classes for p in parts):
        raise FvError("predictions with different class lists cannot be combined")
    return Predictions([x for p in parts for x in p.paths],
                       np.concatenate([p.labels for p in parts]),
                       np.concatenate([p.probs for p in parts]), list(classes),
                       [d for p in parts for d in p.domains])


def read_predictions(folder: str | Path, classes: Sequence[str], *,
                     domain: Optional[str] = None) -> Optional[Predictions]:
    """A checkpoint's ``predictions.csv`` (None when absent); columns must match ``classes``. A
    file without the domain column is one domain: ``domain``, else the card's dataset."""
    path = Path(folder) / PREDICTIONS
    if not path.is_file():
        return None
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header = rows[0] if rows else []
    probs_header = [PROB_PREFIX + c for c in classes]
    with_domain = header == ["path", "label", "pred", DOMAIN, *probs_header]
    if not with_domain and header != ["path", "label", "pred", *probs_header]:
        raise FvError("predictions.csv columns do not match the card's classes", source=str(folder))
    index = {c: i for i, c in enumerate(classes)}
    body, first = rows[1:], 4 if with_domain else 3
    try:
        labels = np.array([index[r[1]] for r in body], dtype=np.int64)
        probs = np.array([[float(x) for x in r[first:]] for r in body], dtype=np.float64)
        domains = ([r[3] for r in body] if with_domain
                   else [domain or _card_dataset(Path(folder))] * len(body))
    except (KeyError, ValueError, IndexError) as exc:
        raise FvError(f"malformed predictions.csv ({exc})", source=str(folder)) from None
    return Predictions([r[0] for r in body], labels, probs.reshape(len(body), len(classes)),
                       list(classes), domains)


def _card_dataset(folder: Path) -> str:
    """The dataset of the card beside an older ``predictions.csv``: the domain of all its rows."""
    try:
        return ModelCard.read(folder).dataset
    except CheckpointError:
        return DEFAULT_DOMAIN

"""Evaluate checkpoints on labelled image folders, store and read ``predictions.csv``, and compare
models on shared test images (McNemar, soft-voting ensemble)."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Sequence

import numpy as np

from fvcore.checkpoints.catalog import PREDICTIONS
from fvcore.checkpoints.folder import atomic_write
from fvcore.errors import FvError
from fvcore.evaluation.calibration import calibrate
from fvcore.evaluation.metrics import log_loss, mcnemar, report, wilson_interval
from fvcore.inference.images import load_image

if TYPE_CHECKING:
    import torch

    from fvcore.datasets.folders import DataSplits
    from fvcore.inference.classifier import Classifier

PROB_PREFIX = "p:"


@dataclass
class Predictions:
    """Stored test predictions of one model: paths, true and predicted labels, probabilities."""

    paths: list[str]
    labels: np.ndarray      # true class indices
    probs: np.ndarray       # N x C
    classes: list[str]

    @property
    def preds(self) -> np.ndarray:
        return self.probs.argmax(1)

    def to_csv(self) -> str:
        """CSV: path, label, pred, then one probability column per class (``p:<class>``)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["path", "label", "pred", *[PROB_PREFIX + c for c in self.classes]])
        rows = zip(self.paths, self.labels, self.preds, self.probs, strict=True)
        for path, label, pred, row in rows:
            writer.writerow([path, self.classes[label], self.classes[pred],
                             *[f"{p:.6g}" for p in row]])
        return out.getvalue()


def read_predictions(folder: str | Path, classes: Sequence[str]) -> Optional[Predictions]:
    """A checkpoint's ``predictions.csv`` (None when absent); columns must match ``classes``."""
    path = Path(folder) / PREDICTIONS
    if not path.is_file():
        return None
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header = rows[0] if rows else []
    expected = ["path", "label", "pred", *[PROB_PREFIX + c for c in classes]]
    if header != expected:
        raise FvError("predictions.csv columns do not match the card's classes", source=str(folder))
    index = {c: i for i, c in enumerate(classes)}
    body = rows[1:]
    try:
        labels = np.array([index[r[1]] for r in body], dtype=np.int64)
        probs = np.array([[float(x) for x in r[3:]] for r in body], dtype=np.float64)
    except (KeyError, ValueError, IndexError) as exc:
        raise FvError(f"malformed predictions.csv ({exc})", source=str(folder)) from None
    return Predictions([r[0] for r in body], labels, probs.reshape(len(body), len(classes)),
                       list(classes))


def _batches(classifier: Classifier, samples: Sequence[tuple[Path, int]], batch_size: int,
             progress: Optional[Callable[[int, int], None]] = None) -> Iterator["torch.Tensor"]:
    """Preprocessed batches of labelled samples, in order."""
    import torch
    for start in range(0, len(samples), batch_size):
        chunk = samples[start:start + batch_size]
        yield torch.stack([classifier.preset(load_image(p)) for p, _ in chunk])
        if progress:
            progress(min(start + batch_size, len(samples)), len(samples))


def predict_samples(classifier: Classifier, samples: Sequence[tuple[Path, int]], *, root: Path,
                    batch_size: int = 32,
                    progress: Optional[Callable[[int, int], None]] = None) -> Predictions:
    """Run ``classifier`` over labelled samples in batches; paths are stored relative to root."""
    probs = [classifier.predict_tensor(batch, batch_size=batch_size)
             for batch in _batches(classifier, samples, batch_size, progress)]
    paths = [_relative(p, root) for p, _ in samples]
    labels = np.array([label for _, label in samples], dtype=np.int64)
    matrix = np.concatenate(probs) if probs else np.zeros((0, len(classifier.classes)))
    return Predictions(paths, labels, matrix.astype(np.float64), list(classifier.classes))


def calibrate_classifier(classifier: Classifier, samples: Sequence[tuple[Path, int]], *,
                         batch_size: int = 32) -> dict[str, Any]:
    """Fit the temperature of ``classifier`` on labelled samples (its validation split, never
    the test split) and put it, with the record of the fit, into its card (in memory; saved by
    :func:`save_evaluation`). Returns the record."""
    logits = [classifier.logits_tensor(batch, batch_size=batch_size)
              for batch in _batches(classifier, samples, batch_size)]
    matrix = np.concatenate(logits) if logits else np.zeros((0, len(classifier.classes)))
    labels = np.array([label for _, label in samples], dtype=np.int64)
    classifier.card.temperature, classifier.card.calibration = calibrate(matrix, labels)
    return classifier.card.calibration


def calibrate_and_test(classifier: Classifier, data: DataSplits, *,
                       command: str = "") -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit the temperature on ``data``'s validation split, predict its test split with it and
    save both (card and ``predictions.csv``): the end of training and ``fvcore calibrate``.
    ``command`` goes into the calibration record when the fit was a separate step. Returns the
    record and the full test report."""
    fit = calibrate_classifier(classifier, data.splits["validation"])
    if command:
        fit["command"] = command
    preds = predict_samples(classifier, data.splits["test"], root=data.root)
    full = evaluate_predictions(preds, data.groups)
    save_evaluation(classifier, preds, full, dataset=data.name)
    return fit, full


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix()


def evaluate_predictions(preds: Predictions,
                         groups: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """The full metrics report of stored predictions."""
    return report(preds.probs, preds.labels, preds.classes, groups)


def card_metrics(full: dict[str, Any], dataset: str) -> dict[str, Any]:
    """The summary of a report that goes into ``card.json``."""
    keys = ("accuracy", "accuracy_ci95", "loss", "n_images", "correct", "macro_f1", "weighted_f1",
            "ece", "top3_accuracy", "top5_accuracy", "group_accuracy")
    return {"dataset": dataset, **{k: full[k] for k in keys if k in full}}


def save_evaluation(classifier: Classifier, preds: Predictions, full: dict[str, Any], *,
                    dataset: str) -> None:
    """Rewrite ``predictions.csv`` and the card's test metrics of a checkpoint folder."""
    if classifier.path is None:
        raise FvError("this classifier was not loaded from a folder; nothing to save to")
    atomic_write(classifier.path / PREDICTIONS, preds.to_csv())
    classifier.card.metrics = card_metrics(full, dataset)
    atomic_write(classifier.path / "card.json", classifier.card.to_json())


def align(models: dict[str, Predictions]) -> tuple[list[str], dict[str, Predictions]]:
    """Restrict every model's predictions to the images they all share (same path and label)."""
    if not models:
        return [], {}
    shared = set.intersection(*[set(p.paths) for p in models.values()])
    order = sorted(shared)
    aligned = {}
    for name, p in models.items():
        where = {path: i for i, path in enumerate(p.paths)}
        idx = np.array([where[path] for path in order], dtype=np.int64)
        aligned[name] = Predictions(order, p.labels[idx], p.probs[idx], p.classes)
    return order, aligned


def compare(models: dict[str, Predictions]) -> dict[str, Any]:
    """Per-model accuracy on the shared images, pairwise McNemar tests and the soft-voting
    ensemble (mean of probabilities) accuracy."""
    if len(models) < 1:
        raise FvError("nothing to compare: no model has stored predictions")
    classes = {tuple(p.classes) for p in models.values()}
    if len(classes) != 1:
        raise FvError("models with different class lists cannot be compared")
    paths, aligned = align(models)
    if not paths:
        raise FvError("the models share no test images")
    labels = next(iter(aligned.values())).labels
    correct = {n: p.preds == p.labels for n, p in aligned.items()}
    pairs = []
    for a, b in combinations(sorted(aligned), 2):
        test = mcnemar(correct[a], correct[b])
        pairs.append({"a": a, "b": b, **test, "significant": test["p_value"] < 0.05})
    mean = np.mean([p.probs for p in aligned.values()], axis=0)
    ens_correct = int((mean.argmax(1) == labels).sum())
    return {
        "n_images": len(paths),
        "models": {n: {"accuracy": float(c.mean()),
                       "accuracy_ci95": list(wilson_interval(int(c.sum()), len(c)))}
                   for n, c in correct.items()},
        "mcnemar": pairs,
        "ensemble": {"members": sorted(aligned), "accuracy": ens_correct / len(paths),
                     "loss": log_loss(mean, labels),
                     "accuracy_ci95": list(wilson_interval(ens_correct, len(paths)))},
    }

"""Evaluate checkpoints on labelled image folders, one test domain per folder (the card's
``metrics`` are over all test images, its ``metrics_by_split`` per domain), save the results
(``predictions.csv`` lives in :mod:`fvcore.evaluation.predictions`), and compare models on shared
test images (McNemar, soft-voting ensemble)."""
from __future__ import annotations

import os
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Sequence

import numpy as np

from fvcore.checkpoints.catalog import CARD, PREDICTIONS
from fvcore.checkpoints.folder import atomic_write
from fvcore.datasets.folders import labelled_samples
from fvcore.errors import FvError
from fvcore.evaluation.calibration import calibrate
from fvcore.evaluation.metrics import log_loss, mcnemar, report, wilson_interval
from fvcore.evaluation.predictions import Predictions, concat_predictions, read_predictions
from fvcore.inference.images import load_image

if TYPE_CHECKING:
    import torch

    from fvcore.datasets.folders import DataSplits
    from fvcore.inference.classifier import Classifier

__all__ = ["Predictions", "align", "calibrate_and_test", "calibrate_classifier", "card_metrics",
           "compare", "evaluate_predictions", "metrics_by_split", "predict_folders",
           "predict_samples", "read_predictions", "save_evaluation"]
"""Predictions and read_predictions are re-exported: callers found them here first."""


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
                    domain: Optional[str] = None,
                    relative: Optional[Callable[[Path], str]] = None, batch_size: int = 32,
                    progress: Optional[Callable[[int, int], None]] = None) -> Predictions:
    """Run ``classifier`` over labelled samples in batches; paths are stored relative to root
    (or as ``relative`` names them), every row in test domain ``domain`` (default: root's name)."""
    probs = [classifier.predict_tensor(batch, batch_size=batch_size)
             for batch in _batches(classifier, samples, batch_size, progress)]
    paths = [relative(p) if relative else _relative(p, root) for p, _ in samples]
    labels = np.array([label for _, label in samples], dtype=np.int64)
    matrix = np.concatenate(probs) if probs else np.zeros((0, len(classifier.classes)))
    return Predictions(paths, labels, matrix.astype(np.float64), list(classifier.classes),
                       [domain or Path(root).name] * len(paths))


def predict_folders(classifier: Classifier, folders: Sequence[str | Path], *,
                    prefixed: bool = False, batch_size: int = 32) -> Predictions:
    """Predict labelled folders of class sub-folders (e.g. ``DIR/test``), each its own test
    domain named by its dataset folder (``DIR``); paths are relative to ``DIR``, and start with
    ``DIR``'s name when ``prefixed`` (as in a combined dataset) or when there are several."""
    folders = [Path(f) for f in folders]
    names = [Path(os.path.abspath(f)).parent.name for f in folders]
    if len(set(names)) < len(names):
        raise FvError(f"two test folders belong to datasets of the same name: {', '.join(names)}")
    prefixed = prefixed or len(folders) > 1
    parts = []
    for folder, name in zip(folders, names, strict=True):
        root = folder.parent
        samples = labelled_samples(folder, classifier.classes)
        parts.append(predict_samples(
            classifier, samples, root=root, domain=name, batch_size=batch_size,
            relative=(lambda p, r=root, n=name: f"{n}/{_relative(p, r)}") if prefixed else None))
    return concat_predictions(parts)


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
    """Fit the temperature on ``data``'s validation split, predict its test domains with it and
    save both (card and ``predictions.csv``): the end of training and ``fvcore calibrate``.
    ``command`` goes into the calibration record when the fit was a separate step. Returns the
    record and the full test report."""
    fit = calibrate_classifier(classifier, data.splits["validation"])
    if command:
        fit["command"] = command
    preds = concat_predictions([
        predict_samples(classifier, samples, root=data.root, domain=domain,
                        relative=data.relative)
        for domain, samples in data.test_domains.items()])
    full = evaluate_predictions(preds, data.groups)
    save_evaluation(classifier, preds, full, dataset=data.name, groups=data.groups)
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


def metrics_by_split(preds: Predictions,
                     groups: Optional[dict[str, str]] = None) -> dict[str, dict[str, Any]]:
    """The card's summary (:func:`card_metrics`) of each test domain, in the domains' order."""
    return {domain: card_metrics(evaluate_predictions(preds.subset(domain), groups), domain)
            for domain in preds.domain_names}


def save_evaluation(classifier: Classifier, preds: Predictions, full: dict[str, Any], *,
                    dataset: str, groups: Optional[dict[str, str]] = None) -> None:
    """Rewrite ``predictions.csv`` and the card's test metrics of a checkpoint folder: over all
    test images and per test domain (``groups`` default: the card's)."""
    if classifier.path is None:
        raise FvError("this classifier was not loaded from a folder; nothing to save to")
    atomic_write(classifier.path / PREDICTIONS, preds.to_csv())
    classifier.card.metrics = card_metrics(full, dataset)
    classifier.card.metrics_by_split = metrics_by_split(
        preds, classifier.card.groups if groups is None else groups)
    atomic_write(classifier.path / CARD, classifier.card.to_json())


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
        aligned[name] = Predictions(order, p.labels[idx], p.probs[idx], p.classes,
                                    [p.domains[i] for i in idx])
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

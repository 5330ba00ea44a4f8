"""Analyses of stored predictions for comparing models: full reports, rankings, confusion
frames, reliability, pairwise significance (McNemar) and misclassified images. Pure numpy/pandas;
the app draws them (:mod:`fvcore.app.charts`)."""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from fvcore.evaluation.evaluate import Predictions, align, compare, evaluate_predictions
from fvcore.evaluation.metrics import calibration


def reports(preds: Mapping[str, Predictions], groups: Optional[dict[str, str]] = None
            ) -> dict[str, dict[str, Any]]:
    """The full metrics report of each model's predictions."""
    return {name: evaluate_predictions(p, groups) for name, p in preds.items()}


def ranked(full: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The models of :func:`reports` by accuracy, best first (ties keep their order)."""
    return sorted(full, key=lambda name: -full[name]["accuracy"])


def ranked_predictions(preds: Mapping[str, Predictions]) -> list[str]:
    """The models of stored predictions by test accuracy, best first (ties keep their order);
    cheaper than :func:`ranked` over full reports."""
    return sorted(preds, key=lambda name: -float(np.mean(preds[name].preds == preds[name].labels)))


def report_table(full: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Headline metrics of each report, one row per model (for tables and CSV downloads)."""
    keys = ("accuracy", "macro_f1", "weighted_f1", "top3_accuracy", "group_accuracy", "ece",
            "loss", "n_images")
    rows = [{"model": name, **{k: r.get(k) for k in keys},
             "ci_low": r["accuracy_ci95"][0], "ci_high": r["accuracy_ci95"][1]}
            for name, r in full.items()]
    return pd.DataFrame(rows, columns=["model", *keys, "ci_low", "ci_high"])


def per_class_f1(full: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Classes x models F1 scores."""
    return pd.DataFrame({name: {c: v["f1"] for c, v in r["per_class"].items()}
                         for name, r in full.items()})


def confusion_frame(report: Mapping[str, Any], classes: Sequence[str], *,
                    normalise: bool = False) -> pd.DataFrame:
    """True x predicted counts, or row-normalised rates (each true class sums to 1)."""
    matrix = np.asarray(report["confusion"], dtype=float)
    if normalise:
        totals = matrix.sum(1, keepdims=True)
        matrix = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    return pd.DataFrame(matrix, index=list(classes), columns=list(classes))


def top_confusions(report: Mapping[str, Any], classes: Sequence[str], n: int = 10
                   ) -> pd.DataFrame:
    """The ``n`` most frequent mistakes (true -> predicted class pairs), largest count first, with
    the share of the true class they take; with 34 classes the matrix alone hides them."""
    matrix = np.asarray(report["confusion"], dtype=float)
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    totals = matrix.sum(1)
    order = np.argsort(-off, axis=None, kind="stable")[:n]
    rows = [{"true": classes[t], "predicted": classes[q], "images": int(off[t, q]),
             "share": off[t, q] / totals[t]}
            for t, q in zip(*np.unravel_index(order, off.shape), strict=True) if off[t, q] > 0]
    return pd.DataFrame(rows, columns=["true", "predicted", "images", "share"])


def confusion_difference(a: Mapping[str, Any], b: Mapping[str, Any], classes: Sequence[str], *,
                         normalise: bool = False) -> pd.DataFrame:
    """Confusion of model a minus model b: positive cells are where a puts more images."""
    return (confusion_frame(a, classes, normalise=normalise)
            - confusion_frame(b, classes, normalise=normalise))


def reliability(preds: Mapping[str, Predictions], bins: int = 10
                ) -> tuple[pd.DataFrame, dict[str, float]]:
    """Reliability-diagram rows (model, confidence, accuracy, count) and each model's ECE."""
    rows, eces = [], {}
    for name, p in preds.items():
        result = calibration(p.probs, p.labels, bins=bins)
        eces[name] = result["ece"]
        rows += [{"model": name, **b} for b in result["bins"]]
    return pd.DataFrame(rows, columns=["model", "bin", "lower", "upper", "count", "accuracy",
                                       "confidence"]), eces


@dataclasses.dataclass
class Significance:
    """Pairwise McNemar tests as matrices, rows and columns best model first.

    ``pvals``: exact p-values (symmetric, NaN diagonal); ``diffs``: row minus column accuracy in
    percentage points on the shared images (antisymmetric); ``text``: hover text per cell;
    ``result``: :func:`fvcore.evaluation.evaluate.compare`'s output (shared images, accuracies,
    ensemble)."""

    pvals: pd.DataFrame
    diffs: pd.DataFrame
    text: pd.DataFrame
    result: dict


def format_p(p: float) -> str:
    """A p-value as people read it: ``p=0.255``, ``p=0.003``, ``p<0.001``."""
    return f"p={p:.3f}" if p >= 0.001 else "p<0.001"


def mcnemar_matrix(preds: Mapping[str, Predictions]) -> Significance:
    """Every pair of models tested with McNemar's exact test on their shared test images."""
    result = compare(dict(preds))
    n = result["n_images"]
    names = ranked(result["models"])
    pvals = pd.DataFrame(np.nan, index=names, columns=names)
    diffs = pd.DataFrame(np.nan, index=names, columns=names)
    text = pd.DataFrame("", index=names, columns=names)
    for pair in result["mcnemar"]:
        a, b, p = pair["a"], pair["b"], pair["p_value"]
        pvals.loc[a, b] = pvals.loc[b, a] = p
        for x, y, only_x, only_y in ((a, b, pair["only_a"], pair["only_b"]),
                                     (b, a, pair["only_b"], pair["only_a"])):
            diffs.loc[x, y] = 100.0 * (only_x - only_y) / n
            text.loc[x, y] = (f"{x} minus {y}: {diffs.loc[x, y]:+.1f} points, p={p:.3g}<br>"
                              f"only {x} right: {only_x}, only {y} right: {only_y}")
    return Significance(pvals, diffs, text, result)


MISTAKES = {"model": "all its mistakes",
            "only": "mistakes only it makes (every other selected model is right)",
            "all": "mistakes every selected model makes"}


def misclassified(p: Predictions, limit: int = 24, *,
                  others: Optional[Mapping[str, Predictions]] = None,
                  which: str = "model") -> pd.DataFrame:
    """The model's wrong test predictions, most confident first.

    ``which`` (a key of :data:`MISTAKES`) narrows them using ``others``, the other models'
    predictions (not this one's), on the images every model shares: ``"only"`` keeps the images
    every other model gets right (the model's own blind spots), ``"all"`` those every other model
    gets wrong too (hard or mislabelled photos). ``wrong_by`` counts the models, this one
    included, that are wrong on each image."""
    if which not in MISTAKES:
        raise ValueError(f"which must be one of {sorted(MISTAKES)}, not {which!r}")
    columns = ["path", "true", "pred", "prob", "true_prob", "wrong_by"]
    others = dict(others or {})
    if others:
        _, aligned = align({"": p, **others})
        p = aligned.pop("")
        wrong_by = sum((o.preds != o.labels).astype(int) for o in aligned.values())
    else:
        wrong_by = np.zeros(len(p.paths), dtype=int)
    wrong = p.preds != p.labels
    if which == "only":
        wrong &= wrong_by == 0
    elif which == "all":
        wrong &= wrong_by == len(others)
    rows = [{"path": p.paths[i], "true": p.classes[p.labels[i]], "pred": p.classes[p.preds[i]],
             "prob": float(p.probs[i, p.preds[i]]), "true_prob": float(p.probs[i, p.labels[i]]),
             "wrong_by": int(wrong_by[i]) + 1}
            for i in np.flatnonzero(wrong)]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("prob", ascending=False, kind="stable").head(limit) \
        .reset_index(drop=True)


def predictions_long(preds: Mapping[str, Predictions]) -> pd.DataFrame:
    """Every model's prediction of every image, one row each (for a CSV download)."""
    rows = [{"model": name, "path": path, "label": p.classes[label], "pred": p.classes[pred],
             "prob": float(row[pred]), "correct": bool(label == pred)}
            for name, p in preds.items()
            for path, label, pred, row in zip(p.paths, p.labels, p.preds, p.probs, strict=True)]
    return pd.DataFrame(rows, columns=["model", "path", "label", "pred", "prob", "correct"])

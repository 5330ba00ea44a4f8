"""Classification metrics from stored probabilities: accuracy with a confidence interval, loss,
precision/recall/F1, confusion matrix, calibration, top-k, group accuracy, McNemar."""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np


def wilson_interval(correct: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a proportion."""
    if total == 0:
        return (0.0, 0.0)
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class."""
    if len(labels) == 0:
        return float("nan")
    picked = probs[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(picked, 1e-12, 1.0)).mean())


def confusion(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """C x C counts; rows are true classes, columns predictions."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, preds), 1)
    return matrix


def per_class(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class from a confusion matrix (0 where undefined)."""
    tp = np.diag(matrix).astype(float)
    predicted, support = matrix.sum(0).astype(float), matrix.sum(1).astype(float)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(tp), where=total > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def calibration(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> dict[str, Any]:
    """Expected calibration error (equal-width confidence bins) and the reliability diagram."""
    confidence = probs.max(1)
    correct = (probs.argmax(1) == labels).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece, rows = 0.0, []
    for b in range(bins):
        mask = which == b
        if mask.any():
            acc, conf = correct[mask].mean(), confidence[mask].mean()
            ece += mask.mean() * abs(acc - conf)
            rows.append({"bin": b, "lower": edges[b], "upper": edges[b + 1],
                         "count": int(mask.sum()), "accuracy": float(acc),
                         "confidence": float(conf)})
    return {"ece": float(ece), "bins": rows}


def top_k_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of samples whose true class is among the ``k`` most probable."""
    k = min(k, probs.shape[1])
    top = np.argsort(-probs, axis=1)[:, :k]
    return float((top == labels[:, None]).any(1).mean()) if len(labels) else float("nan")


def group_accuracy(labels: np.ndarray, preds: np.ndarray, classes: Sequence[str],
                   groups: dict[str, str]) -> Optional[float]:
    """Accuracy at the group level (e.g. fruit vs vegetable); None without groups."""
    if not groups or not all(c in groups for c in classes):
        return None
    names = np.array([groups[c] for c in classes])
    return float((names[labels] == names[preds]).mean()) if len(labels) else None


def report(probs: np.ndarray, labels: np.ndarray, classes: Sequence[str],
           groups: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """Every metric of the evaluate command, as plain JSON-able values."""
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    preds = probs.argmax(1)
    correct = int((preds == labels).sum())
    n = len(labels)
    matrix = confusion(labels, preds, len(classes))
    stats = per_class(matrix)
    present = stats["support"] > 0
    weights = stats["support"] / max(1, stats["support"].sum())
    low, high = wilson_interval(correct, n)
    out: dict[str, Any] = {
        "n_images": n, "correct": correct, "accuracy": correct / n if n else float("nan"),
        "accuracy_ci95": [low, high], "loss": log_loss(probs, labels),
        "top3_accuracy": top_k_accuracy(probs, labels, 3),
        "top5_accuracy": top_k_accuracy(probs, labels, 5),
        "ece": calibration(probs, labels)["ece"],
    }
    for name in ("precision", "recall", "f1"):
        out[f"macro_{name}"] = float(stats[name][present].mean()) if present.any() else 0.0
        out[f"weighted_{name}"] = float((stats[name] * weights).sum())
    group = group_accuracy(labels, preds, classes, groups or {})
    if group is not None:
        out["group_accuracy"] = group
    out["per_class"] = {c: {k: float(stats[k][i]) for k in ("precision", "recall", "f1", "support")}
                        for i, c in enumerate(classes)}
    out["confusion"] = matrix.tolist()
    return out


def mcnemar(a_correct: np.ndarray, b_correct: np.ndarray) -> dict[str, float]:
    """Exact McNemar test on paired correctness (two-sided binomial p-value on discordant pairs)."""
    from scipy.stats import binomtest
    a, b = np.asarray(a_correct, bool), np.asarray(b_correct, bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    discordant = only_a + only_b
    p = 1.0 if discordant == 0 else float(binomtest(only_a, discordant, 0.5).pvalue)
    return {"only_a": only_a, "only_b": only_b, "p_value": p}

"""Evaluation numbers agree with scikit-learn on the same predictions."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from fvcore.evaluation.metrics import calibration, mcnemar, report, wilson_interval


@pytest.fixture()
def predictions():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 300)
    logits = rng.normal(size=(300, 4)) + 2.0 * np.eye(4)[labels] * rng.uniform(0, 1.5, (300, 1))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return probs, labels


def test_report_matches_scikit_learn(predictions):
    probs, labels = predictions
    classes = ["a", "b", "c", "d"]
    out = report(probs, labels, classes, {"a": "x", "b": "x", "c": "y", "d": "y"})
    preds = probs.argmax(1)
    assert out["accuracy"] == pytest.approx(sk.accuracy_score(labels, preds))
    assert out["loss"] == pytest.approx(sk.log_loss(labels, probs, labels=range(4)))
    for avg in ("macro", "weighted"):
        p, r, f, _ = sk.precision_recall_fscore_support(labels, preds, average=avg, zero_division=0)
        assert (out[f"{avg}_precision"], out[f"{avg}_recall"], out[f"{avg}_f1"]) == \
            pytest.approx((p, r, f))
    assert out["confusion"] == sk.confusion_matrix(labels, preds).tolist()
    assert out["top3_accuracy"] == pytest.approx(sk.top_k_accuracy_score(labels, probs, k=3))
    f1 = sk.f1_score(labels, preds, average=None)
    assert [out["per_class"][c]["f1"] for c in classes] == pytest.approx(list(f1))
    groups = np.array(["x", "x", "y", "y"])
    assert out["group_accuracy"] == pytest.approx((groups[labels] == groups[preds]).mean())


def test_expected_calibration_error_of_a_perfectly_calibrated_model_is_small():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.5, 1.0, 20000)
    correct = rng.uniform(size=20000) < confidence
    probs = np.stack([confidence, 1 - confidence], 1)
    labels = np.where(correct, 0, 1)
    assert calibration(probs, labels)["ece"] < 0.02
    overconfident = np.stack([np.full(1000, 0.99), np.full(1000, 0.01)], 1)
    assert calibration(overconfident, np.r_[np.zeros(500, int), np.ones(500, int)])["ece"] \
        == pytest.approx(0.49)


def test_wilson_interval_brackets_the_proportion():
    low, high = wilson_interval(90, 100)
    assert low < 0.9 < high and high - low < 0.13
    assert wilson_interval(0, 0) == (0.0, 0.0)


def test_mcnemar_flags_a_real_difference_and_not_a_tie():
    a = np.r_[np.ones(80, bool), np.zeros(20, bool)]
    b = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    assert mcnemar(a, b)["p_value"] < 0.001
    assert mcnemar(a, a)["p_value"] == 1.0

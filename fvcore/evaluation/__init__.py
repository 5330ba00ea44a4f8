"""Evaluation: metrics from stored probabilities, evaluating checkpoints on labelled folders,
``predictions.csv``, temperature scaling, and the analyses the comparison dashboard shows."""
from fvcore._lazy import lazy_exports

EXPORTS = {"Predictions": "evaluate", "compare": "evaluate", "evaluate_predictions": "evaluate",
           "read_predictions": "evaluate", "calibrate": "calibration", "report": "metrics"}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)

"""Evaluation: metrics from stored probabilities, evaluating checkpoints on labelled folders (one
test domain per folder, metrics over all and per domain), ``predictions.csv``, temperature
scaling, and the analyses the comparison dashboard shows (confusion cells' images, label issues,
embedding maps, robustness sweeps, explanation quality)."""
from fvcore._lazy import lazy_exports

EXPORTS = {"Predictions": "predictions", "compare": "evaluate",
           "evaluate_predictions": "evaluate", "metrics_by_split": "evaluate",
           "predict_folders": "evaluate", "read_predictions": "predictions",
           "concat_predictions": "predictions", "calibrate": "calibration", "report": "metrics"}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)

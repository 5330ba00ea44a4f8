"""Inference: images in, probabilities out. The one image loader, the eval preset, the
:class:`Classifier` with its runner (PyTorch or ONNX Runtime), loading checkpoints, and many
models on many images at once with the ensemble and agreement, and importing a notebook's
state dict, self-checked."""
from fvcore._lazy import lazy_exports

EXPORTS = {"Classifier": "classifier", "load_image": "images", "discover": "loading",
           "load_checkpoint": "loading", "OnnxRunner": "runners", "Runner": "runners",
           "TorchRunner": "runners", "ImageFailure": "predict", "ImagePrediction": "predict",
           "ModelAnswer": "predict", "PredictionRun": "predict", "predict_all": "predict",
           "predict_images": "predict",
           "import_state_dict": "importing"}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)

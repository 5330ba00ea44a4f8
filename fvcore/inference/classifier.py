"""A loaded checkpoint ready to predict and explain: :class:`Classifier`."""
from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from fvcore.checkpoints.card import ModelCard
from fvcore.errors import FvError
from fvcore.explain.cam import CamResult, CamView, compute_cam, faithfulness
from fvcore.inference.images import ImageInput, ensure_rgb
from fvcore.inference.logits import softmax
from fvcore.inference.presets import EvalPreset
from fvcore.inference.runners import Runner, TorchRunner
from fvcore.models.cost import time_call
from fvcore.models.foreign import cam_target, is_foreign
from fvcore.models.registry import get_spec, get_submodule


def eval_preset(card: ModelCard) -> EvalPreset:
    """The evaluation transform a card describes."""
    return EvalPreset(crop_size=card.image_size, resize_size=card.resize_size, mean=card.mean,
                      std=card.std)


def _eval_module(model: nn.Module) -> nn.Module:
    return model.float().eval().requires_grad_(False)


class Classifier:
    """One trained model: its card, its float32 eval-mode module, predict and Grad-CAM.

    Predictions run on ``runner`` (a :class:`~fvcore.inference.runners.Runner`: eager PyTorch by
    default, or ONNX Runtime as :func:`~fvcore.inference.loading.load_checkpoint` chooses);
    ``backend`` says which. ``predict`` is safe to call from many threads; CAM calls on one
    classifier are serialised by its lock (grad-cam's hooks live on the shared module).
    """

    def __init__(self, model: Optional[nn.Module], card: ModelCard, *, name: str = "",
                 path: Optional[Path] = None,
                 loader: Optional[Callable[[], nn.Module]] = None,
                 runner: Optional[Runner] = None) -> None:
        if model is None and loader is None:
            raise FvError(f"classifier {name or card.arch!r} needs a model or a loader")
        self._model = None if model is None else _eval_module(model)
        self._loader = loader
        self._model_lock = threading.Lock()
        self.card = card
        self.name = name or card.arch
        self.path = path
        self.spec = None if is_foreign(card.arch) else get_spec(card.arch)
        self.cam_layer, self.cam_reshape = (cam_target(card.builder) if self.spec is None else
                                            (self.spec.cam_layer, self.spec.reshape))
        self.preset = eval_preset(card)
        self.lock = threading.Lock()
        self._runner = runner if runner is not None else self.torch_runner

    @property
    def runner(self) -> Runner:
        """What predictions run on (given when the classifier was built)."""
        return self._runner

    @property
    def backend(self) -> str:
        """``"onnx"`` or ``"pytorch"``: the runner's backend."""
        return self._runner.backend

    @property
    def torch_runner(self) -> TorchRunner:
        """Eager PyTorch on this classifier's module (under its lock), whatever ``runner`` is."""
        return TorchRunner(lambda: self.model, self.lock)

    def with_runner(self, runner: Runner) -> Classifier:
        """The same model (card, module, lock) predicting on another runner, e.g.
        ``clf.with_runner(clf.torch_runner)`` to time or check the eager path."""
        twin = copy.copy(self)
        twin._runner = runner
        return twin

    def __repr__(self) -> str:
        return f"Classifier({self.name!r}, arch={self.card.arch}, classes={len(self.classes)})"

    @property
    def model(self) -> nn.Module:
        """The float32 eval-mode torch module (Grad-CAM, training, the eager path). When the fast
        path predicts from a cached export, loading skipped it: it is built on first use."""
        if self._model is None:
            with self._model_lock:
                if self._model is None:
                    self._model = _eval_module(self._loader())
        return self._model

    @model.setter
    def model(self, module: nn.Module) -> None:
        self._model = _eval_module(module)

    @property
    def model_loaded(self) -> bool:
        """Whether the torch module is in memory (see :attr:`model`)."""
        return self._model is not None

    @property
    def classes(self) -> list[str]:
        """Class names in output order."""
        return self.card.classes

    def preprocess(self, images: Iterable[ImageInput]) -> torch.Tensor:
        """Load and transform images into one N x 3 x S x S batch (an image that
        :func:`~fvcore.inference.images.load_image` already decoded is used as it is)."""
        return torch.stack([self.preset(ensure_rgb(img)) for img in images])

    def logits_tensor(self, batch: torch.Tensor, *, batch_size: int = 32) -> np.ndarray:
        """Raw logits (N x C, before the card's temperature) of a preprocessed batch, in chunks
        of ``batch_size``."""
        chunks = [self.runner(batch[i:i + batch_size]) for i in range(0, len(batch), batch_size)]
        return np.concatenate(chunks) if chunks else np.zeros((0, len(self.classes)), np.float32)

    def predict_tensor(self, batch: torch.Tensor, *, batch_size: int = 32) -> np.ndarray:
        """Probabilities (N x C) for an already preprocessed batch: ``softmax(logits / T)`` with
        the card's temperature T (1 unless the model was calibrated)."""
        logits = self.logits_tensor(batch, batch_size=batch_size)
        return softmax(logits, self.card.temperature).astype(np.float32)

    def predict(self, images: Sequence[ImageInput] | ImageInput, *,
                batch_size: int = 32) -> np.ndarray:
        """Class probabilities, N x C, for paths, bytes, file objects or PIL images.

        A single image (not a list) gives a 1 x C array. Unreadable images raise ImageError.
        """
        if not isinstance(images, (list, tuple)):
            images = [images]
        return self.predict_tensor(self.preprocess(images), batch_size=batch_size)

    def top_k(self, probs: np.ndarray, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most probable (label, probability) pairs of one probability vector."""
        order = np.argsort(-probs)[:k]
        return [(self.classes[i], float(probs[i])) for i in order]

    def class_index(self, target: int | str | None) -> Optional[int]:
        """A class given by index or name -> its index (None stays None)."""
        if target is None or isinstance(target, (int, np.integer)):
            if target is not None and not 0 <= int(target) < len(self.classes):
                raise FvError(f"class index {target} out of range 0..{len(self.classes) - 1}")
            return None if target is None else int(target)
        if target not in self.classes:
            raise FvError(f"unknown class {target!r} for {self.name}")
        return self.classes.index(target)

    def cam_module(self, model: Optional[nn.Module] = None) -> nn.Module:
        """The Grad-CAM target layer of ``model`` (default: this classifier's module; a copy of
        it, e.g. a randomised one, has its own): the registry's layer, or the one recorded when
        the model was imported."""
        if not self.cam_layer:
            raise FvError(f"{self.name}: no Grad-CAM layer was found for {self.card.arch} when "
                          "it was imported")
        model = self.model if model is None else model
        return get_submodule(model, self.cam_layer) if self.spec else \
            model.get_submodule(self.cam_layer)

    def explain(self, image: ImageInput, target: int | str | None = None,
                method: str = "gradcam", *,
                score: bool = False) -> tuple[CamResult, Optional[float]]:
        """One forward + backward: the CAM, the probabilities, and optionally the ROAD
        faithfulness score (probability drop when the top-20% pixels are removed)."""
        x = self.preprocess([image])
        index = self.class_index(target)
        with self.lock:
            result = compute_cam(self.model, self.cam_module(), x,
                                 target=index, method=method, reshape=self.cam_reshape,
                                 temperature=self.card.temperature)
            faith = faithfulness(self.model, x, result.heatmap, result.target,
                                 temperature=self.card.temperature) if score else None
        return result, faith

    def explain_view(self, image: ImageInput, target: int | str | None = None,
                     method: str = "gradcam", *, score: bool = False) -> CamView:
        """:meth:`explain` as a page shows it: the crop the model saw, the heatmap, and the
        explained and predicted classes by name (``method`` one of ``CAM_METHODS``)."""
        image = ensure_rgb(image)
        result, faith = self.explain(image, target, method, score=score)
        predicted = int(np.argmax(result.probs))
        return CamView(crop=self.preset.crop(image), heatmap=result.heatmap,
                       probs=np.asarray(result.probs), target=self.classes[result.target],
                       target_index=result.target, predicted=self.classes[predicted],
                       predicted_prob=float(result.probs[predicted]), faithfulness=faith,
                       ms=result.ms, method=result.method)

    def gradcam(self, image: ImageInput, target: int | str | None = None,
                method: str = "gradcam") -> np.ndarray:
        """Heatmap (S x S float32 in [0, 1]) over the centre crop the model sees, S = the input
        size in the card; ``self.preset.crop(load_image(image))`` is that crop. ``target`` is a
        class index or name (default: the predicted class); ``method`` a name of
        fvcore.explain.cam.CAM_METHODS."""
        return self.explain(image, target, method)[0].heatmap

    def latency_ms(self, *, repeats: int = 5) -> float:
        """Median time of one single-image forward pass on the current backend."""
        x = torch.zeros(1, 3, self.card.image_size, self.card.image_size)
        return time_call(lambda: self.runner(x), repeats=repeats, warmup=1)

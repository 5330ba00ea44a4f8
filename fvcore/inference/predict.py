"""Predict with many models at once: each image decoded once, each distinct preprocessing done
once and shared by the models that use it, one batched forward per model. The answers come back
typed (:class:`PredictionRun`), with the soft-vote ensemble, the majority and the confidence cut
computed here rather than by the pages; the CLI's JSON is derived from the same objects."""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch
from PIL import Image

from fvcore.errors import FvError
from fvcore.inference.classifier import Classifier
from fvcore.inference.images import ImageInput, load_image
from fvcore.inference.runners import release_free_memory

LOW_CONFIDENCE = 0.3
"""Below this best probability (over every model) an image is marked low-confidence: it may show
something outside the classes the models know."""


@dataclass(frozen=True)
class ModelAnswer:
    """One model's answer for one image: its probability vector over its classes."""

    model: str
    classes: tuple[str, ...]
    probs: np.ndarray                 # C probabilities, in the order of ``classes``
    ms: float                         # milliseconds per image of the batch it came from
    groups: Mapping[str, str] = field(default_factory=dict)   # class -> group (the card's)

    def top(self, k: int) -> list[tuple[str, float]]:
        """The ``k`` most probable (label, probability) pairs, best first."""
        order = np.argsort(-self.probs)[:k]
        return [(self.classes[i], float(self.probs[i])) for i in order]

    @property
    def label(self) -> str:
        """The most probable class."""
        return self.classes[int(np.argmax(self.probs))]

    @property
    def prob(self) -> float:
        """The probability of :attr:`label`."""
        return float(np.max(self.probs))

    @property
    def group(self) -> Optional[str]:
        """The group of :attr:`label` (e.g. fruit), or None when the card has no groups."""
        return self.groups.get(self.label)


ENSEMBLE = "ensemble"
"""The model name of the soft-vote answer."""


@dataclass(frozen=True)
class ImagePrediction:
    """Every model's answer for one image, with what they say together."""

    image: str
    answers: tuple[ModelAnswer, ...]          # in model order
    ensemble: Optional[ModelAnswer]           # soft vote: two or more models, the same classes
    majority: Optional[str]                   # the majority top-1 label, None on a tie
    dissenters: tuple[str, ...]               # models whose top-1 differs from the majority

    @classmethod
    def of(cls, image: str, answers: Sequence[ModelAnswer]) -> ImagePrediction:
        """The prediction for ``image`` from its answers: ensemble and agreement added."""
        same = len({a.classes for a in answers}) == 1
        mean = None
        if same and len(answers) > 1:
            mean = ModelAnswer(ENSEMBLE, answers[0].classes, ensemble([a.probs for a in answers]),
                               sum(a.ms for a in answers), answers[0].groups)
        majority, dissenters = agreement({a.model: a.label for a in answers})
        return cls(image, tuple(answers), mean, majority, tuple(dissenters))

    @property
    def confidence(self) -> float:
        """The best top-1 probability over the models (0 with no model)."""
        return max((a.prob for a in self.answers), default=0.0)

    @property
    def low_confidence(self) -> bool:
        """Whether even the most confident model is below :data:`LOW_CONFIDENCE`."""
        return bool(self.answers) and self.confidence < LOW_CONFIDENCE

    @property
    def unanimous(self) -> bool:
        """Whether two or more models all give the same top-1 label."""
        return len(self.answers) > 1 and not self.dissenters


@dataclass(frozen=True)
class ImageFailure:
    """An image that could not be read: its name and the loader's message."""

    image: str
    error: str

    @property
    def message(self) -> str:
        """One line that names the file once (the loader's message usually names it already)."""
        return self.error if self.error.startswith(self.image) else f"{self.image}: {self.error}"


@dataclass(frozen=True)
class PredictionRun:
    """Every model on every image: the predictions of the readable images in input order, their
    thumbnails (for display; empty unless asked for) and the images that failed."""

    predictions: tuple[ImagePrediction, ...]
    thumbnails: tuple[Image.Image, ...]
    failures: tuple[ImageFailure, ...]



def _name(source: ImageInput, i: int) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return str(getattr(source, "name", f"image {i + 1}"))


def load_images(sources: Sequence[ImageInput]) -> tuple[list[tuple[str, Image.Image]],
                                                        list[ImageFailure]]:
    """Decode every source once: ([(name, image)], [the failures])."""
    good, failures = [], []
    for i, source in enumerate(sources):
        name = _name(source, i)
        try:
            good.append((name, load_image(source, name=name)))
        except FvError as exc:
            failures.append(ImageFailure(name, str(exc)))
    return good, failures


def batch_probs(classifiers: Sequence[Classifier], images: Sequence[Image.Image]
                ) -> dict[str, tuple[np.ndarray, float]]:
    """Model name -> (N x C probabilities, milliseconds per image) for decoded images."""
    tensors: dict[tuple, torch.Tensor] = {}
    out = {}
    for clf in classifiers:
        key = clf.preset.key
        if key not in tensors:
            tensors[key] = torch.stack([clf.preset(img) for img in images])
        start = time.perf_counter()
        probs = clf.predict_tensor(tensors[key])
        out[clf.name] = (probs, (time.perf_counter() - start) * 1000.0 / max(1, len(images)))
    # the activations are freed, but glibc would keep their pages (about 90 MB for one image
    # through the whole zoo, growing with later calls); returning them costs ~10 ms per call
    release_free_memory()
    return out


def _thumbnail(image: Image.Image, size: int) -> Image.Image:
    image = image.copy()
    image.thumbnail((size, size))
    return image


def predict_images(classifiers: Sequence[Classifier], sources: Sequence[ImageInput], *,
                   names: Optional[Sequence[str]] = None,
                   thumbnail: Optional[int] = None) -> PredictionRun:
    """Every model on every readable image; ``names`` for the models (default: each
    classifier's name), ``thumbnail`` the largest side of display copies (None: no copies)."""
    names = [c.name for c in classifiers] if names is None else list(names)
    if len(names) != len(classifiers):
        raise FvError(f"{len(names)} names for {len(classifiers)} models")
    good, failures = load_images(sources)
    probs = batch_probs(classifiers, [img for _, img in good]) if good and classifiers else {}
    predictions = tuple(
        ImagePrediction.of(image, [ModelAnswer(name, tuple(clf.classes), probs[clf.name][0][i],
                                               probs[clf.name][1], dict(clf.card.groups))
                                   for name, clf in zip(names, classifiers, strict=True)])
        for i, (image, _) in enumerate(good))
    thumbs = tuple(_thumbnail(img, thumbnail) for _, img in good) if thumbnail else ()
    return PredictionRun(predictions, thumbs, tuple(failures))


def predict_all(classifiers: Sequence[Classifier], sources: Sequence[ImageInput], *,
                top_k: int = 3) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Every model on every readable image, as the CLI's JSON: (results, errors)."""
    run = predict_images(classifiers, sources)
    results = [{"image": p.image,
                "predictions": {a.model: {"top": [{"label": label, "prob": round(prob, 6)}
                                                  for label, prob in a.top(top_k)],
                                          "latency_ms": round(a.ms, 2)}
                                for a in p.answers}}
               for p in run.predictions]
    return results, [{"image": f.image, "error": f.error} for f in run.failures]


def ensemble(probs: Sequence[np.ndarray]) -> np.ndarray:
    """Soft voting: the mean of the models' probability vectors (same classes)."""
    return np.mean(np.stack(probs), axis=0)


def agreement(top1: Mapping[str, str]) -> tuple[Optional[str], list[str]]:
    """The majority top-1 label across models (None on a tie) and the models that differ from
    it (every model, when there is no majority)."""
    if not top1:
        return None, []
    counts = Counter(top1.values()).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return None, sorted(top1)
    majority = counts[0][0]
    return majority, sorted(name for name, label in top1.items() if label != majority)

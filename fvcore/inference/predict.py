"""Predict with many models at once: each image decoded once, each distinct preprocessing done
once and shared by the models that use it, one batched forward per model."""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch
from PIL import Image

from fvcore.errors import FvError
from fvcore.inference.classifier import Classifier
from fvcore.inference.images import ImageInput, load_image
from fvcore.inference.runners import release_free_memory


def _name(source: ImageInput, i: int) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return str(getattr(source, "name", f"image {i + 1}"))


def load_images(sources: Sequence[ImageInput]) -> tuple[list[tuple[str, Image.Image]],
                                                        list[dict[str, str]]]:
    """Decode every source once: ([(name, image)], [{"image": name, "error": message}])."""
    good, errors = [], []
    for i, source in enumerate(sources):
        name = _name(source, i)
        try:
            good.append((name, load_image(source, name=name)))
        except FvError as exc:
            errors.append({"image": name, "error": str(exc)})
    return good, errors


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


def predict_all(classifiers: Sequence[Classifier], sources: Sequence[ImageInput], *,
                top_k: int = 3) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Every model on every readable image, as the CLI's JSON: (results, errors)."""
    good, errors = load_images(sources)
    if not good:
        return [], errors
    probs = batch_probs(classifiers, [img for _, img in good])
    results = []
    for i, (name, _) in enumerate(good):
        predictions = {}
        for clf in classifiers:
            p, ms = probs[clf.name]
            predictions[clf.name] = {"top": [{"label": label, "prob": round(prob, 6)}
                                             for label, prob in clf.top_k(p[i], top_k)],
                                     "latency_ms": round(ms, 2)}
        results.append({"image": name, "predictions": predictions})
    return results, errors


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

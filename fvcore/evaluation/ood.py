"""Unknown inputs: how well a model's out-of-distribution scores tell its test images from images
of none of its classes, stored beside the checkpoint in ``ood.json``.

Two scores, higher meaning "one of my classes": the maximum softmax probability (Hendrycks &
Gimpel, 2017; with the card's temperature, i.e. the probability every page shows) and the
negative energy ``T * logsumexp(logits / T)`` with T = 1 (Liu et al., 2020). The unknown images
are scikit-image's bundled sample photos (people, animals, objects, micrographs, text) and
generated noise, gradients, checkerboards and flat colours. Each score gets its AUROC (test
images positive), the threshold that keeps 95% of the test images and the share of unknown
images that still pass it (FPR at 95% TPR).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np
from PIL import Image

from fvcore.checkpoints.folder import atomic_write
from fvcore.evaluation.robustness import data_key, pick_samples, weights_key
from fvcore.inference.images import load_image
from fvcore.inference.logits import softmax

if TYPE_CHECKING:
    from fvcore.inference.classifier import Classifier

OOD = "ood.json"
SAMPLE_PHOTOS = ("astronaut", "brick", "camera", "chelsea", "clock", "coffee", "coins",
                 "grass", "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo",
                 "microaneurysms", "moon", "page", "retina", "rocket", "text")
"""scikit-image's sample images that ship inside the wheel (nothing is downloaded)."""
TPR = 0.95


@dataclass(frozen=True)
class OodScore:
    """One score's separation of test images from unknown ones."""

    name: str              # "msp" or "energy"
    auroc: float
    threshold: float       # 95% of the test images score at least this
    fpr95: float           # share of unknown images at or above the threshold


@dataclass(frozen=True)
class OodReport:
    """A model's ``ood.json``: both scores, and what they were measured on."""

    model_key: str
    data_key: str
    n_in: int
    n_out: int
    scores: tuple[OodScore, ...]

    def score(self, name: str) -> Optional[OodScore]:
        """The score called ``name`` (None when absent)."""
        return next((s for s in self.scores if s.name == name), None)


def generated_images(n: int = 8, *, size: int = 160, seed: int = 0) -> list[Image.Image]:
    """``n`` images of each kind: uniform noise, smooth colour noise, linear gradients,
    checkerboards and flat colours (deterministic given ``seed``)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    out = []
    for _ in range(n):
        out.append(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        coarse = rng.random((6, 6, 3))
        out.append(np.asarray(Image.fromarray((coarse * 255).astype(np.uint8)).resize(
            (size, size), Image.BICUBIC)))
        a, b, angle = rng.random(3) * 255, rng.random(3) * 255, rng.uniform(0, np.pi)
        t = np.clip(np.cos(angle) * xx + np.sin(angle) * yy, 0, 1)[..., None]
        out.append((a * (1 - t) + b * t).astype(np.uint8))
        cell = int(rng.integers(8, 40))
        board = ((np.arange(size)[:, None] // cell + np.arange(size)[None] // cell) % 2)[..., None]
        c1, c2 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        out.append(np.where(board == 1, c1, c2).astype(np.uint8))
        out.append(np.broadcast_to(rng.integers(0, 256, 3), (size, size, 3)).astype(np.uint8))
    return [Image.fromarray(np.ascontiguousarray(a)) for a in out]


def unknown_images(*, n_generated: int = 8, seed: int = 0) -> list[Image.Image]:
    """The non-class images: every bundled sample photo (RGB) and the generated ones."""
    from skimage import data
    photos = [Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB")
              for name in SAMPLE_PHOTOS]
    return photos + generated_images(n_generated, seed=seed)


def scores(logits: np.ndarray, temperature: float = 1.0) -> dict[str, np.ndarray]:
    """Per image (N x C logits): ``msp`` (max of softmax(logits / temperature)) and ``energy``
    (the negative energy, logsumexp of the logits at T = 1); higher = more in-distribution."""
    logits = np.asarray(logits, dtype=np.float64)
    top = logits.max(1, keepdims=True)
    energy = (top + np.log(np.exp(logits - top).sum(1, keepdims=True)))[:, 0]
    return {"msp": softmax(logits, temperature).max(1), "energy": energy}


def auroc(inside: Sequence[float], outside: Sequence[float]) -> float:
    """Area under the ROC curve of telling ``inside`` (positives) from ``outside`` by score."""
    from sklearn.metrics import roc_auc_score
    labels = np.r_[np.ones(len(inside)), np.zeros(len(outside))]
    return float(roc_auc_score(labels, np.r_[inside, outside]))


def separation(name: str, inside: np.ndarray, outside: np.ndarray, tpr: float = TPR) -> OodScore:
    """AUROC, the threshold keeping ``tpr`` of ``inside`` and the FPR there."""
    threshold = float(np.quantile(inside, 1 - tpr, method="lower"))
    return OodScore(name, auroc(inside, outside), threshold, float(np.mean(outside >= threshold)))


def _logits(classifier: Classifier, images: Sequence[Image.Image]) -> np.ndarray:
    return classifier.logits_tensor(classifier.preprocess(images))


def measure_ood(classifier: Classifier, folders: Sequence[str | Path], *,
                limit: Optional[int] = None, seed: int = 0, save: bool = True) -> OodReport:
    """Score ``classifier``'s test images (``folders`` of class sub-folders, at most ``limit``)
    against :func:`unknown_images`, and write ``ood.json`` beside it when ``save``."""
    samples = pick_samples(folders, classifier.classes, limit)
    t = classifier.card.temperature
    inside = scores(_logits(classifier, [load_image(p) for p, _ in samples]), t)
    outside = scores(_logits(classifier, unknown_images(seed=seed)), t)
    report = OodReport(weights_key(classifier.path, t) if classifier.path else "",
                       data_key(samples), len(samples), len(outside["msp"]),
                       tuple(separation(n, inside[n], outside[n]) for n in ("msp", "energy")))
    if save and classifier.path is not None:
        atomic_write(classifier.path / OOD, json.dumps(asdict(report), indent=2, sort_keys=True))
    return report


def load_ood(folder: str | Path) -> Optional[OodReport]:
    """``folder/ood.json``, or None when there is none or it is unreadable."""
    try:
        raw = json.loads((Path(folder) / OOD).read_text())
        found = tuple(OodScore(str(s["name"]), float(s["auroc"]), float(s["threshold"]),
                               float(s["fpr95"])) for s in raw["scores"])
        return OodReport(str(raw["model_key"]), str(raw["data_key"]), int(raw["n_in"]),
                         int(raw["n_out"]), found)
    except (OSError, ValueError, KeyError, TypeError):
        return None

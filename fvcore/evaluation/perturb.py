"""One photo under one corruption: the corrupted copy (a PNG, so it goes through the same loader
and caches as an upload) and how each model's answer changes, as small frozen dataclasses the
Predict and Grad-CAM pages show. Needs no torch: the answers come in already computed."""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np
from PIL import Image

from fvcore.evaluation.corruptions import check_corruption, corrupt
from fvcore.inference.images import ImageInput, load_image

if TYPE_CHECKING:
    from fvcore.inference.predict import ImagePrediction, ModelAnswer

MAX_SIDE = 512
"""The photo is scaled to at most this many pixels on its long side before it is corrupted: the
models see 64-256 px crops, so a severity means about what it means in a sweep (noise added to a
4000 px photo would be averaged away by the resize), and a blur of a large photo stays quick."""


def corrupt_photo(source: ImageInput, corruption: str, severity: int, *, seed: int = 0,
                  max_side: int = MAX_SIDE, name: str = "image") -> bytes:
    """``source`` (anything :func:`~fvcore.inference.images.load_image` reads), scaled to at most
    ``max_side`` px, under ``corruption`` at ``severity`` 1-5 with a fixed ``seed`` (the same
    call gives the same pixels), as PNG bytes. A file that is no image raises its ImageError."""
    check_corruption(corruption, severity)
    image = load_image(source, name=name)
    image.thumbnail((max_side, max_side))
    out = io.BytesIO()
    Image.fromarray(corrupt(image, corruption, severity, rng=seed)).save(out, format="PNG")
    return out.getvalue()


def corruption_label(corruption: str, severity: int) -> str:
    """``gaussian noise, severity 5``."""
    return f"{corruption.replace('_', ' ')}, severity {severity}"


@dataclass(frozen=True)
class AnswerChange:
    """One model's top-1 answer on the original photo and on the corrupted one."""

    model: str
    before: str             # top-1 on the original
    before_prob: float
    after: str              # top-1 on the corrupted photo
    after_prob: float
    kept_prob: float        # the probability of ``before`` on the corrupted photo

    @property
    def flipped(self) -> bool:
        """Whether the corruption changed the top-1 answer."""
        return self.before != self.after


def answer_change(model: str, classes: Sequence[str], before: np.ndarray,
                  after: np.ndarray) -> AnswerChange:
    """The change between two probability vectors over ``classes`` (one model, two photos)."""
    if len(before) != len(classes) or len(after) != len(classes):
        raise ValueError(f"{model}: probabilities for {len(before)} and {len(after)} classes, "
                         f"expected {len(classes)}")
    i, j = int(np.argmax(before)), int(np.argmax(after))
    return AnswerChange(model, classes[i], float(before[i]), classes[j], float(after[j]),
                        float(after[i]))


def _change(before: ModelAnswer, after: ModelAnswer) -> AnswerChange:
    return answer_change(before.model, before.classes, before.probs, after.probs)


@dataclass(frozen=True)
class PredictionShift:
    """Every model's answer change for one photo under one corruption and severity, and the
    soft-vote ensemble's (when both predictions have one)."""

    image: str
    corruption: str
    severity: int
    changes: tuple[AnswerChange, ...]          # in model order
    ensemble: Optional[AnswerChange]

    @classmethod
    def of(cls, before: ImagePrediction, after: ImagePrediction, corruption: str,
           severity: int) -> PredictionShift:
        """Pair the answers of the original (``before``) and corrupted photo by model name."""
        found = {a.model: a for a in after.answers}
        missing = [a.model for a in before.answers if a.model not in found]
        if missing:
            raise ValueError(f"no answer on the corrupted photo from {', '.join(missing)}")
        ensemble = (_change(before.ensemble, after.ensemble)
                    if before.ensemble and after.ensemble else None)
        return cls(before.image, corruption, severity,
                   tuple(_change(a, found[a.model]) for a in before.answers), ensemble)

    @property
    def flipped(self) -> tuple[str, ...]:
        """The models whose top-1 answer the corruption changed."""
        return tuple(c.model for c in self.changes if c.flipped)

    @property
    def label(self) -> str:
        """The corruption as people read it: ``gaussian noise, severity 5``."""
        return corruption_label(self.corruption, self.severity)

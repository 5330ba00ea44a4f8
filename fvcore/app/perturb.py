"""Perturb a photo on Predict and Grad-CAM: the control (a corruption, "none" by default, and a
severity), the corrupted copy (:func:`fvcore.evaluation.perturb.corrupt_photo`, cached, fed as
PNG bytes through the same cached prediction and CAM as an upload) and the sections that show how
each model's answer and heatmap change."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import streamlit as st

from fvcore.app import cache, limits, shell
from fvcore.errors import FvError, ImageError
from fvcore.evaluation.corruptions import corruption_names
from fvcore.evaluation.perturb import (
    AnswerChange,
    PredictionShift,
    answer_change,
    corrupt_photo,
    corruption_label,
)

if TYPE_CHECKING:
    from fvcore.explain.cam import CamView
    from fvcore.inference.predict import PredictionRun

NONE = "none"


@dataclass(frozen=True)
class Perturbation:
    """The chosen corruption and severity."""

    corruption: str
    severity: int

    @property
    def label(self) -> str:
        """``gaussian noise, severity 5``."""
        return corruption_label(self.corruption, self.severity)


def control(key: str) -> Optional[Perturbation]:
    """The *Perturb the photo* expander: a corruption (``none``: off) and a severity 1-5;
    widget keys ``{key}_corruption`` and ``{key}_severity``."""
    with st.expander("Perturb the photo", icon=":material/blur_on:"):
        left, right = st.columns([2, 1])
        name = left.selectbox("Corruption", [NONE, *corruption_names()], key=f"{key}_corruption",
                              format_func=lambda n: n.replace("_", " "),
                              help="An ImageNet-C corruption (Hendrycks & Dietterich, 2019), "
                                   "seeded: the same choice always gives the same image.")
        severity = right.slider("Severity", 1, 5, 3, key=f"{key}_severity")
        st.caption("Applied to the photo scaled to at most 512 px on its long side; each model's "
                   "answer on the original and on the corrupted photo is shown side by side.")
    return None if name == NONE else Perturbation(name, int(severity))


@st.cache_data(show_spinner=False, max_entries=64)
def corrupted(data: bytes, corruption: str, severity: int, name: str = "image") -> bytes:
    """The corrupted copy of an uploaded photo as PNG bytes (cached on the bytes and choice)."""
    limits.charge()
    return corrupt_photo(data, corruption, severity, name=name)


def predict_shifts(models: Sequence[cache.LoadedModel], files: Sequence[tuple[str, bytes]],
                   run: PredictionRun, choice: Perturbation
                   ) -> list[tuple[bytes, PredictionShift]]:
    """Every readable photo of ``files`` corrupted and predicted by ``models`` (cached), paired
    with ``run`` (the same models on the same files): (corrupted PNG, answer changes) in the
    order of ``run.predictions``. Unreadable files are left out: ``run`` reports them."""
    shifted = []
    for name, data in files:
        try:
            shifted.append((name, corrupted(data, choice.corruption, choice.severity, name)))
        except ImageError:
            continue
    if not shifted:
        return []
    after = cache.predict(models, shifted)
    if len(after.predictions) != len(run.predictions):
        raise FvError(f"{len(after.predictions)} corrupted photos for "
                      f"{len(run.predictions)} readable ones")
    return [(png, PredictionShift.of(before, new, choice.corruption, choice.severity))
            for (_, png), before, new in zip(shifted, run.predictions, after.predictions,
                                             strict=True)]


def change_line(change: AnswerChange) -> str:
    """One model's answer before → after, as markdown: ``**cnn**: circle 87% → **square** 41% ·
    flipped (circle now 20%)`` or ``**cnn**: circle 87% → circle 64% · kept``."""
    head = f"**{change.model}**: {change.before} {change.before_prob:.0%} → "
    if change.flipped:
        return (head + f"**{change.after}** {change.after_prob:.0%} · flipped "
                       f"({change.before} now {change.kept_prob:.0%})")
    return head + f"{change.after} {change.after_prob:.0%} · kept"


def summary(shift: PredictionShift) -> str:
    """``2 of 3 models change their answer under gaussian noise, severity 5.``"""
    n, total = len(shift.flipped), len(shift.changes)
    if not n:
        return f"No model changes its answer under {shift.label}."
    return f"{n} of {total} model{'s' if total > 1 else ''} change{'' if n > 1 else 's'} " \
           f"{'their' if n > 1 else 'its'} answer under {shift.label}."


def shift_section(png: bytes, shift: PredictionShift) -> None:
    """Predict's block under a photo: the corrupted copy and each model's answer before → after
    (and the ensemble's)."""
    pic, lines = st.columns([1, 3])
    pic.image(png, caption=shift.label, width="stretch")
    with lines:
        st.markdown(f"**Perturbed: {shift.label}**")
        if shift.flipped:
            st.warning(summary(shift), icon=":material/swap_horiz:")
        else:
            st.success(summary(shift), icon=":material/check_circle:")
        for change in shift.changes:
            st.markdown(change_line(change))
        if shift.ensemble:
            soft_vote = replace(shift.ensemble, model="Ensemble (soft vote)")
            st.caption(change_line(soft_vote).replace("**", ""))


def cam_section(models: Sequence[cache.LoadedModel], data: bytes, choice: Optional[Perturbation],
                *, target: Optional[str], method: str, score: bool,
                draw: Callable[[CamView], Any]) -> None:
    """Grad-CAM's section for a perturbation: per model, the heatmap of the original photo next
    to the corrupted one's (``draw(cam)`` makes the overlay) and the prediction before → after;
    nothing when ``choice`` is None or the photo is unreadable (the grid above says why)."""
    if choice is None:
        return
    try:
        png = corrupted(data, choice.corruption, choice.severity)
    except ImageError:
        return   # an unreadable photo: the heatmaps above already say why
    st.subheader(f"Perturbed: {choice.label}")
    for model in models:
        with shell.guard(model.name):
            before = cache.explain(model, data, target, method, score)
            after = cache.explain(model, png, target, method, score)
            change = answer_change(model.name, model.classifier.classes, before.probs,
                                   after.probs)
            original, shifted, text = st.columns([2, 2, 3])
            original.image(draw(before), caption=f"{model.name}: original", width="stretch")
            shifted.image(draw(after), caption=f"{model.name}: {choice.label}", width="stretch")
            text.markdown(change_line(change))
            if target is not None:
                text.caption(f"p({before.target}) {before.target_prob:.0%} → "
                             f"{after.target_prob:.0%}")

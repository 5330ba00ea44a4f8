"""Confusion click-through: a cell (true class, predicted class) of one model's confusion matrix,
picked by clicking the chart or with two select boxes, and the test images behind it, each with
every compared model's answer."""
from __future__ import annotations

from pathlib import PurePosixPath
from typing import Mapping, Optional, Sequence

import streamlit as st

from fvcore.app import gallery
from fvcore.evaluation import cells
from fvcore.evaluation.analysis import top_confusions
from fvcore.evaluation.predictions import Predictions


def clicked(event) -> Optional[tuple[str, str]]:
    """The (true, predicted) cell a click on the confusion chart picked (its target markers
    carry them as customdata; else the point's y and x)."""
    for point in gallery.points(event):
        custom = point.get("customdata")
        if isinstance(custom, (list, tuple)) and len(custom) == 2:
            return str(custom[0]), str(custom[1])
        if point.get("x") is not None and point.get("y") is not None:
            return str(point["y"]), str(point["x"])
    return None


def _choose(classes: Sequence[str], report: Mapping, event, key: str) -> tuple[str, str]:
    """The chosen cell: a new click sets both boxes; the boxes start on the most frequent
    mistake."""
    top = top_confusions(report, classes, n=1)
    default = (top["true"][0], top["predicted"][0]) if len(top) else (classes[0], classes[0])
    true_key, pred_key, seen_key = f"{key}_true", f"{key}_pred", f"{key}_clicked"
    click = clicked(event)
    if click and click != st.session_state.get(seen_key) and set(click) <= set(classes):
        st.session_state[seen_key] = click
        st.session_state[true_key], st.session_state[pred_key] = click
    for k, value in ((true_key, default[0]), (pred_key, default[1])):
        if st.session_state.get(k) not in classes:
            st.session_state[k] = value
    left, right = st.columns(2)
    true = left.selectbox("True class", list(classes), key=true_key,
                          help="Or click a cell of the matrix above.")
    pred = right.selectbox("Predicted as", list(classes), key=pred_key)
    return true, pred


def click_through(preds: Mapping[str, Predictions], model: str, report: Mapping, event, *,
                  dataset: Optional[str], key: str) -> None:
    """The images of the chosen cell of ``model``'s confusion matrix (``report``: its full
    metrics report), each captioned with every model's answer."""
    classes = preds[model].classes
    st.markdown(f"**The test images behind one cell of {model}'s matrix**")
    true, pred = _choose(classes, report, event, key)
    frame = cells.cell_images(preds, model, true, pred)
    verdict = "correctly" if true == pred else "as " + pred
    if frame.empty:
        st.info(f"{model} classifies no test image of {true} {verdict}.")
        return
    st.caption(f"{len(frame)} test image{'s' * (len(frame) != 1)} of {true} that {model} "
               f"classifies {verdict}, most confident first.")
    models = [model, *(n for n in preds if n != model)]
    captions = []
    for row in frame.to_dict("records"):
        said = "  \n".join(f"{m}: {'✓' if answer == true else '✗'} {answer} {prob:.0%}"
                            for m, answer, prob in cells.answers(row, models))
        captions.append(f"**{PurePosixPath(row['path']).name}**  \n{said}")
    gallery.photos(frame, captions, dataset, key=key)

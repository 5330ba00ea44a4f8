"""Confusion click-through: the test images behind one cell (true class, predicted class) of a
model's confusion matrix, each with every compared model's answer. Pure numpy/pandas."""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from fvcore.errors import FvError
from fvcore.evaluation.predictions import Predictions

PROB_SUFFIX = " prob"
"""``<model> prob``: the column of that model's confidence in its answer."""


def cell_images(preds: Mapping[str, Predictions], model: str, true: str, pred: str
                ) -> pd.DataFrame:
    """The test images of class ``true`` that ``model`` predicts as ``pred``, most confident
    first: path, domain, true class, then for every model (``model`` first) its predicted class
    (column named by the model; None where that model has no prediction for the image) and its
    confidence (``<model> prob``)."""
    if model not in preds:
        raise FvError(f"no stored predictions for {model!r}; known: {', '.join(preds)}")
    p = preds[model]
    for name in (true, pred):
        if name not in p.classes:
            raise FvError(f"unknown class {name!r} for {model}")
    t, q = p.classes.index(true), p.classes.index(pred)
    rows = np.flatnonzero((p.labels == t) & (p.preds == q))
    rows = rows[np.argsort(-p.probs[rows, q], kind="stable")]
    frame = pd.DataFrame({"path": [p.paths[i] for i in rows],
                          "domain": [p.domains[i] for i in rows],
                          "true": [true] * len(rows)})
    for name in [model, *(n for n in preds if n != model)]:
        other = preds[name]
        where = {path: i for i, path in enumerate(other.paths)}
        hits = [where.get(path) for path in frame["path"]]
        frame[name] = [None if i is None else other.classes[other.preds[i]] for i in hits]
        frame[name + PROB_SUFFIX] = [np.nan if i is None else float(other.probs[i].max())
                                     for i in hits]
    return frame


def answers(row: Mapping, models: list[str]) -> list[tuple[str, str, float]]:
    """(model, its predicted class, its confidence) of one :func:`cell_images` row, for the
    models that answered."""
    return [(m, row[m], float(row[m + PROB_SUFFIX])) for m in models
            if row.get(m) is not None and not pd.isna(row.get(m))]

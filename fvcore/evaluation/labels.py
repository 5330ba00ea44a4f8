"""Label issues: the test images whose given label is most likely wrong, found by confident
learning (Northcutt et al., 2021, through cleanlab) from the stored probabilities of one or more
models, averaged over the images they share."""
from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np
import pandas as pd
from cleanlab.filter import find_label_issues
from cleanlab.rank import get_label_quality_scores

from fvcore.errors import FvError
from fvcore.evaluation.evaluate import align
from fvcore.evaluation.predictions import Predictions

COLUMNS = ["rank", "path", "domain", "label", "consensus", "consensus_prob", "label_prob",
           "quality", "models_agree", "models"]


def consensus(preds: Mapping[str, Predictions]) -> Predictions:
    """The models' mean probabilities on the test images they all share (same classes)."""
    if not preds:
        raise FvError("no stored predictions to look for label issues in")
    if len({tuple(p.classes) for p in preds.values()}) != 1:
        raise FvError("the selected models have different class lists: select models of one "
                      "dataset")
    paths, aligned = align(dict(preds))
    if not paths:
        raise FvError("the selected models share no test images")
    first = next(iter(aligned.values()))
    mean = np.mean([p.probs for p in aligned.values()], axis=0)
    return Predictions(paths, first.labels, mean, list(first.classes), list(first.domains))


def label_issues(preds: Mapping[str, Predictions]) -> pd.DataFrame:
    """The test images cleanlab flags as likely mislabelled, most likely first (lowest
    self-confidence: the consensus probability of the given label), one row each: the given
    label, the models' consensus class and its probability, the label's probability
    (``quality``, cleanlab's label quality score), and how many models agree with the
    consensus."""
    mean = consensus(preds)
    labels, probs = mean.labels, mean.probs / mean.probs.sum(1, keepdims=True)
    if len(labels) < 2:
        return pd.DataFrame(columns=COLUMNS)
    with warnings.catch_warnings():   # "too few examples in class ..." on small test sets
        warnings.simplefilter("ignore")
        ranked = find_label_issues(labels, probs, return_indices_ranked_by="self_confidence",
                                   n_jobs=1)
        quality = get_label_quality_scores(labels, probs, method="self_confidence")
    _, aligned = align(dict(preds))
    votes = np.stack([p.preds for p in aligned.values()])
    top = probs.argmax(1)
    rows = [{"rank": rank, "path": mean.paths[i], "domain": mean.domains[i],
             "label": mean.classes[labels[i]], "consensus": mean.classes[top[i]],
             "consensus_prob": float(probs[i, top[i]]), "label_prob": float(probs[i, labels[i]]),
             "quality": float(quality[i]), "models_agree": int((votes[:, i] == top[i]).sum()),
             "models": len(aligned)}
            for rank, i in enumerate(np.asarray(ranked, dtype=np.int64), start=1)]
    return pd.DataFrame(rows, columns=COLUMNS)

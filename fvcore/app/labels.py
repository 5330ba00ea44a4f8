"""Compare's label issues: the test images whose given label the selected models most doubt
(confident learning on their averaged stored probabilities), as a gallery and a CSV download."""
from __future__ import annotations

from pathlib import PurePosixPath
from typing import Mapping, Optional

import streamlit as st

from fvcore.app import gallery
from fvcore.evaluation.labels import label_issues
from fvcore.evaluation.predictions import Predictions


@st.cache_data(show_spinner=False, max_entries=16)
def _issues(_preds: Mapping[str, Predictions], key: tuple):
    return label_issues(_preds)


def view(preds: Mapping[str, Predictions], dataset: Optional[str], *, key: str = "labels",
         domain: Optional[str] = None) -> None:
    """The ranked label issues of ``preds`` (every selected model's stored predictions)."""
    if not preds:
        st.info("No stored test predictions for the selected models.")
        return
    cache_key = (domain, tuple((name, tuple(p.paths), p.probs.tobytes().__hash__())
                               for name, p in preds.items()))
    issues = _issues(preds, cache_key)
    n = len(next(iter(preds.values())).paths)
    who = (f"the averaged probabilities of {len(preds)} models" if len(preds) > 1
           else f"{next(iter(preds))}'s probabilities")
    st.caption(f"Confident learning (cleanlab) on {who}: an image is flagged when the models "
               "are confident of another class than its label; ranked by the probability they "
               "give the label (lowest first). Weak models flag good labels: trust the list more "
               "when strong models agree."
               + (f" Test split: {domain}." if domain else ""))
    if issues.empty:
        st.success(f"No likely label error among the {n} test images.")
        return
    top, download = st.columns([3, 1], vertical_alignment="bottom")
    limit = top.slider("Images", 6, 60, 18, 6, key=f"{key}_limit")
    download.download_button("Label issues (CSV)", issues.to_csv(index=False),
                             file_name="label-issues.csv", mime="text/csv",
                             key=f"{key}_csv", icon=":material/download:")
    st.markdown(f"**{len(issues)} likely label error{'s' * (len(issues) != 1)}**, most "
                "likely first")
    captions = [f"#{r.rank} **{PurePosixPath(r.path).name}**: label **{r.label}**, models say "
                f"**{r.consensus}** ({r.consensus_prob:.0%}; {r.models_agree} of {r.models} "
                f"models); label {r.label_prob:.0%}"
                for r in issues.head(limit).itertuples()]
    gallery.photos(issues.head(limit), captions, dataset, key=key, limit=limit)

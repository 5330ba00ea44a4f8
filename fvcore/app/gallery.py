"""Photo galleries of test images named by their stored paths: thumbnails found under the data
roots (``FVCORE_DATA``) with a caption each, or the table with one line saying where the images
were looked for. Used by Compare's confusion click-through, label issues and embedding map."""
from __future__ import annotations

from typing import Optional, Sequence

import pandas as pd
import streamlit as st

from fvcore import settings
from fvcore.app import access
from fvcore.app.cache import thumbnail
from fvcore.datasets.folders import resolve_image


def points(event) -> list[dict]:
    """The points of a ``st.plotly_chart(..., on_select="rerun")`` selection (none without one)."""
    try:
        selection = event["selection"]
        return list(selection["points"] or [])
    except (KeyError, TypeError, AttributeError):
        return []


def photos(frame: pd.DataFrame, captions: Sequence[str], dataset: Optional[str], *, key: str,
           per_row: int = 6, limit: int = 36) -> None:
    """The first ``limit`` rows' images (column ``path``) in rows of ``per_row``, each over its
    caption; when no image is found (or ``dataset`` is None: uploaded images), the table."""
    shown, notes = frame.head(limit), list(captions)[:limit]
    roots = settings.data_roots()
    found = [resolve_image(p, dataset, roots) for p in shown["path"]] if dataset else []
    if not any(found):
        if dataset:
            where = access.shown(", ".join(map(str, roots)), keep_local=True)
            st.caption(f"Test images not found under {where}: set FVCORE_DATA to the folder "
                       f"holding `{dataset}/`.")
        st.dataframe(frame, hide_index=True, key=f"{key}_table")
        return
    if len(frame) > limit:
        st.caption(f"The first {limit} of {len(frame)} images.")
    for start in range(0, len(shown), per_row):
        columns = st.columns(per_row)
        for column, path, note in zip(columns, found[start:start + per_row],
                                      notes[start:start + per_row], strict=False):
            with column:
                if path:
                    st.image(thumbnail(str(path)), width="stretch")
                else:
                    st.caption(":material/hide_image: image not found")
                st.caption(note)

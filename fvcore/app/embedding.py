"""Compare's embedding map: a model's penultimate features on its test images in 2-D (stored
beside the checkpoint as ``embedding.csv``; computed here or by ``python -m fvcore embed``),
coloured by class with mistakes marked; a lasso or box selection shows the photos."""
from __future__ import annotations

from pathlib import PurePosixPath
from typing import Optional, Sequence

import streamlit as st

from fvcore import settings
from fvcore.app import access, charts, gallery, limits
from fvcore.app.cache import load_model, mtime
from fvcore.checkpoints.catalog import Entry
from fvcore.evaluation.embedding import EMBEDDING, EmbeddingMap, read_embedding, selected_rows
from fvcore.evaluation.features import embed


@st.cache_data(show_spinner=False, max_entries=32)
def _read(folder: str, stamp: float) -> Optional[EmbeddingMap]:
    return read_embedding(folder)


def stored_map(entry: Entry) -> Optional[EmbeddingMap]:
    """The entry's ``embedding.csv`` (cached until the file changes)."""
    return _read(str(entry.path), mtime(entry.path / EMBEDDING))


def compute(entry: Entry) -> None:
    """Load the model and map its test images (those of ``predictions.csv`` found under the
    data roots), with a progress bar."""
    with limits.action("embedding map") as act:
        act.charge()
        bar = st.progress(0.0, text=f"Loading {entry.name}...")
        model = load_model(entry)

        def progress(done: int, total: int) -> None:
            bar.progress(done / max(1, total), text=f"Features of {done} of {total} test images")

        _, missing = embed(model.classifier, entry.path, roots=settings.data_roots(),
                           progress=progress)
        bar.empty()
    if missing:
        st.caption(f"{missing} test images were not found and are not on the map.")
    _read.clear()


def _compute_button(entry: Entry, label: str, key: str) -> None:
    """Compute (or recompute) the map on a click: the operator's action in public mode (it
    writes beside the checkpoint)."""
    if not access.is_operator():
        st.caption(access.refusal("Computing an embedding map"))
    elif st.button(label, key=key, icon=":material/scatter_plot:"):
        compute(entry)
        st.rerun()


def view(entries: Sequence[Entry], *, dataset: Optional[str], domain: Optional[str] = None,
         key: str = "embed") -> None:
    """Pick a model; its map, or how to make one."""
    if not entries:
        return
    name = st.selectbox("Model", [e.name for e in entries], key=f"{key}_model")
    entry = next(e for e in entries if e.name == name)
    emb = stored_map(entry)
    command = access.shown(f"python -m fvcore embed {entry.path}", keep_local=True)
    if emb is None:
        st.info(f"No embedding map for {name} yet: run `{command}` or compute it here (loads "
                "the model and reads every test image once).")
        _compute_button(entry, "Compute the map", f"{key}_compute")
        return
    if not emb.current(entry.path):
        st.warning(f"This map was computed from earlier weights of {name}: run `{command}` "
                   "again (or recompute it here).", icon=":material/update:")
        _compute_button(entry, "Recompute", f"{key}_recompute")
    frame = emb.frame if not domain else emb.frame[emb.frame["domain"] == domain]
    if frame.empty:
        st.info(f"The map of {name} has no test image of {domain}.")
        return
    wrong = int((~frame["correct"]).sum())
    title = (f"{name}: {len(frame)} test images by its penultimate features "
             f"({emb.method.upper()}; {wrong} mistakes as crosses)")
    event = st.plotly_chart(charts.embedding_map(frame, title), key=f"{key}_chart_{name}",
                            on_select="rerun", selection_mode=("points", "box", "lasso"))
    chosen = selected_rows(frame, gallery.points(event))
    if chosen.empty:
        st.caption("Draw a lasso or a box around points (or click one) to see those photos. "
                   "Close points are images the model sees as alike.")
        return
    st.markdown(f"**{len(chosen)} selected photo{'s' * (len(chosen) != 1)}**")
    captions = [f"**{PurePosixPath(r.path).name}**: label {r.label}, predicted "
                f"{'✓' if r.correct else '✗'} {r.pred}" for r in chosen.itertuples()]
    gallery.photos(chosen, captions, dataset, key=key)

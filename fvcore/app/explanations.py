"""Explanations in the app: Compare's *Explanations* tab (each model's stored explanation
quality per CAM method against a random heatmap, from ``explain_quality.csv``, and the
model-randomisation sanity check from ``explain_sanity.csv``) and the Grad-CAM page's grid of
every selected model under every CAM method for one photo."""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import pandas as pd
import plotly.express as px
import streamlit as st

from fvcore.app import cache, charts, limits, shell
from fvcore.checkpoints.catalog import Entry
from fvcore.evaluation.explanations import (
    QUALITY,
    RANDOM,
    SANITY,
    ExplainQuality,
    MethodQuality,
    load_quality,
)
from fvcore.explain.cam import CAM_METHODS, overlay

COMMAND = "python -m fvcore explain-eval CHECKPOINT... --data DIR/test --limit 50"
RANDOM_LABEL = "Random heatmap (baseline)"
METRICS = {"road": "ROAD (combined)", "road_morf": "ROAD MoRF", "road_lerf": "ROAD LeRF",
           "deletion": "Deletion AUC", "insertion": "Insertion AUC", "ms": "ms / image"}
HIGHER = {"road": True, "road_morf": True, "road_lerf": False, "deletion": False,
          "insertion": True}
"""The scores compared with the random heatmap, and which way is better."""


def method_label(method: str) -> str:
    """A method as people read it (the random baseline included)."""
    return RANDOM_LABEL if method == RANDOM else (
        CAM_METHODS[method].label if method in CAM_METHODS else method)


@st.cache_data(show_spinner=False, max_entries=128)
def _load(path: str, name: str, stamps: tuple[float, float]) -> Optional[ExplainQuality]:
    return load_quality(path, name)


def stored(entries: Sequence[Entry]) -> dict[str, ExplainQuality]:
    """The stored results of every entry that has some, by name (re-read when a file changes)."""
    found = {e.name: _load(str(e.path), e.name, (cache.mtime(e.path / QUALITY),
                                                 cache.mtime(e.path / SANITY))) for e in entries}
    return {name: q for name, q in found.items() if q is not None and q.methods}


def _beats(m: MethodQuality, base: Optional[MethodQuality]) -> str:
    """``2 of 3``; ``baseline`` for the random heatmap itself, ``–`` without one to beat (a
    text cell: the table would show a missing number as "None")."""
    if m.method == RANDOM:
        return "baseline"
    if base is None:
        return "–"
    wins = sum((getattr(m, k) > getattr(base, k)) == up for k, up in HIGHER.items()
               if k not in ("road_morf", "road_lerf"))
    return f"{wins} of 3"


def quality_frame(found: Mapping[str, ExplainQuality]) -> pd.DataFrame:
    """One row per model and method (the random baseline last): the mean scores, and on how
    many of ROAD, deletion and insertion the method beats the random heatmap."""
    rows = []
    for name, q in found.items():
        base = q.method(RANDOM)
        for m in sorted(q.methods, key=lambda m: m.method == RANDOM):
            rows.append({"model": name, "method": method_label(m.method),
                         **{k: getattr(m, k) for k in METRICS},
                         "beats_random": _beats(m, base), "images": m.n_images})
    return pd.DataFrame(rows, columns=["model", "method", *METRICS, "beats_random", "images"])


def sanity_frame(found: Mapping[str, ExplainQuality]) -> pd.DataFrame:
    """One row per model, method and randomisation stage: the mean Spearman correlation."""
    rows = [{"model": name, "method": method_label(p.method), "stage": p.stage,
             "randomised": p.fraction, "lowest": p.lowest or "-", "layers": p.randomised,
             "spearman": p.spearman, "spearman_std": p.spearman_std}
            for name, q in found.items() for p in q.sanity]
    return pd.DataFrame(rows, columns=["model", "method", "stage", "randomised", "lowest",
                                       "layers", "spearman", "spearman_std"])


def _table(frame: pd.DataFrame, key: str) -> None:
    score = {k: st.column_config.NumberColumn(t, format="%.3f") for k, t in METRICS.items()}
    st.dataframe(frame, hide_index=True, key=key, column_config={
        **score,
        "road_morf": st.column_config.NumberColumn(
            "ROAD MoRF", format="%.3f", help="Mean drop of the class probability when the most "
                                             "relevant pixels are imputed: higher is better"),
        "road_lerf": st.column_config.NumberColumn(
            "ROAD LeRF", format="%.3f", help="Mean drop when the least relevant pixels are "
                                             "imputed: lower is better"),
        "deletion": st.column_config.NumberColumn(
            "Deletion AUC", format="%.3f", help="Area under the class probability as pixels are "
                                                "deleted, most relevant first: lower is better"),
        "insertion": st.column_config.NumberColumn(
            "Insertion AUC", format="%.3f", help="Area under the class probability as pixels "
                                                 "are inserted into a blurred copy, most "
                                                 "relevant first: higher is better"),
        "ms": st.column_config.NumberColumn("ms / image", format="%.1f"),
        "beats_random": st.column_config.TextColumn(
            "Beats random", help="On how many of ROAD, deletion and insertion the method "
                                 "beats the random heatmap")})


def explanations_tab(entries: Sequence[Entry], *, key: str = "explain") -> None:
    """Compare's Explanations tab for the selected ``entries``."""
    found = stored(entries)
    if not found:
        st.info(f"No explanation quality is stored for the selected models: run `{COMMAND}`.")
        return
    by_name = {e.name: e for e in entries}
    for name, q in found.items():
        entry = by_name[name]
        if not q.current(entry.path, entry.card.temperature):
            st.warning(f"{name}: these results come from earlier weights; run `{COMMAND}` "
                       "again.", icon=":material/update:")
    missing = [e.name for e in entries if e.name not in found]
    if missing:
        st.caption(f"Nothing stored for {', '.join(missing)}: run `{COMMAND}`.")
    table = quality_frame(found)
    st.subheader("Explanation quality per model and method")
    _table(table, f"{key}_table")
    st.caption("Each CAM explains the predicted class on the same test images; the random "
               "heatmap (smooth noise shaped like a CAM) is what chance scores. A method "
               "that does not beat it does not show what the model uses.")
    left, right = st.columns(2)
    with left:
        metric = st.selectbox("Score", [k for k in METRICS], format_func=METRICS.get,
                              key=f"{key}_metric")
        fig = px.bar(table, x="model", y=metric, color="method", barmode="group",
                     color_discrete_sequence=charts.COLOURS,
                     title=f"{METRICS[metric]} per model and method")
        fig.update_layout(height=400, yaxis_title=METRICS[metric], legend_title_text="method")
        st.plotly_chart(fig, key=f"{key}_bars")
    with right:
        sanity = sanity_frame(found)
        if sanity.empty:
            st.info("No randomisation check is stored: run the command without --no-sanity.")
        else:
            fig = px.line(sanity, x="randomised", y="spearman", color="method", markers=True,
                          facet_col="model", facet_col_wrap=2, hover_data=["lowest", "layers"],
                          color_discrete_sequence=charts.COLOURS,
                          title="Randomisation check (Spearman vs the trained heatmap)")
            fig.update_xaxes(title="", tickformat=".0%")
            fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
            fig.update_layout(height=400, yaxis_title="Spearman", legend_title_text="method",
                              margin={"b": 70})
            fig.add_annotation(text="share of layers randomised, from the head down",
                               xref="paper", yref="paper", x=0.5, y=-0.16, showarrow=False)
            st.plotly_chart(fig, key=f"{key}_sanity")
            st.caption("Adebayo et al. (2018): re-initialising the layers from the head down "
                       "should make the heatmap change (the correlation fall); a method whose "
                       "heatmap stays alike does not depend on what the model learned.")


def method_grid(entries: Sequence[Entry], data: bytes, target: Optional[str], *,
                alpha: float = 0.5, score: bool = False, key: str = "cam_grid") -> None:
    """The Grad-CAM page's grid for one photo: one row per model, one column per CAM method
    (results cached as the page's own), with the grid as a PNG download."""
    methods = list(CAM_METHODS)
    tiles = []
    with shell.guard("method grid"), limits.action("Grad-CAM"):
        for model in shell.load_models(entries):
            st.markdown(f"**{model.name}**")
            for cell, method in zip(st.columns(len(methods)), methods, strict=True):
                with cell, shell.guard(f"{model.name} {method}"):
                    cam = cache.explain(model, data, target, method, score)
                    image = overlay(cam.crop, cam.heatmap, alpha=alpha)
                    faith = ("" if cam.faithfulness is None
                             else f" · faithfulness {round(cam.faithfulness, 2) + 0.0:+.2f}")
                    caption = f"{cam.method_label} of {cam.target} · {cam.ms:.0f} ms{faith}"
                    st.image(image, caption=caption, width="stretch")
                    tiles.append((f"{model.name}: {cam.method_label}\n{cam.target}{faith}",
                                  image))
    if tiles:
        st.download_button("Download the model × method grid (PNG)",
                           charts.cam_grid(tiles, columns=len(methods)),
                           "gradcam-methods.png", "image/png", key=f"{key}_download",
                           icon=":material/download:")

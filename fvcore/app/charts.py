"""Plotly figures for the app (every chart titled, every axis labelled) and the Grad-CAM grid
image. Inputs are the frames of :mod:`fvcore.evaluation.analysis`; no streamlit here."""
from __future__ import annotations

import io
from typing import Mapping, Optional, Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import plotly.io as pio
from PIL import Image, ImageDraw, ImageFont

from fvcore.evaluation.analysis import Significance, format_p

TEMPLATE = "plotly_white"
COLOURS = px.colors.qualitative.Safe


def _legend_entries(fig: go.Figure) -> int:
    """Traces that get a row in the legend (a heatmap shows a colour bar instead)."""
    return sum(t.type != "heatmap" and t.showlegend is not False for t in fig.data)


def _finish(fig: go.Figure, title: str, x: str, y: str, *, height: int = 380) -> go.Figure:
    # the horizontal legend sits below the plot: the figure grows 9 px per entry, so the plot
    # keeps its height and the legend stays clear of the x-axis title
    fig.update_layout(template=TEMPLATE, title=dict(text=title, x=0.0, xanchor="left"),
                      height=height + 9 * _legend_entries(fig),
                      margin=dict(l=10, r=10, t=50, b=10),
                      legend=dict(title=None, orientation="h", yanchor="top", y=-0.2, x=0))
    fig.update_xaxes(title_text=x)
    fig.update_yaxes(title_text=y)
    return fig


def _square(n: int, *, base: int = 360, per_class: int = 22, cap: int = 900) -> int:
    return int(min(cap, max(base, 140 + per_class * n)))


def _bar_template() -> go.layout.Template:
    """plotly_white's layout and bar defaults only: copying the whole template (defaults for
    every trace type) into a figure costs ~20 ms of CPU, and Predict draws one chart per model
    and photo."""
    white = pio.templates[TEMPLATE]
    return go.layout.Template(layout=white.layout, data={"bar": white.data.bar})


_BARS = _bar_template()


def top_k_bars(frame: pd.DataFrame, title: str, *, highlight: Optional[str] = None) -> go.Figure:
    """Horizontal probability bars of one model's top-k (best at the top); built in one go (no
    update_* passes), as :func:`_finish` would lay it out."""
    colours = [COLOURS[1] if label == highlight else COLOURS[0] for label in frame["label"]]
    bar = go.Bar(x=frame["prob"], y=frame["label"], orientation="h", marker_color=colours,
                 text=[f"{p:.0%}" for p in frame["prob"]], textposition="auto",
                 hovertemplate="%{y}: %{x:.1%}<extra></extra>")
    layout = dict(template=_BARS, title=dict(text=title, x=0.0, xanchor="left"),
                  height=90 + 34 * len(frame), margin=dict(l=10, r=10, t=50, b=10),
                  legend=dict(title=None, orientation="h", yanchor="top", y=-0.2, x=0),
                  xaxis=dict(range=[0, 1], tickformat=".0%", title=dict(text="probability")),
                  yaxis=dict(autorange="reversed", title=dict(text="class")))
    return go.Figure(bar, layout=layout)


def efficiency(table: pd.DataFrame, front: pd.DataFrame, cost: str, cost_title: str,
               title: str, *, log_x: bool = True) -> go.Figure:
    """Accuracy against a cost, one labelled point per model, the frontier as a dashed line."""
    data = table.dropna(subset=[cost, "accuracy"])
    fig = px.scatter(data, x=cost, y="accuracy", color="init", text="model", log_x=log_x,
                     hover_data={"model": True, "arch": True, cost: ":.3g", "accuracy": ":.1%"},
                     color_discrete_sequence=COLOURS)
    fig.update_traces(textposition="top center", marker=dict(size=12), cliponaxis=False)
    if len(front) > 1:  # drawn first, under the points
        fig.add_trace(go.Scatter(x=front[cost], y=front["accuracy"], mode="lines",
                                 line=dict(dash="dash", color="grey"), name="frontier",
                                 hoverinfo="skip"))
        fig.data = (fig.data[-1], *fig.data[:-1])
    fig.update_yaxes(tickformat=".0%")
    if len(data):  # room for the point labels
        span = np.log10(data[cost].max() / data[cost].min()) if log_x else 0.0
        pad = max(span * 0.15, 0.1)
        low, high = np.log10(data[cost].min()) - pad, np.log10(data[cost].max()) + pad
        fig.update_xaxes(range=[low, high] if log_x else None)
    fig = _finish(fig, title, cost_title, "test accuracy", height=420)
    return fig.update_layout(legend=dict(title="initialisation", y=-0.25))


def curves(long: pd.DataFrame, metric: str, *, log_y: bool = False) -> go.Figure:
    """Overlaid per-epoch curves: colour = model, solid = validation, dotted = train, dashed =
    validation on one source of a run on several folders (``long`` may hold one split only)."""
    data = long[long["metric"] == metric]
    single = data["model"].nunique() == 1   # one model: colour the splits instead
    splits = sorted(data["split"].unique())
    per_domain = [s for s in splits if s.startswith("validation: ")]
    shown = ("validation solid, per source dashed" if per_domain
             else f"{splits[0]} only" if len(splits) == 1 else "train dotted, validation solid")
    dashes = {"validation": "solid", "train": "dot",
              **{s: ("dash", "dashdot", "longdash")[i % 3] for i, s in enumerate(per_domain)}}
    fig = px.line(data, x="epoch", y="value", color="split" if single else "model",
                  line_dash="split", markers=True, log_y=log_y, color_discrete_sequence=COLOURS,
                  line_dash_map=dashes)
    if metric == "accuracy":
        fig.update_yaxes(tickformat=".0%")
    return _finish(fig, f"{metric.capitalize()} per epoch ({shown})",
                   "epoch", metric + (" (log scale)" if log_y else ""))


def heatmap(frame: pd.DataFrame, title: str, x: str, y: str, *, diverging: bool = False,
            fmt: str = ".2f", zmax: Optional[float] = None) -> go.Figure:
    """An annotated heatmap; diverging (blue-white-red around 0) for differences."""
    values = frame.to_numpy(dtype=float)
    if diverging:
        bound = zmax or max(1e-9, float(np.nanmax(np.abs(values))) if values.size else 1.0)
        kwargs = dict(color_continuous_scale="RdBu_r", zmin=-bound, zmax=bound)
    else:
        kwargs = dict(color_continuous_scale="Blues", zmin=0, zmax=zmax)
    # numbers in the cells while they fit: up to 20 x 20, or a tall table of few columns
    # (34 classes x 9 models of per-class F1)
    show_text = max(frame.shape) <= 20 or (frame.shape[1] <= 12 and frame.shape[0] <= 60)
    fig = px.imshow(values, x=[str(c) for c in frame.columns], y=[str(i) for i in frame.index],
                    text_auto=fmt if show_text else False, aspect="auto", **kwargs)
    fig.update_xaxes(side="bottom", tickangle=-45 if frame.shape[1] > 6 else 0)
    return _finish(fig, title, x, y, height=_square(frame.shape[0]))


def reliability(frame: pd.DataFrame, eces: Mapping[str, float]) -> go.Figure:
    """Reliability diagram: accuracy per confidence bin against the diagonal of perfect
    calibration; ECE in each model's legend entry."""
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                               line=dict(dash="dash", color="grey")))
    for i, (name, part) in enumerate(frame.groupby("model", sort=True)):
        fig.add_trace(go.Scatter(
            x=part["confidence"], y=part["accuracy"], mode="lines+markers",
            name=f"{name} (ECE {eces.get(name, float('nan')):.3f})",
            marker=dict(size=6 + 10 * np.sqrt(part["count"] / max(1, part["count"].max()))),
            line=dict(color=COLOURS[i % len(COLOURS)]), customdata=part["count"],
            hovertemplate="confidence %{x:.2f}<br>accuracy %{y:.2f}<br>%{customdata} images"))
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1.02])
    return _finish(fig, "Reliability diagram (marker size = images in the bin)",
                   "mean confidence in bin", "accuracy in bin", height=420)


def mcnemar(sig: Significance) -> go.Figure:
    """Pairwise McNemar tests: each cell is the row model's accuracy minus the column model's
    (percentage points) and the p-value; green where the row model is significantly better, red
    where it is significantly worse (p < 0.05), grey where the test cannot tell them apart."""
    pvals, diffs = sig.pvals.to_numpy(dtype=float), sig.diffs.to_numpy(dtype=float)
    z = np.where(pvals < 0.05, np.sign(diffs), 0.0)
    z[np.isnan(diffs)] = np.nan
    labels = [[("" if np.isnan(d) else f"{d:+.1f}<br>{format_p(p)}")
               for d, p in zip(drow, prow, strict=True)]
              for drow, prow in zip(diffs, pvals, strict=True)]
    fig = go.Figure(go.Heatmap(
        z=z, x=list(sig.pvals.columns), y=list(sig.pvals.index), zmin=-1, zmax=1,
        colorscale=[[0, "#d6604d"], [0.5, "#f0f0f0"], [1, "#4d9221"]], showscale=False,
        text=labels, texttemplate="%{text}", customdata=sig.text.to_numpy(),
        hovertemplate="%{customdata}<extra></extra>", xgap=2, ygap=2))
    fig.update_yaxes(autorange="reversed", showgrid=False)
    fig.update_xaxes(showgrid=False)
    n = sig.result["n_images"]
    return _finish(fig, f"Row minus column accuracy, points ({n} shared test images; coloured: "
                        "McNemar p < 0.05)", "column model", "row model",
                   height=_square(len(sig.pvals), base=320, per_class=60))


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """``text`` shortened with an ellipsis until it is at most ``width`` pixels wide."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def cam_grid(tiles: Sequence[tuple[str, Image.Image]], *, tile: int = 320,
             columns: int = 4, gap: int = 8) -> bytes:
    """The Grad-CAM overlays side by side, each under a two-line caption, as PNG bytes."""
    font = ImageFont.load_default(size=13)
    columns = max(1, min(columns, len(tiles)))
    rows = -(-len(tiles) // columns)
    caption, step = 38, tile + gap
    grid = Image.new("RGB", (columns * step + gap, rows * (step + caption) + gap), "white")
    draw = ImageDraw.Draw(grid)
    for i, (title, image) in enumerate(tiles):
        x, y = gap + (i % columns) * step, gap + (i // columns) * (step + caption)
        grid.paste(image.convert("RGB").resize((tile, tile)), (x, y + caption))
        for j, line in enumerate(title.split("\n")[:2]):
            draw.text((x, y + 2 + 17 * j), _fit(draw, line, font, tile), fill="black", font=font)
    out = io.BytesIO()
    grid.save(out, format="PNG")
    return out.getvalue()


def cell_targets(fig: go.Figure, frame: pd.DataFrame) -> go.Figure:
    """Invisible click targets over a confusion heatmap's cells (plotly's heatmaps send no
    selection events): a click selects a point carrying its (true, predicted) pair."""
    ys, xs = np.meshgrid([str(i) for i in frame.index], [str(c) for c in frame.columns],
                         indexing="ij")
    # hover (and so a click) goes to the nearest cell centre however far: the cell under the
    # pointer, as the centres form a grid
    fig.update_traces(hoverinfo="skip", hovertemplate=None, selector=dict(type="heatmap"))
    fig.add_trace(go.Scatter(
        x=xs.ravel(), y=ys.ravel(), mode="markers", showlegend=False, name="cells",
        marker=dict(size=8, opacity=0),
        customdata=np.stack([ys.ravel(), xs.ravel()], axis=1),
        text=[f"{v:.3g}" for v in frame.to_numpy(dtype=float).ravel()],
        hovertemplate="true %{customdata[0]}, predicted %{customdata[1]}: %{text}<br>"
                      "click to see these images<extra></extra>"))
    return fig.update_layout(clickmode="event+select", hovermode="closest", hoverdistance=-1)


EMBED_COLOURS = px.colors.qualitative.Dark24 + px.colors.qualitative.Light24


def embedding_map(frame: pd.DataFrame, title: str) -> go.Figure:
    """A 2-D map of test images: colour = given class, a cross = a mistake of the model; hover
    shows the photo's name, label and prediction; lasso or box select photos."""
    data = frame.assign(name=[p.rsplit("/", 1)[-1] for p in frame["path"]],
                        answer=np.where(frame["correct"], "right", "mistake"))
    fig = px.scatter(data, x="x", y="y", color="label", symbol="answer",
                     symbol_map={"right": "circle", "mistake": "x"},
                     custom_data=["path", "name", "label", "pred"],
                     color_discrete_sequence=EMBED_COLOURS,
                     category_orders={"answer": ["right", "mistake"]})
    fig.update_traces(marker=dict(size=7, line=dict(width=0)),
                      hovertemplate="%{customdata[1]}<br>label %{customdata[2]}<br>"
                                    "predicted %{customdata[3]}<extra></extra>")
    fig = _finish(fig, title, "map x", "map y")
    return fig.update_layout(dragmode="lasso", height=600,   # one legend row per trace: at the side
                             legend=dict(title="class, answer", orientation="v", x=1.02, y=1,
                                         yanchor="top"))

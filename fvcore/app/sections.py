"""Page sections shared by several pages: the model table, one model's prediction block and the
metrics panel shown for stored (Compare) and uploaded (Evaluate) predictions. The figures
(:mod:`fvcore.app.charts`, plotly express) are imported by the sections that draw them, so the Home
page's table does not wait for them."""
from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

import pandas as pd
import streamlit as st

from fvcore.app import access, cache, cells, domains, frames
from fvcore.checkpoints.catalog import Entry
from fvcore.evaluation import analysis
from fvcore.evaluation.evaluate import Predictions

if TYPE_CHECKING:
    from fvcore.inference.predict import ModelAnswer

_PERCENT = ("accuracy", "ci_low", "ci_high", "macro_f1", "weighted_f1", "group_accuracy",
            "top3_accuracy", "best_val_acc", "share")


def column_config(frame: pd.DataFrame, titles: Optional[Mapping[str, str]] = None) -> dict:
    """Human column titles and number formats for a dashboard frame."""
    titles = {**frames.TABLE_COLUMNS, "weighted_f1": "Weighted F1",
              "top3_accuracy": "Top-3 acc", "loss": "Loss", "n_images": "Images",
              "best_val_acc": "Best val acc", "minutes": "Minutes", "epochs": "Epochs",
              **(titles or {})}
    config = {}
    for column in frame.columns:
        title = titles.get(column, column.replace("_", " ").capitalize())
        if domains.is_domain_column(column):
            config[column] = st.column_config.NumberColumn(
                domains.column_title(column), format="%.1f%%",
                help="Accuracy on this test domain's images alone")
        elif column == domains.GAP:
            config[column] = st.column_config.NumberColumn(
                "Domain gap (points)", format="%.1f",
                help="Best minus worst test domain accuracy, in percentage points")
        elif column in _PERCENT:
            config[column] = st.column_config.NumberColumn(title, format="%.1f%%")
        elif column in ("ece", "loss"):
            config[column] = st.column_config.NumberColumn(title, format="%.3f")
        elif column == "temperature":
            config[column] = st.column_config.NumberColumn(
                title, format="%.2f", help="Probabilities are softmax(logits / T), T fitted on "
                "the validation split (1: not calibrated)")
        elif column == "gflops":
            config[column] = st.column_config.NumberColumn(title, format="%.2f")
        elif column in ("params_m", "latency_ms", "training_min", "minutes"):
            config[column] = st.column_config.NumberColumn(title, format="%.1f")
        else:
            config[column] = st.column_config.Column(title)
    return config


def display_frame(frame: pd.DataFrame, columns: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """The frame as shown: chosen columns, empty ones dropped (and the architecture when every
    model is named after it), rates in percent, the confidence interval as one ``low–high %``
    column after the accuracy; per-domain accuracies and their gap (when the frame has them)
    follow it even when ``columns`` does not name them."""
    if columns:
        columns = list(columns)
        extra = [c for c in frame.columns if domains.is_domain_column(c) or c == domains.GAP]
        at = columns.index("accuracy") + 1 if "accuracy" in columns else len(columns)
        columns[at:at] = [c for c in extra if c not in columns]
    frame = frame[list(columns)] if columns else frame.copy()
    if {"model", "arch"} <= set(frame.columns) and frame["model"].equals(frame["arch"]):
        frame = frame.drop(columns="arch")
    if {"ci_low", "ci_high"} <= set(frame.columns):
        ci = [f"{lo:.0%}–{hi:.0%}" if pd.notna(lo) else None
              for lo, hi in zip(frame.pop("ci_low"), frame.pop("ci_high"), strict=True)]
        frame.insert(list(frame.columns).index("accuracy") + 1 if "accuracy" in frame else 0,
                     "ci95", ci)
    for column in [*_PERCENT, *filter(domains.is_domain_column, frame.columns)]:
        if column in frame:
            frame[column] = frame[column].astype(float) * 100
    return frame.dropna(axis=1, how="all")


def table(frame: pd.DataFrame, *, key: Optional[str] = None,
          columns: Optional[Sequence[str]] = None,
          titles: Optional[Mapping[str, str]] = None) -> None:
    """A sortable table with human titles and formats (see :func:`display_frame`)."""
    frame = display_frame(frame, columns)
    config = column_config(frame, titles)
    if "ci95" in frame:
        config["ci95"] = st.column_config.TextColumn("95% CI", help="Wilson interval of the "
                                                     "accuracy on this many test images")
    st.dataframe(frame, hide_index=True, column_config=config, key=key)


def model_card(entries: Sequence[Entry], order: Sequence[str], *, key: str) -> None:
    """How one model was made: pick a model (``order``: names, best first), see its card as a
    readable list, the exact training command and the card itself as a download."""
    by_name = {entry.name: entry for entry in entries}
    names = [name for name in order if name in by_name]
    if not names:
        return
    name = st.selectbox("Model", names, key=f"{key}_model")
    entry = by_name[name]
    left, right = st.columns([3, 2])
    facts = frames.card_facts(entry.card)
    facts["value"] = [access.shown(v, keep_local=True) for v in facts["value"]]
    left.markdown(frames.facts_markdown(facts))
    with right:
        if entry.card.command:
            st.caption("The exact training command")
            st.code(access.shown(entry.card.command, keep_local=True), language="bash",
                    wrap_lines=True)
        st.download_button("card.json", access.shown(entry.card.to_json(), keep_local=True),
                           file_name=f"{name}-card.json",
                           mime="application/json", key=f"{key}_download",
                           icon=":material/download:")


def prediction_block(answer: ModelAnswer, k: int, *, dissent: bool,
                     majority: Optional[str], key: str) -> None:
    """One model's answer for one image: top-1 as a metric, group, latency, top-k bars
    (``key`` makes the chart unique: two models, or two photos, may give equal bars)."""
    from fvcore.app import charts
    top = frames.answer_top_k(answer, k)
    label, prob = top["label"][0], top["prob"][0]
    with st.container(border=True):
        st.metric(answer.model, label, f"{prob:.0%} probability", delta_color="off",
                  delta_arrow="off")
        details = [f"{answer.ms:.1f} ms/image"]
        if answer.groups.get(label):
            details.insert(0, answer.groups[label])
        st.caption(" · ".join(details))
        if dissent and majority:
            st.badge(f"differs from the majority ({majority})", icon=":material/call_split:",
                     color="orange")
        st.plotly_chart(charts.top_k_bars(top, f"Top-{len(top)}", highlight=majority),
                        config={"displayModeBar": False}, key=key)


def grid(n: int, per_row: int = 4, *, at_least: int = 3) -> list:
    """``n`` cells in rows of ``per_row`` columns (never fewer than ``at_least`` columns, so one
    model does not fill the whole width)."""
    cells = []
    for _ in range(0, n, per_row):
        cells += st.columns(max(min(n, per_row), at_least))
    return cells[:n]


def plural(n: int, word: str) -> str:
    """``1 model``, ``3 models``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def test_split(preds: Mapping[str, Predictions], *, key: str
               ) -> tuple[dict[str, Predictions], Optional[str]]:
    """A "Test split" choice when the stored predictions span two or more test domains: every
    model's predictions on all test images or on one domain (None: all, or a single domain)."""
    names = domains.test_domains(preds)
    if len(names) < 2:
        return dict(preds), None
    domain = st.selectbox("Test split", [None, *names], key=key,
                          format_func=lambda d: "All test images" if d is None else d,
                          help="The test images of one source dataset (test domain) alone: "
                               "a model can do well on one and badly on another.")
    chosen, missing = domains.in_domain(preds, domain)
    if missing:
        st.caption(f"No test images from {domain} for: {', '.join(missing)}")
    return chosen, domain


def metrics_panel(preds: Mapping[str, Predictions], groups: Mapping[str, str], *,
                  key: str, dataset: Optional[str] = None) -> None:
    """Metrics of a set of models on shared labelled images: table, per-class F1, confusion
    (normalised or counts, one model or the difference of two, with the images behind a cell:
    found under the data roots in ``dataset``, or a table), reliability and McNemar."""
    from fvcore.app import charts
    full = analysis.reports(preds, dict(groups))
    classes = next(iter(preds.values())).classes
    tabs = st.tabs(["Confusion", "Per-class F1", "Calibration", "Significance"])
    with tabs[0]:
        names = analysis.ranked(full)   # the best model is shown first
        left, mid, right = st.columns([2, 2, 1])
        model = left.selectbox("Model", names, key=f"{key}_cm_model")
        other = None
        if len(names) > 1 and right.toggle("Difference", key=f"{key}_cm_diff",
                                           help="Show model A minus model B"):
            other = mid.selectbox("minus model", [n for n in names if n != model],
                                  key=f"{key}_cm_other")
        normalise = right.toggle("Normalise rows", value=True, key=f"{key}_cm_norm")
        if other:
            diff = analysis.confusion_difference(full[model], full[other], classes,
                                                  normalise=normalise)
            fig = charts.heatmap(diff, f"Confusion of {model} minus {other} "
                                       f"(red: {model} predicts more)",
                                 "predicted class", "true class", diverging=True,
                                 fmt=".2f" if normalise else ".0f")
        else:
            cm = analysis.confusion_frame(full[model], classes, normalise=normalise)
            fig = charts.heatmap(cm, f"Confusion matrix of {model}"
                                     f"{' (share of each true class)' if normalise else ''}",
                                 "predicted class", "true class", fmt=".2f" if normalise else ".0f",
                                 zmax=1.0 if normalise else None)
            fig = charts.cell_targets(fig, cm)   # a click picks the cell shown below
        event = st.plotly_chart(fig, key=f"{key}_cm_chart", on_select="rerun",
                                selection_mode="points")
        if not other:
            st.markdown(f"**Most frequent mistakes of {model}**")
            table(analysis.top_confusions(full[model], classes), key=f"{key}_cm_top",
                  titles={"true": "True class", "predicted": "Predicted as",
                          "share": "Share of the true class"})
            cells.click_through(preds, model, full[model], event, dataset=dataset,
                                key=f"{key}_cell")
    with tabs[1]:
        f1 = analysis.per_class_f1(full)
        st.plotly_chart(charts.heatmap(f1, "Per-class F1 across models", "model", "class",
                                       zmax=1.0), key=f"{key}_f1_chart")
    with tabs[2]:
        frame, eces = analysis.reliability(preds)
        st.plotly_chart(charts.reliability(frame, eces), key=f"{key}_rel_chart")
        st.caption("ECE (expected calibration error): the gap between confidence and accuracy, "
                   "weighted by bin size; lower is better. These are the probabilities the models "
                   "give: after temperature scaling where a card has a temperature (the "
                   "Temperature column of Compare's overview).")
    with tabs[3]:
        if len(preds) < 2:
            st.info("Select at least two models to test whether they differ.")
        else:
            sig = analysis.mcnemar_matrix(preds)
            result = sig.result
            st.plotly_chart(charts.mcnemar(sig), key=f"{key}_mcnemar_chart")
            st.caption("Models best first. Each cell: how many points more accurate the row's "
                       "model is than the column's on the same test images, and McNemar's exact "
                       "test of whether that difference is real. Green: the row model is really "
                       "better on this test set (p < 0.05); red: really worse; grey: the test "
                       "cannot tell them apart. Hover a cell for who was right where.")
            ens = result["ensemble"]
            st.markdown(f"**Soft-voting ensemble** of {len(ens['members'])} models: "
                        f"accuracy {ens['accuracy']:.1%} (95% CI {ens['accuracy_ci95'][0]:.1%}"
                        f"–{ens['accuracy_ci95'][1]:.1%}) on {result['n_images']} images.")


def onnx_downloads(entries: Sequence[Entry], *, key: str) -> None:
    """A download button of each checkpoint's ONNX export, made when first clicked."""
    with st.container(horizontal=True):
        for entry in entries:
            st.download_button(f"{entry.name}.onnx", partial(cache.onnx_file, entry.path),
                               f"{entry.name.replace('/', '-')}.onnx", "application/octet-stream",
                               key=f"{key}::{entry.name}", icon=":material/download:",
                               on_click="ignore", help=f"{entry.name} as an ONNX graph (input "
                               f"1x3x{entry.card.image_size}x{entry.card.image_size}, "
                               "normalised; output logits)")


def epoch_curves(name: str, epochs: Sequence[Mapping[str, Any]], *, key: str) -> None:
    """Loss and accuracy per epoch of one run (the registry's epoch rows), side by side."""
    from fvcore.app import charts
    frame = frames.epochs_long(name, epochs)
    left, right = st.columns(2)
    left.plotly_chart(charts.curves(frame, "loss"), key=f"{key}_loss")
    right.plotly_chart(charts.curves(frame, "accuracy"), key=f"{key}_acc")

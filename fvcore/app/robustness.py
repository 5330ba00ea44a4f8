"""Away from the test split, in the app: Compare's *Robustness* tab (corruption sweeps from each
checkpoint's ``robustness.csv``, the mCE ranking, calibration under shift, the OOD AUROC from
``ood.json``) and Predict's "probably none of its classes" mark from each model's OOD threshold."""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Optional, Sequence

import pandas as pd
import streamlit as st

from fvcore.app.cache import mtime
from fvcore.checkpoints.catalog import Entry
from fvcore.evaluation.ood import OOD, OodReport, load_ood
from fvcore.evaluation.robustness import (
    ROBUSTNESS,
    Robustness,
    corruption_errors,
    load_robustness,
    mean_corruption_error,
)

if TYPE_CHECKING:
    from fvcore.inference.predict import ImagePrediction

SWEEP_COMMAND = ("python -m fvcore robustness CHECKPOINT... --data DIR/test --limit 200 "
                 "[--corruptions gaussian_noise,defocus_blur,jpeg_compression] [--severities 1-5]")
OOD_COMMAND = "python -m fvcore ood CHECKPOINT... --data DIR/test"


@st.cache_data(show_spinner=False, max_entries=128)
def _sweep(path: str, name: str, stamp: float) -> Optional[Robustness]:
    return load_robustness(path, name)


@st.cache_data(show_spinner=False, max_entries=128)
def _ood(path: str, stamp: float) -> Optional[OodReport]:
    return load_ood(path)


def sweeps(entries: Sequence[Entry]) -> dict[str, Robustness]:
    """The stored sweep of every entry that has one (with a clean row), by name."""
    found = {e.name: _sweep(str(e.path), e.name, mtime(e.path / ROBUSTNESS)) for e in entries}
    return {name: s for name, s in found.items() if s is not None and s.clean and s.rows}


def ood_reports(entries: Sequence[Entry]) -> dict[str, OodReport]:
    """The stored ``ood.json`` of every entry that has one, by name."""
    found = {e.name: _ood(str(e.path), mtime(e.path / OOD)) for e in entries}
    return {name: r for name, r in found.items() if r is not None}


def severity_frame(found: Mapping[str, Robustness]) -> pd.DataFrame:
    """One row per model, corruption and severity (severity 0: clean, repeated per corruption)."""
    rows = []
    for name, sweep in found.items():
        for corruption in sweep.corruptions:
            rows.append({"model": name, "corruption": corruption, "severity": 0,
                         "accuracy": sweep.clean.accuracy, "ece": sweep.clean.ece})
            rows += [{"model": name, "corruption": r.corruption, "severity": r.severity,
                      "accuracy": r.accuracy, "ece": r.ece}
                     for r in sweep.rows if r.corruption == corruption]
    return pd.DataFrame(rows, columns=["model", "corruption", "severity", "accuracy", "ece"])


def ranking(found: Mapping[str, Robustness], baseline: str) -> pd.DataFrame:
    """mCE against ``baseline`` (lowest first), clean and mean corrupted accuracy and ECE."""
    base = found[baseline].errors()
    rows = [{"model": name, "mce": mean_corruption_error(s.errors(), base),
             "clean": s.clean.accuracy, "corrupted": s.mean_accuracy, "drop": s.drop,
             "clean_ece": s.clean.ece,
             "corrupted_ece": float(pd.Series([r.ece for r in s.rows]).mean()),
             "images": s.clean.n_images, "corruptions": len(s.corruptions)}
            for name, s in found.items()]
    return pd.DataFrame(rows).sort_values("mce", na_position="last").reset_index(drop=True)


def ce_frame(found: Mapping[str, Robustness], baseline: str) -> pd.DataFrame:
    """CE per model (rows) and corruption (columns) against ``baseline``."""
    base = found[baseline].errors()
    return pd.DataFrame({name: corruption_errors(s.errors(), base)
                         for name, s in found.items()}).T.rename_axis("model").reset_index()


def ood_frame(reports: Mapping[str, OodReport]) -> pd.DataFrame:
    """One row per model: each score's AUROC, threshold and FPR at 95% TPR."""
    rows = []
    for name, report in reports.items():
        row = {"model": name, "test_images": report.n_in, "unknown_images": report.n_out}
        for s in report.scores:
            row |= {f"{s.name}_auroc": s.auroc, f"{s.name}_threshold": s.threshold,
                    f"{s.name}_fpr95": s.fpr95}
        rows.append(row)
    return pd.DataFrame(rows)


def _percent(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    out = frame.copy()
    for column in columns:
        if column in out:
            out[column] = out[column] * 100
    return out


def _chart(frame: pd.DataFrame, metric: str, title: str, **kw) -> None:
    import plotly.express as px  # a second to import: Predict uses this module without charts
    fig = px.line(frame, x="severity", y=metric, color="model", markers=True, **kw)
    fig.update_layout(title=title, height=kw.get("height", 380), legend_title_text="model")
    fig.update_xaxes(title="severity (0 = clean)", dtick=1)
    st.plotly_chart(fig)


def robustness_tab(entries: Sequence[Entry], *, key: str = "robust") -> None:
    """Compare's Robustness tab for the selected ``entries``."""
    found, reports = sweeps(entries), ood_reports(entries)
    if not found:
        st.info(f"No corruption sweep is stored for the selected models: run `{SWEEP_COMMAND}`.")
    else:
        names = list(found)
        baseline = st.selectbox("mCE baseline", names, key=f"{key}_baseline",
                                help="CE = the model's errors summed over severities divided by "
                                     "the baseline's, per corruption; mCE = their mean.")
        st.subheader("Mean corruption error (lowest first)")
        table = _percent(ranking(found, baseline),
                         ["mce", "clean", "corrupted", "drop"])
        pct = {c: st.column_config.NumberColumn(t, format="%.1f%%") for c, t in (
            ("mce", "mCE"), ("clean", "Clean acc"), ("corrupted", "Corrupted acc"))}
        st.dataframe(table, hide_index=True, key=f"{key}_ranking", column_config={
            **pct, "drop": st.column_config.NumberColumn(
                "Drop (points)", format="%.1f", help="Clean minus mean corrupted accuracy"),
            "clean_ece": st.column_config.NumberColumn("Clean ECE", format="%.3f"),
            "corrupted_ece": st.column_config.NumberColumn("Corrupted ECE", format="%.3f")})
        long = severity_frame(found)
        shown = st.multiselect("Corruptions", list(dict.fromkeys(long["corruption"])),
                               key=f"{key}_corruptions",
                               help="Leave empty to show every stored corruption.")
        if shown:
            long = long[long["corruption"].isin(shown)]
        panels = long["corruption"].nunique()
        _chart(long, "accuracy", "Accuracy against severity, per corruption",
               facet_col="corruption", facet_col_wrap=min(4, panels),
               height=300 * -(-panels // 4))
        left, right = st.columns(2)
        with left:
            import plotly.express as px
            clean = ranking(found, baseline).melt("model", ["clean", "corrupted"],
                                                  var_name="images", value_name="accuracy")
            fig = px.bar(clean, x="model", y="accuracy", color="images", barmode="group",
                         title="Clean against corrupted accuracy (mean over corruptions)")
            st.plotly_chart(fig)
        with right:
            mean = long.groupby(["model", "severity"], as_index=False)["ece"].mean()
            _chart(mean, "ece", "Calibration under shift: ECE against severity")
        with st.expander("CE per corruption"):
            st.dataframe(_percent(ce_frame(found, baseline), list(long["corruption"].unique())),
                         hide_index=True, key=f"{key}_ce")
    st.subheader("Unknown inputs")
    if not reports:
        st.info(f"No OOD scores are stored for the selected models: run `{OOD_COMMAND}`.")
        return
    st.dataframe(ood_frame(reports), hide_index=True, key=f"{key}_ood")
    st.caption("AUROC of telling the test images from non-class images (scikit-image's sample "
               "photos, generated noise and patterns) by the maximum softmax probability (msp) "
               "or the negative energy; the threshold keeps 95% of the test images.")


def ood_thresholds(entries: Sequence[Entry]) -> dict[str, float]:
    """Each entry's maximum-probability threshold from its ``ood.json``, by name."""
    return {name: s.threshold for name, r in ood_reports(entries).items()
            if (s := r.score("msp")) is not None}


def unknown_note(prediction: ImagePrediction, thresholds: Mapping[str, float]) -> Optional[str]:
    """The line Predict shows when models think a photo is none of their classes: models with
    a stored OOD threshold are judged by it; with none, the fixed cut
    (:data:`~fvcore.inference.predict.LOW_CONFIDENCE`) on the best model still applies."""
    answers = prediction.answers
    if not answers:
        return None
    judged = [a for a in answers if a.model in thresholds]
    unknown = [a for a in judged if a.prob < thresholds[a.model]]
    if judged and unknown:
        return ("Probably none of its classes, for " + "; ".join(
            f"{a.model} (best {a.prob:.0%}, below its threshold {thresholds[a.model]:.0%})"
            for a in unknown) + ".")
    if not judged and prediction.low_confidence:
        return (f"Low confidence (best {prediction.confidence:.0%}): the photo may show "
                f"something outside the {len(answers[0].classes)} classes these models know.")
    return None

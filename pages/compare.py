"""Compare: the dashboard over stored cards, training histories and test predictions."""
import streamlit as st

from fvcore import settings
from fvcore.app import (
    access,
    cache,
    charts,
    embedding,
    explanations,
    frames,
    labels,
    robustness,
    sections,
    shell,
)
from fvcore.datasets import folders
from fvcore.evaluation import analysis

sel = shell.selection()
st.title(f"Compare: {sel.dataset or 'no dataset'}")
shell.require_models(sel)

table = frames.best_first(frames.models_table(sel.models,
                                                    cache.latencies(sel.models)))
overview, training, metrics, gallery, label_tab, map_tab, robust, explain = st.tabs(
    ["Overview", "Training curves", "Test metrics", "Misclassified images", "Label issues",
     "Embedding map", "Robustness", "Explanations"])

with overview:
    sections.table(table, key="compare_table")
    left, right = st.columns(2)
    scored = table["accuracy"].notna().any()
    if scored:
        left.plotly_chart(charts.efficiency(table, frames.pareto_front(table, "gflops"),
                                            "gflops", "GFLOPs per image (log scale)",
                                            "Accuracy vs compute: the efficiency frontier"),
                          key="compare_flops")
    else:
        left.info("No test accuracy in these cards yet (still training?): the efficiency charts "
                  "appear once a model has been evaluated.")
    with right:
        if scored and table["latency_ms"].notna().any():
            st.plotly_chart(charts.efficiency(
                table, frames.pareto_front(table, "latency_ms"), "latency_ms",
                "CPU latency per image, ms (log scale)", "Accuracy vs latency"),
                key="compare_latency")
        elif scored:
            st.info("CPU latency has not been measured yet for these models.")
        if table["latency_ms"].isna().any() and st.button(
                "Measure CPU latency", key="compare_measure", icon=":material/timer:",
                help="Loads the selected models and times single-image predictions."):
            if shell.measure_latencies(sel.models):
                st.rerun()

    st.subheader("How each model was trained")
    sections.model_card(sel.models, list(table["model"]), key="compare_card")

with training:
    histories = cache.histories(sel.models)
    long = frames.curves_long(histories, domains=True)   # built once, filtered per view
    if long.empty:
        st.info("None of the selected checkpoints has a history.csv.")
    else:
        pick, scale = st.columns(2, vertical_alignment="bottom")
        per_source = "validation per source"
        options = ["train and validation", "validation", "train"]
        split = pick.radio("Curves", options + ([per_source] if frames.has_domain_curves(
                           histories) else []), horizontal=True, key="curves_split",
                           help="With many models, one split at a time is easier to read. "
                           "Validation per source: the validation accuracy on each dataset "
                           "folder of a model trained on several (e.g. shelves vs web photos).")
        log_y = scale.toggle("Log-scale y axis", key="curves_log")
        if split == per_source:
            long = long[long["split"] != "train"]
        else:
            long = long[~long["split"].str.startswith("validation: ")]
            long = long if split == "train and validation" else long[long["split"] == split]
        left, right = st.columns(2)
        left.plotly_chart(charts.curves(long, "loss", log_y=log_y), key="curves_loss")
        right.plotly_chart(charts.curves(long, "accuracy", log_y=log_y), key="curves_acc")

preds, notes = cache.stored_predictions(sel.models)
with metrics:
    for note in notes:
        st.caption(note)
    preds, domain = sections.test_split(preds, key="compare_domain")
    if preds:
        with shell.guard("test metrics"):
            sections.metrics_panel(preds, sel.models[0].card.groups, key="compare",
                                   dataset=sel.dataset)
    else:
        st.info("No stored test predictions for the selected models.")

with gallery:
    if not preds:
        st.info("No stored test predictions for the selected models.")
    else:
        if domain:
            st.caption(f"Test split: {domain} (chosen on the Test metrics tab)")
        a, b, c = st.columns([2, 3, 2])
        model = a.selectbox("Model", analysis.ranked_predictions(preds), key="gallery_model")
        which = b.selectbox("Show", list(analysis.MISTAKES), key="gallery_which",
                            format_func=analysis.MISTAKES.get, disabled=len(preds) < 2,
                            help="Compared with the other selected models on the test images "
                                 "they share: a model's own blind spots, or the photos no model "
                                 "gets right (hard, ambiguous or mislabelled).")
        limit = c.slider("Images", 6, 60, 18, 6, key="gallery_limit")
        others = {name: p for name, p in preds.items() if name != model}
        wrong = analysis.misclassified(preds[model], limit, others=others, which=which)
        roots = settings.data_roots()
        found = [folders.resolve_image(p, sel.dataset, roots) for p in wrong["path"]]
        if wrong.empty:
            st.success(f"{model} has no mistakes of this kind on the test images.")
        elif not any(found):
            where = access.shown(", ".join(map(str, roots)), keep_local=True)
            st.info(f"Test images not found under {where}: set "
                    f"FVCORE_DATA to the folder holding `{sel.dataset}/`.")
            sections.table(wrong, key="gallery_table")
        else:
            cells = sections.grid(len(wrong), 6)
            for cell, row, path in zip(cells, wrong.itertuples(), found, strict=True):
                with cell:
                    if path:
                        st.image(cache.thumbnail(str(path)), width="stretch")
                    st.caption(f"true **{row.true}** → {row.pred} ({row.prob:.0%}); "
                               f"wrong in {row.wrong_by} of {len(preds)} models")

with label_tab, shell.guard("label issues"):
    labels.view(preds, sel.dataset, domain=domain)

with map_tab, shell.guard("embedding map"):
    embedding.view(sel.models, dataset=sel.dataset, domain=domain)

with robust:
    robustness.robustness_tab(sel.models)

with explain, shell.guard("explanations"):
    explanations.explanations_tab(sel.models)

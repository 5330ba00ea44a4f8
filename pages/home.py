"""Home: what the workbench is, the checkpoints of the chosen dataset, and the ones skipped."""
import streamlit as st

from fvcore import dashboard, panels, webapp

sel = webapp.selection()
st.title("Image-classifier workbench")
st.markdown("Compare image classifiers side by side: upload photos and see every model's answer "
            "(**Predict**), see where each model looks (**Grad-CAM**), browse test metrics, "
            "training curves and significance tests (**Compare**), evaluate on your own labelled "
            "images (**Evaluate**) and follow training runs (**Runs**).")

a, b, c = st.columns(3)
a.metric("Datasets", len({e.card.dataset for e in sel.entries}))
b.metric("Checkpoints", len(sel.entries))
c.metric("Skipped folders", len(sel.problems))

if sel.dataset:
    st.subheader(f"Models trained on {sel.dataset}")
    table = dashboard.models_table(sel.in_dataset, webapp.latencies(sel.in_dataset))
    panels.table(table, key="home_models")
    if table["latency_ms"].isna().any() and st.button(
            "Measure CPU latency", key="home_latency",
            help="Loads every model of this dataset and times single-image predictions."):
        webapp.measure_latencies(sel.in_dataset)
        st.rerun()
else:
    st.info(f"No checkpoints found in `{sel.root}`. Train some with `python -m fvcore zoo ...` "
            "or point the sidebar's *Checkpoints folder* elsewhere.")

if sel.problems:
    st.subheader("Checkpoints that could not be loaded")
    st.warning("\n".join(f"- `{p.path}`: {p.reason}" for p in sel.problems),
               icon=":material/warning:")

st.subheader("Pages")
for spec in webapp.PAGES[1:]:
    st.page_link(spec.path, label=spec.title, icon=spec.icon)

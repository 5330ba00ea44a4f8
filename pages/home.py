"""Home: what the workbench is, the checkpoints of the chosen dataset, and the ones skipped.
Reads cards only: no model is loaded unless latency is asked for."""
import streamlit as st

from fvcore.app import access, cache, frames, sections, shell

COLUMNS = ("model", "arch", "init", "accuracy", "ci_low", "ci_high", "macro_f1",
           "group_accuracy", "params_m", "gflops", "latency_ms", "image_size")

sel = shell.selection()
st.title("Image-classifier workbench")
st.markdown("Compare image classifiers side by side: see every model's answer for your photos, "
            "where each one looks, how they score on the test set, and how they trained.")

if sel.dataset:
    st.subheader(f"{sections.plural(len(sel.in_dataset), 'model')} trained on {sel.dataset}")
    notes = {e.name: frames.unevaluated_note(e) for e in sel.in_dataset}
    notes = {name: note and access.shown(note, keep_local=True) for name, note in notes.items()}
    evaluated = [e for e in sel.in_dataset if notes[e.name] is None]
    table = frames.best_first(frames.models_table(evaluated,
                                                        cache.latencies(evaluated)))
    if evaluated:
        sections.table(table, key="home_models", columns=COLUMNS)
    if len(evaluated) < len(sel.in_dataset):
        st.info("Not in the table yet (no test metrics; the other pages can use their "
                "weights):\n" + "\n".join(f"- **{name}**: {note}" for name, note in
                                          notes.items() if note), icon=":material/hourglass:")
    if sel.in_dataset:
        st.caption("Download a model as ONNX (exported on the first click):")
        sections.onnx_downloads(sel.in_dataset, key="home_onnx")
    others = sorted({e.card.dataset for e in sel.entries} - {sel.dataset})
    if others:
        st.caption(f"Other datasets (switch in the sidebar): {', '.join(others)}")
    if table["latency_ms"].isna().any() and st.button(
            "Measure CPU latency", key="home_latency", icon=":material/timer:",
            help="Loads every model of this dataset and times single-image predictions."):
        if shell.measure_latencies(sel.in_dataset):
            st.rerun()
else:
    st.info(f"No checkpoints found in `{access.shown(str(sel.root), keep_local=True)}`. Train "
            "some with `python -m fvcore zoo ...` or point the sidebar's *Checkpoints folder* "
            "elsewhere.")

if sel.problems:
    st.subheader(f"{sections.plural(len(sel.problems), 'checkpoint folder')} skipped")
    st.warning("\n".join(f"- `{p.path}`: {access.shown(p.reason, sel.root)}"
                         for p in sel.problems),
               icon=":material/warning:")

st.subheader("Pages")
for spec in shell.PAGES[1:]:
    if spec.operator and not access.is_operator():
        st.caption(f"{spec.title}: {spec.about} (for the operator of this server)")
    else:
        st.page_link(spec.path, label=f"**{spec.title}**: {spec.about}", icon=spec.icon)

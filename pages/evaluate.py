"""Evaluate: every selected model on an uploaded zip of labelled images (one folder per class)."""
import tempfile

import streamlit as st

from fvcore.app import limits, sections, shell
from fvcore.datasets.zipdata import describe_skipped, extract_labelled_zip
from fvcore.evaluation import analysis
from fvcore.evaluation.evaluate import predict_samples

sel = shell.selection()
st.title("Evaluate on your images")
shell.require_models(sel)
st.markdown("Upload a **zip of labelled images**: one folder per class, named like the models' "
            "classes (e.g. `Apple/img1.jpg`, `Banana/img2.jpg`; a `test/` wrapper is fine).")

upload = st.file_uploader("Labelled zip", type=["zip"], key="eval_zip")
if upload is None:
    st.stop()
if st.button(f"Evaluate {len(sel.models)} model(s)", key="eval_run", type="primary"):
    with (shell.guard("evaluation"), limits.action("evaluation") as act,
          tempfile.TemporaryDirectory(prefix="fvcore-eval-") as tmp):
        data = extract_labelled_zip(upload.getvalue(), tmp)
        limits.check_images(data.n_images, "evaluation")
        act.charge()
        models = shell.load_models(sel.models)
        bar, preds, unknown = st.progress(0.0, text="Evaluating..."), {}, set()
        for i, model in enumerate(models):
            samples, missing = data.samples(model.entry.card.classes)
            unknown.update(missing)
            if not samples:
                continue
            preds[model.name] = predict_samples(
                model.classifier, samples, root=data.root,
                progress=lambda done, total, i=i, n=model.name: bar.progress(
                    (i + done / total) / len(models), text=f"{n}: {done}/{total} images"))
        bar.empty()
        st.session_state["eval_result"] = {"zip": upload.file_id, "preds": preds,
                                           "models": [e.name for e in sel.models],
                                           "skipped": data.skipped, "unknown": sorted(unknown),
                                           "n_images": data.n_images}

result = st.session_state.get("eval_result")
if not result or result["zip"] != upload.file_id:
    st.stop()
if result["models"] != [e.name for e in sel.models]:
    st.caption("The model selection changed since this evaluation: press *Evaluate* to update.")
if result["skipped"]:
    st.warning(f"{len(result['skipped'])} file(s) skipped:\n"
               + "\n".join(f"- {line}" for line in describe_skipped(result["skipped"])))
if result["unknown"]:
    st.warning("Class folders no model knows (left out): " + ", ".join(result["unknown"]))
preds = result["preds"]
if not preds:
    st.error("No image in the zip belongs to a class the models know.")
    st.stop()
summary = analysis.report_table(analysis.reports(preds, sel.models[0].card.groups))
st.subheader(f"Results on {result['n_images']} images")
sections.table(summary, key="eval_table", titles={"accuracy": "Accuracy"})
with st.container(horizontal=True):
    st.download_button("Metrics (CSV)", summary.to_csv(index=False), "metrics.csv", "text/csv",
                       key="eval_metrics_csv", icon=":material/download:")
    st.download_button("Every prediction (CSV)",
                       analysis.predictions_long(preds).to_csv(index=False), "predictions.csv",
                       "text/csv", key="eval_preds_csv", icon=":material/download:")
with shell.guard("metrics"):
    sections.metrics_panel(preds, sel.models[0].card.groups, key="eval")

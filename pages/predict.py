"""Predict: every selected model on every uploaded photo, side by side, with the ensemble."""
import streamlit as st

from fvcore import dashboard, panels, webapp
from fvcore.inference import ensemble

sel = webapp.selection()
st.title("Predict")
webapp.require_models(sel)

left, right = st.columns([3, 1])
uploads = left.file_uploader("Photos", accept_multiple_files=True, key="predict_upload",
                             help="One or many images (JPEG, PNG, WebP, ...).")
k = right.slider("Top-k", 1, 10, 5, key="predict_k")
camera = right.toggle("Use the camera", key="predict_camera")
files = [(f.name, f.getvalue()) for f in uploads or []]
if camera and (shot := st.camera_input("Take a photo", key="predict_shot")):
    files.append(("camera photo", shot.getvalue()))
samples = webapp.sample_images()
if samples:
    picked = st.multiselect("Sample images", samples, format_func=lambda p: p.name,
                            key="predict_samples")
    files += [(p.name, p.read_bytes()) for p in picked]
if not files:
    st.info("Upload one or more photos to see every model's answer side by side.")
    st.stop()

with webapp.guard("prediction"):
    loaded = {m.name for m in webapp.load_models(sel.models)}
    entries = [e for e in sel.models if e.name in loaded]
    with st.spinner("Predicting..."):
        result = webapp.predict(entries, files)
    for error in result["errors"]:
        st.error(f"{error['image']}: {error['error']}", icon=":material/broken_image:")
    for i, (name, image) in enumerate(result["images"]):
        st.divider()
        top1 = {e.name: e.card.classes[int(result["probs"][e.name][0][i].argmax())]
                for e in entries}
        majority, dissenters = dashboard.agreement(top1)
        pic, summary = st.columns([1, 3])
        pic.image(image, caption=name, width="stretch")
        with summary:
            st.subheader(name)
            if len({tuple(e.card.classes) for e in entries}) == 1 and len(entries) > 1:
                mean = ensemble([result["probs"][e.name][0][i] for e in entries])
                best = dashboard.top_k(entries[0].card.classes, mean, 1).iloc[0]
                group = entries[0].card.group_of(best["label"])
                st.metric("Ensemble (soft vote)", best["label"],
                          f"{best['prob']:.0%}{' · ' + group if group else ''}", delta_color="off")
            if dissenters:
                st.warning("Models disagree: " + "; ".join(
                    f"{n} says **{top1[n]}**" for n in dissenters)
                    + (f" (majority: **{majority}**)" if majority else ""))
            elif len(entries) > 1:
                st.success(f"All {len(entries)} models say **{majority}**.")
        cells = panels.grid(len(entries))
        for cell, entry in zip(cells, entries):
            probs, ms = result["probs"][entry.name]
            with cell:
                panels.prediction_block(entry.name, entry.card.classes, probs[i], ms, k,
                                        groups=entry.card.groups,
                                        dissent=entry.name in dissenters, majority=majority)

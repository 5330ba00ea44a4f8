"""Predict: every selected model on every uploaded photo, side by side, with the ensemble."""
import streamlit as st

from fvcore.app import cache, frames, sections, shell
from fvcore.inference import predict
from fvcore.inference.predict import ensemble

sel = shell.selection()
st.title("Predict")
shell.require_models(sel)

left, right = st.columns([3, 1])
uploads = left.file_uploader("Photos", accept_multiple_files=True, key="predict_upload",
                             help="One or many images (JPEG, PNG, WebP, ...).")
k = right.slider("Top-k", 1, 10, 5, key="predict_k")
camera = right.toggle("Use the camera", key="predict_camera")
files = [(f.name, f.getvalue()) for f in uploads or []]
if camera and (shot := st.camera_input("Take a photo", key="predict_shot")):
    files.append(("camera photo", shot.getvalue()))
if samples := shell.sample_images():
    picked = st.multiselect("Sample images", samples, format_func=lambda p: p.name,
                            key="predict_samples")
    files += [(p.name, p.read_bytes()) for p in picked]
if not files:
    st.info("Upload one or more photos to see every model's answer side by side.")
    st.stop()

with shell.guard("prediction"):
    entries = shell.load_models(sel.models)
    with st.spinner("Predicting..."):
        result = cache.predict(entries, files)
    for error in result["errors"]:  # one line naming the file (the loader's usually does)
        name, message = error["image"], error["error"]
        st.error(message if message.startswith(name) else f"{name}: {message}",
                 icon=":material/broken_image:")
    same_classes = len({tuple(e.card.classes) for e in entries}) == 1
    for i, (name, image) in enumerate(result["images"]):
        st.divider()
        probs = {e.name: result["probs"][e.name][0][i] for e in entries}
        top1 = {e.name: e.card.classes[int(probs[e.name].argmax())] for e in entries}
        majority, dissenters = predict.agreement(top1)
        pic, summary = st.columns([1, 3])
        pic.image(image, width="stretch")
        with summary:
            st.subheader(name)
            if same_classes and len(entries) > 1:
                best = frames.top_k(entries[0].card.classes, ensemble(list(probs.values())), 1)
                label, prob = best["label"][0], best["prob"][0]
                group = entries[0].card.group_of(label)
                st.metric("Ensemble (soft vote)", label,
                          f"{prob:.0%} mean probability" + (f" · {group}" if group else ""),
                          delta_color="off", delta_arrow="off")
            confidence = max(float(p.max()) for p in probs.values())
            if confidence < 0.3:
                st.info(f"Low confidence (best {confidence:.0%}): the photo may show something "
                        f"outside the {len(entries[0].card.classes)} classes these models know.",
                        icon=":material/help:")
            if dissenters:
                st.warning("Models disagree: " + "; ".join(
                    f"{n} says **{top1[n]}**" for n in dissenters)
                    + (f" (the others: **{majority}**)" if majority else ""),
                    icon=":material/call_split:")
            elif len(entries) > 1:
                st.success(f"All {len(entries)} models say **{majority}**.",
                           icon=":material/check_circle:")
        for cell, entry in zip(sections.grid(len(entries)), entries, strict=True):
            with cell:
                sections.prediction_block(entry.name, entry.card.classes, probs[entry.name],
                                        result["probs"][entry.name][1], k,
                                        groups=entry.card.groups,
                                        dissent=entry.name in dissenters, majority=majority)

"""Predict: every selected model on every uploaded photo, side by side, with the ensemble."""
import streamlit as st

from fvcore.app import cache, limits, perturb, robustness, sections, shell

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
choice = perturb.control("predict")
if not files:
    st.info("Upload one or more photos to see every model's answer side by side.")
    st.stop()

with shell.guard("prediction"):
    limits.check_images(len(files))
    models = shell.load_models(sel.models)
    with st.spinner("Predicting..."), limits.action("prediction"):
        run = cache.predict(models, files)
        shifts = perturb.predict_shifts(models, files, run, choice) if choice else []
    thresholds = robustness.ood_thresholds(sel.models)
    for failure in run.failures:
        st.error(failure.message, icon=":material/broken_image:")
    for i, (prediction, image) in enumerate(zip(run.predictions, run.thumbnails, strict=True)):
        st.divider()
        pic, summary = st.columns([1, 3])
        pic.image(image, width="stretch")
        with summary:
            st.subheader(prediction.image)
            if best := prediction.ensemble:
                st.metric("Ensemble (soft vote)", best.label,
                          f"{best.prob:.0%} mean probability"
                          + (f" · {best.group}" if best.group else ""),
                          delta_color="off", delta_arrow="off")
            if note := robustness.unknown_note(prediction, thresholds):
                st.info(note, icon=":material/help:")
            answers = {a.model: a for a in prediction.answers}
            if prediction.dissenters:
                st.warning("Models disagree: " + "; ".join(
                    f"{n} says **{answers[n].label}**" for n in prediction.dissenters)
                    + (f" (the others: **{prediction.majority}**)" if prediction.majority
                       else ""), icon=":material/call_split:")
            elif prediction.unanimous:
                st.success(f"All {len(prediction.answers)} models say **{prediction.majority}**.",
                           icon=":material/check_circle:")
        for cell, answer in zip(sections.grid(len(prediction.answers)), prediction.answers,
                                strict=True):
            with cell:
                sections.prediction_block(answer, k, dissent=answer.model in prediction.dissenters,
                                          majority=prediction.majority,
                                          key=f"predict_topk_{i}_{answer.model}")
        if shifts:
            perturb.shift_section(*shifts[i])

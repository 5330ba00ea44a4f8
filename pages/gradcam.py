"""Grad-CAM: where each selected model looks in one image, side by side, with a faithfulness
score under each heatmap."""
import streamlit as st

from fvcore.app import cache, charts, explanations, limits, perturb, sections, shell
from fvcore.explain.cam import CAM_METHODS, overlay

PREDICTED = "(each model's predicted class)"

sel = shell.selection()
st.title("Grad-CAM")
shell.require_models(sel)

upload = st.file_uploader("Photo", key="cam_upload", help="One image to explain.")
a, b, c, d = st.columns([1, 2, 1, 1])
method = a.selectbox("Method", list(CAM_METHODS), format_func=lambda m: CAM_METHODS[m].label,
                     key="cam_method")
classes = sel.models[0].card.classes
target = b.selectbox("Explain the class", [PREDICTED, *classes], key="cam_target")
alpha = c.slider("Heatmap opacity", 0.0, 1.0, 0.5, 0.05, key="cam_alpha")
score = d.toggle("Faithfulness", value=True, key="cam_score",
                 help="ROAD: how much the explained class's probability drops when the 20% most "
                      "highlighted pixels are removed. Higher = the heatmap marks what the model "
                      "really uses.")
choice = perturb.control("cam")
if upload is None:
    st.info("Upload a photo to see every model's heatmap side by side.")
    st.stop()
if score:
    st.caption("**Faithfulness** (ROAD): how much the explained class's probability drops when "
               "the 20% most highlighted pixels are removed. Higher means the heatmap points at "
               "what the model really uses; near zero or negative means it does not.")

data = upload.getvalue()
if not shell.readable_image(upload.name, data):
    st.stop()
tiles = []
with shell.guard("Grad-CAM"), limits.action("Grad-CAM"):
    models = shell.load_models(sel.models)
    for cell, model in zip(sections.grid(len(models)), models, strict=True):
        with cell, shell.guard(model.name):
            with st.spinner(f"{model.name}..."):
                cam = cache.explain(model, data, None if target == PREDICTED else target,
                                    method, score)
            image = overlay(cam.crop, cam.heatmap, alpha=alpha)
            title = f"{model.name}: {cam.method_label} of {cam.target}"
            verdict = f"predicts {cam.predicted} ({cam.predicted_prob:.0%})"
            faith = ("" if cam.faithfulness is None
                     else f"faithfulness {round(cam.faithfulness, 2) + 0.0:+.2f}")
            st.image(image, caption=title, width="stretch")
            st.markdown(f"{verdict} · {cam.ms:.0f} ms"
                        + (f"  \n{faith} for p({cam.target})" if faith else ""))
            tiles.append((f"{title}\n{verdict}" + (f" · {faith}" if faith else ""), image))
    perturb.cam_section(models, data, choice, target=None if target == PREDICTED else target,
                        method=method, score=score,
                        draw=lambda cam: overlay(cam.crop, cam.heatmap, alpha=alpha))
if tiles:
    st.download_button("Download the grid (PNG)", charts.cam_grid(tiles), "gradcam-grid.png",
                       "image/png", key="cam_download", icon=":material/download:")

if st.toggle("Compare methods", key="cam_compare",
             help="Every selected model (rows) under every CAM method (columns) for this photo."):
    explanations.method_grid(sel.models, data, None if target == PREDICTED else target,
                             alpha=alpha, score=score)

"""Import: a notebook's best_model.pth (a state dict) becomes a checkpoint of a dataset's group,
self-checked against the plain torchvision/timm model, optionally evaluated on its test split."""
import streamlit as st

from fvcore.app import importing, shell
from fvcore.checkpoints.importer import Preprocessing
from fvcore.models.foreign import ACTIVATIONS

sel = shell.selection()
st.title("Import a model")
st.markdown('Save the model in the notebook with `torch.save(model.state_dict(), '
            '"best_model.pth")`, upload that file, and say what it is. It is checked against '
            "the plain torchvision/timm model on three photos before anything is written.")
if "import_done" in st.session_state:
    st.success(st.session_state.pop("import_done"), icon=":material/check_circle:")

upload = st.file_uploader("State dict (.pth)", type=["pth", "pt"], key="import_upload")
arch = st.selectbox("Architecture", importing.arch_choices(), key="import_arch",
                    help="torchvision's key layout is accepted for resnet50, densenet121, vgg16 "
                         "and mobilenet_v3_large, timm's for efficientnet_lite0 and vit.")
other = st.text_input("Or any torchvision/timm model", key="import_arch_other",
                      placeholder="torchvision:efficientnet_b0 or timm:convnext_tiny")
datasets = importing.known_datasets()
source = st.radio("Classes", ["A known dataset", "A text file"], key="import_classes_source",
                  horizontal=True, index=0 if datasets else 1)
dataset = classes_file = None
if source == "A known dataset":
    name = st.selectbox("Dataset", list(datasets), key="import_dataset",
                        help="Its sorted train/ class folders, as ImageFolder numbers them.")
    dataset = datasets.get(name)
else:
    classes_file = st.file_uploader("Class names, one per line", type=["txt"],
                                    key="import_classes_file")
group = st.text_input("Dataset group", value=dataset.name if dataset else "imported",
                      key=f"import_group::{dataset.name if dataset else ''}")
with st.expander("Preprocessing and head"):
    columns = st.columns(2)
    size = columns[0].number_input("Image size (centre crop)", 16, 1024, 224, key="import_size")
    resize = columns[1].number_input("Resize (shorter side)", 16, 2048, 256, key="import_resize")
    mean = columns[0].text_input("Mean", "0.485, 0.456, 0.406", key="import_mean")
    std = columns[1].text_input("Std", "0.229, 0.224, 0.225", key="import_std")
    activation = columns[0].selectbox("Head activation", [*ACTIVATIONS, "none"],
                                      key="import_activation")
    half = columns[1].checkbox("Store float16 weights", key="import_half")
evaluate = dataset is not None and st.checkbox(
    f"Evaluate on {dataset.name}'s test split", key="import_evaluate")

if st.button("Import", key="import_run", type="primary", disabled=upload is None):
    with shell.guard("import"):
        classes = dataset.classes if dataset else importing.classes_from_text(
            classes_file.getvalue() if classes_file else b"", "classes file")
        result = importing.import_upload(
            upload.getvalue(), upload.name, root=sel.root, group=group,
            arch=other.strip() or arch, classes=classes, activation=activation, half=half,
            preprocessing=Preprocessing(int(size), int(resize),
                                        importing.parse_triple(mean, "mean"),
                                        importing.parse_triple(std, "std")))
        message = f"{result}."
        if evaluate:
            bar = st.progress(0.0, text="Evaluating on the test split...")
            full = importing.evaluate_on_test(result.path, dataset, progress=lambda done, n:
                                              bar.progress(done / n, text=f"{done}/{n} images"))
            message += f" Test accuracy {full['accuracy']:.1%} on {full['n_images']} images."
        st.session_state["import_done"] = message
        shell.show_dataset(result.card.dataset)
        st.rerun()

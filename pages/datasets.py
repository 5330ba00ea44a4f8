"""Datasets: the datasets under the data roots, each one's health report before any training,
and adding one (an uploaded zip or a folder on the server; the operator's, in public mode)."""
import streamlit as st

from fvcore.app import health, shell

shell.selection()
st.title("Datasets")
if "datasets_added" in st.session_state:
    message, left_out = st.session_state.pop("datasets_added")
    st.success(message, icon=":material/check_circle:")
    if left_out:
        st.warning(left_out)

datasets = health.known()
if datasets:
    st.dataframe(health.listing(datasets), hide_index=True, key="datasets_table")
    names = [d.name for d in datasets]
    if st.session_state.get("datasets_show") in names:   # just added: its report
        st.session_state["datasets_pick"] = st.session_state.pop("datasets_show")
    name = st.selectbox("Health report of", names, key="datasets_pick")
    with shell.guard("health check"):
        health.show_report(health.report(datasets[names.index(name)]))
else:
    st.info("No datasets under the data roots yet: add one below.")

st.subheader("Add a dataset")
shell.require_operator("Adding a dataset")
st.markdown("A zip of **class folders** (`Apple/img1.jpg`, ...; validation and test are carved "
            "from them) or of **`train/`, `validation/`, `test/`** each with class folders. "
            "It is stored under the first data root with its name.")
source = st.radio("From", ["Upload a zip", "A folder on the server"], key="datasets_source",
                  horizontal=True)
new = st.text_input("Name", key="datasets_name", placeholder="my-produce")
replace = st.checkbox("Replace a dataset of this name", key="datasets_replace")
if source == "Upload a zip":
    upload = st.file_uploader("Dataset zip", type=["zip"], key="datasets_zip")
    ready, folder, copy = upload is not None, None, True
else:
    folder = st.text_input("Folder on the server", key="datasets_folder")
    copy = st.radio("How", ["Copy its images", "Reference it (a link)"], key="datasets_how",
                    horizontal=True) == "Copy its images"
    upload, ready = None, bool(folder.strip())
if st.button("Add", key="datasets_add", type="primary", disabled=not (ready and new.strip())):
    with shell.guard("adding the dataset"), st.spinner("Adding..."):
        added = health.add(name=new, replace=replace, folder=folder, copy=copy,
                           data=upload.getvalue() if upload is not None else None)
        st.session_state["datasets_added"] = health.added_message(added)
        st.session_state["datasets_show"] = added.name
        st.rerun()

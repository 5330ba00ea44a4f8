"""Train: queue training jobs on a dataset (Quick, Fine-tune or From scratch, one job per
architecture) and follow them -- progress, ETA, live curves, cancel. Jobs run in the background
from a queue in the run registry: they outlive this page, a closed browser and a server restart."""
import streamlit as st

from fvcore.app import access, shell, training

shell.selection()
st.title("Train")
db = shell.runs_db_default()
training.resume_queue(db)
if access.is_operator():
    with st.container(border=True):
        st.subheader("New training job")
        training.job_form(db)
else:
    st.info(access.refusal("Training"), icon=":material/lock:")
st.subheader("Queue")
with shell.guard("reading the queue"):
    training.queue_view(db)

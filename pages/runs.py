"""Runs: the SQLite run registry, with live curves of a running training."""
import time

import streamlit as st

from fvcore.app import access, frames, sections, shell
from fvcore.training.runs import list_runs, run_epochs

shell.selection()  # the shared sidebar
st.title("Training runs")
db = shell.runs_db_default()
if not access.public():   # a public server reads the operator's registry only
    db = st.text_input("Run registry", value=db, key="runs_db",
                       help="The SQLite file `python -m fvcore train` records runs in.")
with shell.guard("reading the run registry"):
    runs = list_runs(db)
    if not runs:
        st.info(f"No runs recorded in `{access.shown(db, keep_local=True)}` yet.")
        st.stop()
    table = frames.runs_frame(runs, time.time())
    for column in ("out", "message"):
        table[column] = [access.shown(v, keep_local=True) if isinstance(v, str) else v
                         for v in table[column]]
    sections.table(table, key="runs_table")
    by_id = {r["id"]: r for r in runs}
    run_id = st.selectbox("Run", list(by_id), key="runs_pick",
                          format_func=lambda i: f"{i} · {by_id[i]['arch']} on "
                                                f"{by_id[i]['dataset']} · {by_id[i]['status']}")
    running = by_id[run_id]["status"] == "running"
    live = st.toggle("Live update (every 5 s)", value=running, key="runs_live",
                     disabled=not running)

    @st.fragment(run_every=5 if live and running else None)
    def curves() -> None:
        """The selected run's curves; re-drawn every few seconds while it is running."""
        epochs = run_epochs(db, run_id)
        if not epochs:
            st.info("No finished epoch yet.")
            return
        last = epochs[-1]
        a, b, c = st.columns(3)
        a.metric("Epochs done", len(epochs))
        b.metric("Best validation accuracy", f"{max(e['val_acc'] or 0 for e in epochs):.1%}")
        c.metric("Images / s (last epoch)", f"{last['images_per_s'] or 0:.0f}")
        sections.epoch_curves(run_id, epochs, key="runs")

    curves()
    with st.expander("Arguments and outcome"):
        st.json(access.shown_value({"args": by_id[run_id]["args"],
                                    "final": by_id[run_id]["final"],
                                    "message": by_id[run_id]["message"]}))

"""The Train page's parts: the new-job form (dataset, architectures, preset, epochs, image size,
processes; an estimate from a measured step) and the queue (every job's status, progress and ETA;
the chosen job's live curves; cancel). Jobs run in the background: :mod:`fvcore.training.jobs`."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd
import streamlit as st

from fvcore import settings
from fvcore.app import access, health, sections, shell
from fvcore.datasets.store import DatasetInfo
from fvcore.errors import FvError
from fvcore.training import jobs
from fvcore.training.jobs import Job
from fvcore.training.plans import PLANS, JobPlan, estimate, plan_job
from fvcore.training.progress import job_progress
from fvcore.training.worker import ensure_worker

NOTICE = "train_notice"
"""Session key of the lines the last submit left for the next run."""


def resume_queue(db: str) -> None:
    """Start the queue's worker when jobs wait and none runs (after a server restart, say)."""
    try:
        if ensure_worker(db, slots=int(st.session_state.get("train_slots", 1))):
            st.toast("Started the training worker for the waiting jobs.")
    except (OSError, FvError) as exc:
        st.error(f"The training queue could not start: {exc}", icon=":material/error:")


def _plans(preset: str, archs: Sequence[str], info: DatasetInfo, epochs: int,
           size: Optional[int]) -> list[JobPlan]:
    return [plan_job(preset, arch, info.path, settings.checkpoints_root(), dataset=info.name,
                     epochs=epochs, image_size=size) for arch in archs]


def job_form(db: str) -> None:
    """Pick a dataset, architectures, a preset and its knobs; estimate; queue the jobs."""
    for kind, line in st.session_state.pop(NOTICE, []):
        (st.success if kind == "ok" else st.error)(line)
    datasets = health.known()
    if not datasets:
        st.info("No datasets under the data roots: add one on the Datasets page.")
        return
    names = [d.name for d in datasets]
    info = datasets[names.index(st.selectbox("Dataset", names, key="train_dataset"))]
    with shell.guard("health check"):
        report = health.report(info)
        if report.blocking:
            st.error(f"{info.name} {report.verdict()}", icon=":material/block:")
            return
        st.caption(report.verdict())
    preset = st.radio("Preset", list(PLANS), key="train_preset", horizontal=True,
                      format_func=lambda p: PLANS[p].label)
    plan = PLANS[preset]
    st.caption(plan.about)
    allowed = plan.allowed()
    archs = st.multiselect("Architectures", allowed, default=allowed[:1] if plan.archs else [],
                           key=f"train_archs_{preset}")
    a, b, c, d = st.columns(4)
    epochs = a.number_input("Epochs", 1, 500, int(plan.knobs["epochs"]),
                            key=f"train_epochs_{preset}")
    size = b.number_input("Image size (px)", 32, 1024, value=None, step=32,
                          key=f"train_size_{preset}", placeholder="each model's default")
    nproc = c.number_input("Processes (torchrun)", 1, max(1, os.cpu_count() or 1), 1,
                           key="train_nproc", help="Data-parallel processes per job: gloo on "
                           "CPU, NCCL on GPUs; the job's CPU threads are split between them.")
    d.number_input("Jobs at once", 1, 8, 1, key="train_slots",
                   help="Jobs the worker runs together, with the CPU threads split between "
                        "them (used when the worker starts).")
    left, right = st.columns([1, 4])
    if left.button("Estimate time", key="train_estimate", disabled=not archs):
        with shell.guard("estimating"), st.spinner("Measuring one step of each model..."):
            rows, counts = [], report.split_sizes
            for job in _plans(preset, archs, info, int(epochs), size):
                got = estimate(job, counts, len(report.classes))
                rows.append({"model": job.arch, "estimate": got.text, "basis": got.basis})
            st.dataframe(pd.DataFrame(rows), hide_index=True, key="train_estimates")
    if right.button(f"Queue {len(archs) or ''} job(s)", key="train_submit", type="primary",
                    disabled=not archs):
        st.session_state[NOTICE] = submit_all(db, preset, archs, info, int(epochs), size,
                                              int(nproc))
        st.rerun()


def submit_all(db: str, preset: str, archs: Sequence[str], info: DatasetInfo, epochs: int,
               size: Optional[int], nproc: int) -> list[tuple[str, str]]:
    """Queue one job per architecture and start the worker: one line per job (queued, or why
    it was refused)."""
    lines = []
    for arch in archs:
        try:
            job = _plans(preset, [arch], info, epochs, size)[0]
            got = jobs.submit(db, dataset=job.dataset, arch=job.arch, preset=job.preset,
                              out=job.out, argv=job.argv, epochs=job.epochs, nproc=nproc)
            lines.append(("ok", f"Queued {got.label}."))
        except (FvError, OSError) as exc:
            lines.append(("error", f"{arch}: {access.shown(str(exc))}"))
    if any(kind == "ok" for kind, _ in lines):
        ensure_worker(db, slots=int(st.session_state.get("train_slots", 1)))
    return lines


def jobs_frame(db: str, listed: Sequence[Job]) -> pd.DataFrame:
    """The queue as a table: one row per job, newest first, with progress and ETA."""
    rows = []
    for job in listed:
        prog = job_progress(db, job)
        rows.append({"job": job.id, "model": job.arch, "preset": PLANS[job.preset].label
                     if job.preset in PLANS else job.preset, "dataset": job.dataset,
                     "status": job.status, "progress": prog.fraction,
                     "epochs": f"{prog.done}/{prog.planned}",
                     "best_val_acc": _number(prog.best_val_acc),
                     "eta_min": _number(None if prog.eta_seconds is None
                                        else prog.eta_seconds / 60),
                     "message": access.shown(job.message)})
    return pd.DataFrame(rows)


def queue_view(db: str) -> None:
    """Every job of the queue, re-drawn every 3 s while one is active."""
    listed = jobs.list_jobs(db)
    if not listed:
        st.info("No training jobs yet.")
        return
    live = any(j.active for j in listed)

    @st.fragment(run_every=3 if live else None)
    def view() -> None:
        current = jobs.list_jobs(db)
        st.dataframe(jobs_frame(db, current), hide_index=True, key="train_queue", column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0, max_value=1),
            "best_val_acc": st.column_config.NumberColumn("best val acc", format="percent"),
            "eta_min": st.column_config.NumberColumn("ETA (min)", format="%.1f")})
        by_id = {j.id: j for j in current}
        chosen = st.selectbox("Job", list(by_id), key="train_job",
                              format_func=lambda i: f"{i} · {by_id[i].label}")
        job_detail(db, by_id[chosen])
        if live and not any(j.active for j in current):
            st.rerun()   # the last job ended: the whole page again (new model in the sidebar)

    view()


def job_detail(db: str, job: Job) -> None:
    """One job: its progress bar and ETA, the outcome line, live curves and a cancel button."""
    prog = job_progress(db, job)
    if job.active:
        st.progress(prog.fraction, text=f"{job.status}: {prog.text}")
        if access.is_operator() and st.button("Cancel this job", key=f"train_cancel_{job.id}"):
            with shell.guard("cancelling"):
                jobs.cancel(db, job.id)
                st.rerun()
    elif job.status == "finished":
        st.success(f"Finished: {prog.text}. The model is `{Path(job.out).name}` in the "
                   f"{job.dataset} group on every page.", icon=":material/check_circle:")
    else:
        st.error(f"{job.status}: {access.shown(job.message) or 'no reason recorded'}",
                 icon=":material/error:")
    if prog.epochs:
        sections.epoch_curves(job.arch, prog.epochs, key=f"train_{job.id}")
    elif job.status == "queued":
        st.caption("Waiting for the worker (jobs run one at a time unless *Jobs at once* says "
                   "more).")
    elif job.active:
        first = " (a Quick job computes its features first)" if job.preset == "quick" else ""
        st.caption(f"No finished epoch yet{first}; started "
                   f"{(time.time() - (job.started or time.time())) / 60:.0f} min ago.")


def _number(value: Optional[float]) -> float:
    """A table cell: NaN (shown empty) for no value."""
    return float("nan") if value is None else float(value)

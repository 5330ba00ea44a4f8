"""The training queue: jobs in the SQLite run registry, run one (or N) at a time as
``python -m fvcore train --resume`` processes by a detached worker (:mod:`fvcore.training.worker`).

No new service: the queue is a table beside the runs, so every user of one server sees the same
jobs, and a job outlives the page that submitted it. A job whose worker died (a killed server, a
reboot) goes back to the queue and resumes from its per-epoch state; a job whose process failed
keeps its one-line reason. This module imports no torch: the pages read it cheaply.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import time
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from fvcore.errors import FvError
from fvcore.training.runs import alive, connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    dataset TEXT NOT NULL,
    arch TEXT NOT NULL,
    preset TEXT NOT NULL,
    out TEXT NOT NULL,
    argv TEXT NOT NULL,
    epochs INTEGER NOT NULL,
    nproc INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL,
    host TEXT NOT NULL DEFAULT '',
    pid INTEGER,
    worker INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    started REAL,
    ended REAL,
    message TEXT NOT NULL DEFAULT ''
);
"""
STATUSES = ("queued", "running", "cancelling", "finished", "failed", "cancelled")
ACTIVE = ("queued", "running", "cancelling")
MAX_ATTEMPTS = 3
"""A job whose worker died this many times is failed instead of queued again."""


@dataclass(frozen=True)
class Job:
    """One queued, running or ended training job."""

    id: str
    created: float
    dataset: str
    arch: str
    preset: str
    out: str
    argv: tuple[str, ...]
    epochs: int
    nproc: int
    status: str
    host: str
    pid: Optional[int]
    worker: Optional[int]
    attempts: int
    started: Optional[float]
    ended: Optional[float]
    message: str

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def label(self) -> str:
        return f"{self.arch} ({self.preset}) on {self.dataset}"


def open_queue(db: str | Path) -> sqlite3.Connection:
    """The registry with the jobs table (created on first use)."""
    con = connect(db)
    con.executescript(SCHEMA)
    return con


def _job(row: sqlite3.Row) -> Job:
    data = dict(row)
    data["argv"] = tuple(json.loads(data["argv"]))
    return Job(**data)


def log_path(db: str | Path, job_id: str) -> Path:
    """Where the job's process writes its output: ``<db stem>-jobs/<id>.log`` beside the db."""
    db = Path(db)
    return db.parent / f"{db.stem}-jobs" / f"{job_id}.log"


def submit(db: str | Path, *, dataset: str, arch: str, preset: str, out: str | Path,
           argv: Sequence[str], epochs: int, nproc: int = 1) -> Job:
    """Queue a job; a job already queued or running into the same folder is refused, and so is a
    folder that already holds a finished model (delete it first, or train into another)."""
    out = str(Path(out).resolve())
    if nproc < 1:
        raise FvError("a job needs at least one process")
    with closing(open_queue(db)) as con, con:
        con.execute("BEGIN IMMEDIATE")
        same = con.execute("SELECT * FROM jobs WHERE out=? AND status IN (?, ?, ?)",
                           (out, *ACTIVE)).fetchone()
        if same is not None:
            raise FvError(f"refused: job {same['id']} already trains {same['arch']} "
                          f"({same['preset']}) on {same['dataset']} into the same folder "
                          f"({same['status']})")
        card = Path(out) / "card.json"
        if card.is_file() and not (Path(out) / ".train").is_dir():
            raise FvError(f"refused: {Path(out).name} already holds a trained model of "
                          f"{dataset}; delete that folder first, or pick another preset")
        job_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        con.execute("INSERT INTO jobs (id, created, dataset, arch, preset, out, argv, epochs,"
                    " nproc, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued')",
                    (job_id, time.time(), dataset, arch, preset, out, json.dumps(list(argv)),
                     epochs, nproc))
    return get_job(db, job_id)


def get_job(db: str | Path, job_id: str) -> Job:
    """One job by id."""
    with closing(open_queue(db)) as con:
        row = con.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
    if row is None:
        raise FvError(f"no job {job_id!r} in {Path(db).name}")
    return _job(row)


def list_jobs(db: str | Path) -> list[Job]:
    """Every job, newest first, after :func:`recover` (a dead worker's jobs are queued again)."""
    if not Path(db).is_file():
        return []
    recover(db)
    with closing(open_queue(db)) as con:
        rows = con.execute("SELECT * FROM jobs ORDER BY created DESC").fetchall()
    return [_job(r) for r in rows]


def pending(db: str | Path) -> bool:
    """Whether any job waits for, or is held by, a worker."""
    return any(j.active for j in list_jobs(db))


def recover(db: str | Path) -> list[str]:
    """Jobs held by a worker that is gone (killed with the server, or the machine restarted):
    a cancel request becomes cancelled, anything else goes back to the queue (to resume from its
    per-epoch state) -- or fails after :data:`MAX_ATTEMPTS`. A training process the dead worker
    left running is stopped first, so two processes never write one folder. Returns the ids."""
    host = socket.gethostname()
    with closing(open_queue(db)) as con, con:
        con.execute("BEGIN IMMEDIATE")
        rows = con.execute("SELECT * FROM jobs WHERE status IN ('running', 'cancelling') AND "
                           "host=?", (host,)).fetchall()
        orphans = [r for r in rows if not alive(r["worker"])]
        for r in orphans:
            stop_process(r["pid"], hard=True)
            if r["status"] == "cancelling":
                status, message = "cancelled", "cancelled"
            elif r["attempts"] >= MAX_ATTEMPTS:
                status, message = "failed", (f"its worker ended {r['attempts']} times; see "
                                             f"{log_path(db, r['id']).name}")
            else:
                status, message = "queued", "its worker ended; resumes from the last epoch"
            con.execute("UPDATE jobs SET status=?, message=?, pid=NULL, worker=NULL, ended=? "
                        "WHERE id=?", (status, message,
                                       None if status == "queued" else time.time(), r["id"]))
    return [r["id"] for r in orphans]


def stop_process(pid: Optional[int], *, hard: bool = False, wait: float = 10.0) -> None:
    """Stop a job's process group: SIGINT first (the trainer records 'interrupted' and keeps its
    state), SIGKILL after ``wait`` seconds or at once with ``hard``."""
    if not alive(pid):
        return
    for sig in ((signal.SIGKILL,) if hard else (signal.SIGINT, signal.SIGKILL)):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
        deadline = time.time() + wait
        while time.time() < deadline and alive(pid):
            time.sleep(0.1)
        if not alive(pid):
            return


def cancel(db: str | Path, job_id: str) -> Job:
    """Cancel a job: a queued one at once; a running one is asked to stop (its worker records it
    as cancelled; its best checkpoint so far stays)."""
    job = get_job(db, job_id)
    if not job.active:
        raise FvError(f"job {job_id} already {job.status}")
    with closing(open_queue(db)) as con, con:
        if job.status == "queued":
            con.execute("UPDATE jobs SET status='cancelled', message='cancelled before it "
                        "started', ended=? WHERE id=? AND status='queued'", (time.time(), job_id))
        else:
            con.execute("UPDATE jobs SET status='cancelling' WHERE id=?", (job_id,))
    if job.status != "queued" and job.pid:
        stop_process(job.pid, wait=0.0 if not alive(job.worker) else 0.5)
    recover(db)
    return get_job(db, job_id)


def claim(db: str | Path, worker: int) -> Optional[Job]:
    """Take the oldest queued job for ``worker`` (atomic: two workers never take one job)."""
    with closing(open_queue(db)) as con, con:
        con.execute("BEGIN IMMEDIATE")
        row = con.execute("SELECT * FROM jobs WHERE status='queued' ORDER BY created "
                          "LIMIT 1").fetchone()
        if row is None:
            return None
        con.execute("UPDATE jobs SET status='running', host=?, worker=?, pid=NULL, "
                    "attempts=attempts+1, started=COALESCE(started, ?), message='' WHERE id=?",
                    (socket.gethostname(), worker, time.time(), row["id"]))
    return get_job(db, row["id"])


def set_pid(db: str | Path, job_id: str, pid: int) -> None:
    """Record the training process of a running job."""
    with closing(open_queue(db)) as con, con:
        con.execute("UPDATE jobs SET pid=? WHERE id=?", (pid, job_id))


def finish(db: str | Path, job_id: str, status: str, message: str = "") -> None:
    """Record how a job ended (a cancel request wins over a failure it caused)."""
    if status not in STATUSES or status in ACTIVE:
        raise ValueError(f"an ended job's status is one of {STATUSES[3:]}")
    with closing(open_queue(db)) as con, con:
        row = con.execute("SELECT status FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is not None and row["status"] == "cancelling" and status != "finished":
            status, message = "cancelled", "cancelled while training (best weights so far kept)"
        con.execute("UPDATE jobs SET status=?, message=?, pid=NULL, worker=NULL, ended=? "
                    "WHERE id=?", (status, message[:500], time.time(), job_id))

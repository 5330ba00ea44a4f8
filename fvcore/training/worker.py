"""The queue's worker: one detached process per run registry (``python -m fvcore jobs work``) that
starts queued jobs as ``python -m fvcore train --resume`` processes -- one at a time, or ``slots``
at once with the CPU threads split between them -- and records how each ended.

:func:`ensure_worker` starts it when jobs wait and none runs (the Train page calls it on every
visit, so a restarted server picks its queue up again); a lock file beside the database keeps it
single. It leaves when the queue has been empty for ``idle`` seconds. Imports no torch.
"""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Optional

from fvcore import settings
from fvcore.training import jobs
from fvcore.training.jobs import Job


def lock_path(db: str | Path) -> Path:
    """The worker's lock file, beside the database."""
    return Path(str(db) + ".worker.lock")


def _try_lock(db: str | Path) -> Optional[IO[str]]:
    """The worker lock, held until the returned file is closed (None: another worker has it)."""
    path = lock_path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 -- held for the worker's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def worker_running(db: str | Path) -> bool:
    """Whether a worker holds this registry's lock."""
    handle = _try_lock(db)
    if handle is None:
        return True
    handle.close()
    return False


def ensure_worker(db: str | Path, *, slots: int = 1) -> bool:
    """Start a detached worker when jobs wait and no worker runs; True when one was started.
    The lock is taken here and handed to the worker process, so a second call while the first
    worker is still starting up finds it taken."""
    if not Path(db).is_file() or not jobs.pending(db):
        return False
    lock = _try_lock(db)
    if lock is None:
        return False
    log = jobs.log_path(db, "worker")
    log.parent.mkdir(parents=True, exist_ok=True)
    with lock, open(log, "ab") as out:
        subprocess.Popen([sys.executable, "-m", "fvcore", "jobs", "work", "--runs-db", str(db),
                          "--slots", str(slots), "--lock-fd", str(lock.fileno())],
                         cwd=settings.REPO, env=_env(db, None), stdin=subprocess.DEVNULL,
                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                         pass_fds=(lock.fileno(),))
    return True


def _env(db: str | Path, threads: Optional[int]) -> dict[str, str]:
    env = {**os.environ, settings.ENV_RUNS_DB: str(Path(db).resolve()),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(settings.REPO),
                                                       os.environ.get("PYTHONPATH")]))}
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def command(job: Job) -> list[str]:
    """The job's process: ``python -m fvcore train ... --resume`` (under ``torchrun`` with
    several processes)."""
    train = ["-m", "fvcore", "train", *job.argv, "--resume"]
    if job.nproc == 1:
        return [sys.executable, *train]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={job.nproc}", *train]


@dataclass
class _Running:
    job: Job
    process: subprocess.Popen


def _start(db: str | Path, job: Job, threads: int) -> _Running:
    log = jobs.log_path(db, job.id)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"\n== attempt {job.attempts}: {' '.join(command(job))}\n".encode())
        out.flush()
        process = subprocess.Popen(command(job), cwd=settings.REPO,
                                   env=_env(db, max(1, threads // job.nproc)),
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    jobs.set_pid(db, job.id, process.pid)
    return _Running(job, process)


def last_line(path: Path) -> str:
    """The last non-empty line of a log (its tail only is read)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 4096))
            lines = [ln.strip() for ln in fh.read().decode("utf-8", "replace").splitlines()]
    except OSError:
        return ""
    return next((ln for ln in reversed(lines) if ln), "")


def _outcome(db: str | Path, running: _Running, code: int) -> tuple[str, str]:
    out = Path(running.job.out)
    if code == 0 and (out / "card.json").is_file() and not (out / ".train").is_dir():
        return "finished", ""
    if code == 0:
        return "failed", "the process ended without a finished model"
    line = last_line(jobs.log_path(db, running.job.id))
    return "failed", f"exit status {code}: {line}" if line else f"exit status {code}"


def work(db: str | Path, *, slots: int = 1, idle: float = 5.0, poll: float = 0.5,
         lock_fd: Optional[int] = None) -> int:
    """Run the queue until it has been empty for ``idle`` seconds; returns the jobs it ended
    (0 at once when another worker holds the lock). The CPU threads (``OMP_NUM_THREADS`` when
    set, else every core) are split between the ``slots`` jobs. ``lock_fd`` is the lock that
    :func:`ensure_worker` took and handed over."""
    lock = _try_lock(db) if lock_fd is None else open(lock_fd, "a+", encoding="utf-8")
    if lock is None:
        print("another worker serves this queue", file=sys.stderr)
        return 0
    total = int(os.environ.get("OMP_NUM_THREADS") or 0) or os.cpu_count() or 1
    threads = max(1, total // max(1, slots))
    running: list[_Running] = []
    ended, quiet_since = 0, time.time()
    try:
        while True:
            jobs.recover(db)
            while len(running) < slots and (job := jobs.claim(db, os.getpid())) is not None:
                running.append(_start(db, job, threads))
            for r in list(running):
                code = r.process.poll()
                if code is not None:
                    jobs.finish(db, r.job.id, *_outcome(db, r, code))
                    running.remove(r)
                    ended += 1
            if running or jobs.pending(db):
                quiet_since = time.time()
            elif time.time() - quiet_since > idle:
                return ended
            time.sleep(poll)
    finally:
        for r in running:   # the worker is stopping (SIGTERM, an error): its jobs resume later
            jobs.stop_process(r.process.pid)
        lock.close()

"""The ``jobs`` subcommand: the training queue the Train page fills -- submit a job, list and
cancel jobs, and ``jobs work``, the detached worker that runs them (argparse stays here and in
:mod:`fvcore.cli.parser`)."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from fvcore import settings
from fvcore.datasets.store import describe
from fvcore.errors import FvError
from fvcore.training import jobs
from fvcore.training.plans import PLANS, estimate, plan_job
from fvcore.training.worker import ensure_worker, work


def cmd_jobs(args: argparse.Namespace) -> int:
    """The training queue: submit, list, cancel, or serve it (``work``)."""
    db = args.runs_db
    if args.action == "work":
        ended = work(db, slots=args.slots, idle=args.idle, lock_fd=args.lock_fd)
        print(f"worker done: {ended} job(s) ended")
        return 0
    if args.action == "submit":
        return _submit(args, db)
    if args.action == "cancel":
        if not args.job:
            raise FvError("jobs cancel needs a job id (see: python -m fvcore jobs list)")
        job = jobs.cancel(db, args.job)
        print(f"{job.id}: {job.status}")
        return 0
    listed = jobs.list_jobs(db)
    if args.json:
        print(json.dumps([{**j.__dict__, "argv": list(j.argv)} for j in listed], indent=1))
        return 0
    for job in listed:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.created))
        print(f"{job.id}  {when}  {job.status:<10} {job.label}"
              + (f"  -- {job.message}" if job.message else ""))
    if not listed:
        print("no jobs")
    return 0


def _submit(args: argparse.Namespace, db: str) -> int:
    if not args.data or not args.arch:
        raise FvError("jobs submit needs --data DIR and --arch NAME")
    info = describe(Path(args.data))
    job = plan_job(args.preset, args.arch, info.path, args.checkpoints, dataset=info.name,
                   epochs=args.epochs, image_size=args.image_size)
    if args.estimate:
        counts = {split: n for split, n in info.counts.items()}
        print(f"estimate: {estimate(job, counts, len(info.classes)).text}")
    queued = jobs.submit(db, dataset=job.dataset, arch=job.arch, preset=job.preset,
                         out=job.out, argv=job.argv, epochs=job.epochs, nproc=args.nproc)
    print(f"queued {queued.id}: {queued.label} -> {job.out}")
    if not args.no_worker and ensure_worker(db, slots=args.slots):
        print("started a worker")
    return 0


def add_parsers(add) -> None:
    """The ``jobs`` subcommand, added with the parser's ``add``."""
    p = add("jobs", cmd_jobs)
    p.add_argument("action", nargs="?", default="list",
                   choices=("list", "submit", "cancel", "work"))
    p.add_argument("job", nargs="?", help="the job id to cancel")
    p.add_argument("--runs-db", default=str(settings.runs_db()))
    p.add_argument("--data", help="submit: the dataset folder")
    p.add_argument("--arch", help="submit: the architecture")
    p.add_argument("--preset", default="quick", choices=tuple(PLANS))
    p.add_argument("--epochs", type=int)
    p.add_argument("--image-size", type=int)
    p.add_argument("--nproc", type=int, default=1,
                   help="submit: training processes under torchrun (default 1)")
    p.add_argument("--checkpoints", default=str(settings.checkpoints_root()))
    p.add_argument("--estimate", action="store_true", help="submit: print the time estimate")
    p.add_argument("--no-worker", action="store_true", help="submit: only queue the job")
    p.add_argument("--slots", type=int, default=1,
                   help="jobs run at once, CPU threads split between them (default 1)")
    p.add_argument("--idle", type=float, default=5.0,
                   help="work: seconds of empty queue before the worker leaves")
    p.add_argument("--json", action="store_true")
    p.add_argument("--lock-fd", type=int, help=argparse.SUPPRESS)

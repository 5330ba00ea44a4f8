"""How far a queued job has got: its run in the registry (the run writing the job's folder),
epochs done of those planned, the best validation accuracy and an ETA from the epochs' measured
times. Imports no torch."""
from __future__ import annotations

import statistics
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from fvcore.training.jobs import Job
from fvcore.training.runs import connect, run_epochs


@dataclass(frozen=True)
class JobProgress:
    """A job's progress: ``fraction`` of its planned epochs done and an ETA in seconds (None
    before the first epoch ends, or once the job has ended)."""

    run_id: Optional[str]
    done: int
    planned: int
    best_val_acc: Optional[float]
    eta_seconds: Optional[float]
    epochs: tuple[dict[str, Any], ...]

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.planned) if self.planned else 0.0

    @property
    def text(self) -> str:
        """One line: epochs done, best validation accuracy, time left."""
        parts = [f"epoch {self.done}/{self.planned}"]
        if self.best_val_acc is not None:
            parts.append(f"best validation accuracy {self.best_val_acc:.1%}")
        if self.eta_seconds is not None:
            parts.append(f"about {_duration(self.eta_seconds)} left")
        return " · ".join(parts)


def _duration(seconds: float) -> str:
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def job_progress(db: str | Path, job: Job) -> JobProgress:
    """The progress of ``job``, read from the run registry (nothing recorded yet: 0 epochs)."""
    epochs: list[dict[str, Any]] = []
    run_id = None
    if Path(db).is_file():
        with closing(connect(db)) as con:
            row = con.execute("SELECT id FROM runs WHERE out=? AND started>=? ORDER BY started "
                              "DESC LIMIT 1", (job.out, job.created - 1)).fetchone()
            run_id = row["id"] if row is not None else None
        if run_id is not None:
            epochs = run_epochs(db, run_id)
    done = len(epochs)
    accs = [e["val_acc"] for e in epochs if e.get("val_acc") is not None]
    times = [e["seconds"] for e in epochs if e.get("seconds")]
    eta = None
    if job.active and times and done < job.epochs:
        eta = statistics.median(times[-5:]) * (job.epochs - done)
    return JobProgress(run_id, done, job.epochs, max(accs) if accs else None, eta, tuple(epochs))

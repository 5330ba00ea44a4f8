"""The resume state of a training run: how far it got (:class:`Progress`) plus the model,
optimizer, schedule and random-generator states, saved atomically to ``out/.train/last.pt`` after
every epoch and deleted when the run finishes.

The saved dict keeps one format (:data:`STATE_KEYS`, counters as 0-d tensors) so that a run
interrupted under an earlier version resumes under this one; it is read with
``torch.load(weights_only=True)``, which unpickles tensors and plain containers only.
"""
from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from fvcore.checkpoints.catalog import TRAIN_STATE
from fvcore.checkpoints.folder import atomic_write
from fvcore.errors import FvError
from fvcore.training.steps import mean_source_accuracy

STATE = Path(TRAIN_STATE) / "last.pt"
"""The resume state's path inside a run's output folder."""

STATE_KEYS = ("model", "optimizer", "scheduler", "epoch", "best_loss", "bad_epochs", "history",
              "run_id", "elapsed", "rng_torch", "rng_numpy", "rng_python")
"""The keys of the saved dict, in the order they are written."""

SELECT_BY = ("val_loss", "source_accuracy")
"""What picks the best epoch and drives early stopping (``--select-by``): the validation loss, or
the mean of the validation accuracies of the combined sources (each source weighs the same, as in
WiSE-FT's choice; the plain validation accuracy for one folder)."""


def check_select_by(select_by: str) -> None:
    """A clear one-line error for an unknown ``--select-by``."""
    if select_by not in SELECT_BY:
        raise FvError(f"unknown --select-by {select_by!r}; choose one of {', '.join(SELECT_BY)}")


def selection_value(row: dict[str, Any], select_by: str) -> float:
    """The epoch's score under ``select_by``, lower is better (an accuracy is negated)."""
    check_select_by(select_by)
    if select_by == "val_loss":
        return float(row["val_loss"])
    return -mean_source_accuracy(row)


@dataclass
class Progress:
    """How far a run has got: the last finished epoch (0 before the first), the best
    :func:`selection_value` so far (saved as ``best_loss``: the validation loss unless the run
    selects by accuracy), epochs since it last improved, one history row per epoch, the run
    registry's id and the seconds spent training."""

    epoch: int = 0
    best_loss: float = float("inf")
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    run_id: Optional[str] = None
    elapsed: float = 0.0

    def record(self, row: dict[str, Any], min_delta: float, select_by: str = "val_loss") -> bool:
        """Add one finished epoch's row; True when its score (:func:`selection_value`) beat the
        best by more than ``min_delta`` (the early-stopping count restarts)."""
        self.epoch = row["epoch"]
        self.elapsed += row["seconds"]
        self.history.append(row)
        value = selection_value(row, select_by)
        improved = value < self.best_loss - min_delta
        self.best_loss, self.bad_epochs = ((value, 0) if improved
                                           else (self.best_loss, self.bad_epochs + 1))
        return improved


def save_state(out: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
               scheduler: torch.optim.lr_scheduler.LRScheduler, progress: Progress) -> None:
    """Write the resume state to ``out/.train/last.pt`` atomically (a kill never leaves half)."""
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict(), "epoch": torch.tensor(progress.epoch),
             "best_loss": torch.tensor(progress.best_loss),
             "bad_epochs": torch.tensor(progress.bad_epochs), "history": progress.history,
             "run_id": progress.run_id, "elapsed": torch.tensor(progress.elapsed),
             "rng_torch": torch.get_rng_state(), "rng_numpy": np.random.get_state()[1].tolist(),
             "rng_python": list(random.getstate()[1])}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(out / STATE, buffer.getvalue())


def load_state(out: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
               scheduler: torch.optim.lr_scheduler.LRScheduler,
               device: torch.device) -> Progress:
    """Restore model, optimizer, schedule and torch's generator from ``out/.train/last.pt``;
    returns the progress saved with them."""
    state = torch.load(out / STATE, map_location=device, weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng_torch"].cpu())  # map_location moved it to the device
    return Progress(epoch=int(state["epoch"]), best_loss=float(state["best_loss"]),
                    bad_epochs=int(state["bad_epochs"]), history=state["history"],
                    run_id=state["run_id"], elapsed=float(state["elapsed"]))


def clear_state(out: Path) -> None:
    """Delete the resume state and its folder (the run has finished)."""
    (out / STATE).unlink(missing_ok=True)
    for leftover in (out / STATE.parent).glob("*"):
        leftover.unlink()
    if (out / STATE.parent).is_dir():
        (out / STATE.parent).rmdir()

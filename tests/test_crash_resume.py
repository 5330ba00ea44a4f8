"""Crashes mid-training, for real: ``python -m fvcore train`` is SIGKILLed at random points and
once in the middle of saving, then ``--resume``d. After every kill the best checkpoint loads and
the run registry says "interrupted"; the finished run equals an uninterrupted one with the same
seed and leaves no temporary files. A full disk while saving is a one-line error that keeps the
previous best checkpoint. The resume state keeps the format earlier versions wrote."""
from __future__ import annotations

import csv
import errno
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from fvcore.checkpoints.card import ModelCard
from fvcore.checkpoints.catalog import CARD, HISTORY, PREDICTIONS, WEIGHTS
from fvcore.errors import FvError
from fvcore.inference.loading import load_checkpoint
from fvcore.training.recipe import TrainConfig
from fvcore.training.runs import list_runs
from fvcore.training.state import STATE, Progress, load_state, save_state
from fvcore.training.trainer import train

pytestmark = pytest.mark.slow

EPOCHS = 8
ARGS = ("--arch", "cnn", "--image-size", "32", "--batch-size", "16", "--lr", "3e-3",
        "--epochs", str(EPOCHS), "--patience", "10", "--seed", "0", "--pretrained", "none",
        "--device", "cpu")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
KILL_WHILE_SAVING = """
import os, signal, sys
replace = os.replace
def dying_replace(src, dst, *args, **kwargs):
    # the temporary file is written and fsynced; die before it is renamed into place
    if str(dst).endswith(("model.safetensors", "last.pt")):
        os.kill(os.getpid(), signal.SIGKILL)
    return replace(src, dst, *args, **kwargs)
os.replace = dying_replace
from fvcore.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _train_cmd(data: Path, out: Path, db: Path, *extra: str) -> list[str]:
    return ["train", *ARGS, "--data", str(data), "--out", str(out), "--runs-db", str(db), *extra]


def _start(args: list[str], *, script: str | None = None) -> subprocess.Popen:
    head = [sys.executable, "-c", script] if script else [sys.executable, "-m", "fvcore"]
    return subprocess.Popen([*head, *args], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _epochs_logged(out: Path) -> int:
    log = out / "train.log"
    return log.read_text().count(f"/{EPOCHS} train_loss") if log.is_file() else 0


def _kill_after(proc: subprocess.Popen, out: Path, epochs: int, delay: float) -> None:
    """SIGKILL ``proc`` ``delay`` seconds after train.log shows ``epochs`` epochs."""
    deadline = time.monotonic() + 120
    while _epochs_logged(out) < epochs:
        assert proc.poll() is None, f"training ended before the kill: {proc.stdout.read()[-2000:]}"
        assert time.monotonic() < deadline, "training too slow"
        time.sleep(0.05)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def _check_after_kill(out: Path, db: Path, proc: subprocess.Popen, where: str) -> None:
    assert proc.returncode == -signal.SIGKILL, (where, proc.returncode, proc.stdout.read()[-2000:])
    if (out / CARD).exists():                      # the best checkpoint is always loadable
        clf = load_checkpoint(out, backend="pytorch")
        assert clf.card.best_epoch >= 1, where
    else:
        assert not (out / WEIGHTS).exists() or _epochs_logged(out) <= 1, where
    statuses = {r["id"]: r["status"] for r in list_runs(db)}
    assert "running" not in statuses.values(), (where, statuses)
    assert "interrupted" in statuses.values(), (where, statuses)


def _temp_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.name.endswith(".tmp"))


def _history(out: Path) -> list[dict]:
    rows = list(csv.DictReader((out / HISTORY).open()))
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_training_killed_at_random_points_resumes_to_the_uninterrupted_result(tiny_data,
                                                                              tmp_path):
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    where = f"random seed {seed}"
    ref_out, out, db = tmp_path / "reference", tmp_path / "killed", tmp_path / "runs.db"
    reference = _start(_train_cmd(tiny_data, ref_out, tmp_path / "ref-runs.db"))

    # kill 1: at a random moment after a random number of epochs
    proc = _start(_train_cmd(tiny_data, out, db))
    _kill_after(proc, out, rng.randint(1, 2), rng.uniform(0.0, 0.7))
    _check_after_kill(out, db, proc, f"{where}, kill 1")

    # kill 2: in the middle of saving (temporary file written and synced, not yet renamed)
    proc = _start(_train_cmd(tiny_data, out, db, "--resume"), script=KILL_WHILE_SAVING)
    proc.wait(timeout=180)
    _check_after_kill(out, db, proc, f"{where}, kill 2 (while saving)")
    assert _temp_files(out), "the kill while saving should have left a temporary file"

    # kill 3: random again, one epoch or so into the next resume
    done = _epochs_logged(out)
    proc = _start(_train_cmd(tiny_data, out, db, "--resume"))
    _kill_after(proc, out, done + 1, rng.uniform(0.0, 0.7))
    _check_after_kill(out, db, proc, f"{where}, kill 3")

    # the last resume finishes
    proc = _start(_train_cmd(tiny_data, out, db, "--resume"))
    output, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, output[-3000:]
    assert "Traceback" not in output
    assert _temp_files(out) == [] and not (out / ".train").exists()
    runs = list_runs(db)
    assert runs[0]["status"] == "finished" and all(
        r["status"] == "interrupted" for r in runs[1:]), runs

    ref_output, _ = reference.communicate(timeout=180)
    assert reference.returncode == 0, ref_output[-3000:]
    assert _history(out) == _history(ref_out), where
    card, ref_card = ModelCard.read(out), ModelCard.read(ref_out)
    for key in ("accuracy", "loss", "n_images", "macro_f1"):
        assert card.metrics[key] == ref_card.metrics[key], (key, where)
    assert (card.best_epoch, card.epochs_run) == (ref_card.best_epoch, ref_card.epochs_run)
    assert (out / WEIGHTS).read_bytes() == (ref_out / WEIGHTS).read_bytes(), where
    assert (out / PREDICTIONS).read_text() == (ref_out / PREDICTIONS).read_text(), where


# --- a full disk --------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def one_torch_thread():
    """The tiny CNN trains fastest on one thread (and the subprocesses above use one too)."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class _FullDisk:
    """A file handle whose writes fail with ENOSPC (what a full disk does)."""

    def __init__(self, handle) -> None:
        self.handle = handle

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()

    def write(self, data) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self.handle, name)


class _OsWithFullDisk:
    """``os`` as fvcore.checkpoints.folder sees it: after ``writes`` files, every file opened for
    writing is on a full disk."""

    def __init__(self, writes: int) -> None:
        self.left = writes

    def fdopen(self, fd, *args, **kwargs):
        self.left -= 1
        handle = os.fdopen(fd, *args, **kwargs)
        return handle if self.left >= 0 else _FullDisk(handle)

    def __getattr__(self, name):
        return getattr(os, name)


def _fill_disk_after(monkeypatch, writes: int) -> None:
    """Let ``writes`` more atomic writes through, then every write hits a full disk."""
    import fvcore.checkpoints.folder
    monkeypatch.setattr(fvcore.checkpoints.folder, "os", _OsWithFullDisk(writes))


def test_a_full_disk_while_training_is_a_clear_error_and_keeps_the_best_file(tiny_data, tmp_path,
                                                                            monkeypatch):
    out, db = tmp_path / "full", tmp_path / "runs.db"
    config = TrainConfig(arch="cnn", data=str(tiny_data), out=str(out), pretrained="none",
                         image_size=32, batch_size=16, lr=3e-3, epochs=4, patience=10, seed=0,
                         runs_db=str(db), command="pytest")
    # epoch 1 writes weights, history, card and the resume state (4 files); then the disk is full
    _fill_disk_after(monkeypatch, 4)
    with pytest.raises(FvError) as info:
        train(config)
    message = str(info.value)
    assert "No space left on device" in message and "the disk is full" in message
    assert "\n" not in message and str(out) in message
    assert load_checkpoint(out, backend="pytorch").card.best_epoch == 1
    assert _temp_files(out) == []
    [run] = list_runs(db)
    assert run["status"] == "failed" and "No space left on device" in run["message"]

    monkeypatch.undo()                               # space freed: resume finishes the run
    card = train(TrainConfig(**{**config.__dict__, "resume": True}))
    assert card.epochs_run == 4 and card.metrics["n_images"] == 24
    assert load_checkpoint(out, backend="pytorch").card.metrics == card.metrics
    assert list_runs(db)[0]["status"] == "finished" and _temp_files(out) == []


def test_a_full_disk_through_the_cli_prints_one_line_and_exits_1(tiny_data, tmp_path, capsys,
                                                                monkeypatch):
    from fvcore.cli import main
    _fill_disk_after(monkeypatch, 0)
    out = tmp_path / "full"
    code = main(["train", "--arch", "cnn", "--image-size", "32", "--epochs", "1",
                 "--pretrained", "none", "--data", str(tiny_data), "--out", str(out),
                 "--runs-db", str(tmp_path / "runs.db")])
    err = capsys.readouterr().err
    assert code == 1
    [line] = [x for x in err.splitlines() if x.startswith("error: ")]
    assert "cannot write model.safetensors: No space left on device" in line
    assert "Traceback" not in err and _temp_files(out) == []


# --- the resume state's format ------------------------------------------------------------------

OLD_STATE_KEYS = ("model", "optimizer", "scheduler", "epoch", "best_loss", "bad_epochs", "history",
                  "run_id", "elapsed", "rng_torch", "rng_numpy", "rng_python")


def _tiny_learner(seed: int) -> tuple[nn.Module, torch.optim.Optimizer, LambdaLR]:
    torch.manual_seed(seed)
    model = nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    return model, optimizer, LambdaLR(optimizer, lambda step: 0.5)


def test_a_resume_state_of_the_old_format_loads_and_save_state_keeps_that_format(tmp_path):
    model, optimizer, scheduler = _tiny_learner(seed=0)
    for _ in range(2):
        model(torch.ones(4, 3)).sum().backward()
        optimizer.step()
        scheduler.step()
    history = [{"epoch": e, "lr": 1e-3, "train_loss": 1.0 / e, "train_acc": 0.5, "val_loss": 0.75,
                "val_acc": 0.5, "images_per_s": 100.0, "seconds": 1.5} for e in (1, 2)]
    # exactly the dict the trainer saved before the state module existed
    old = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
           "scheduler": scheduler.state_dict(), "epoch": torch.tensor(2),
           "best_loss": torch.tensor(0.75), "bad_epochs": torch.tensor(1),
           "history": history, "run_id": "20250101-000000-abcdef", "elapsed": torch.tensor(3.25),
           "rng_torch": torch.get_rng_state(), "rng_numpy": np.random.get_state()[1].tolist(),
           "rng_python": list(random.getstate()[1])}
    assert tuple(old) == OLD_STATE_KEYS
    (tmp_path / STATE).parent.mkdir()
    torch.save(old, tmp_path / STATE)

    fresh, fresh_optimizer, fresh_scheduler = _tiny_learner(seed=1)
    progress = load_state(tmp_path, fresh, fresh_optimizer, fresh_scheduler, torch.device("cpu"))
    assert progress == Progress(epoch=2, best_loss=0.75, bad_epochs=1, history=history,
                                run_id="20250101-000000-abcdef", elapsed=3.25)
    assert torch.equal(torch.get_rng_state(), old["rng_torch"])
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(),
                                                 model.state_dict().values(), strict=True))
    assert fresh_optimizer.state_dict()["state"][0]["step"] == 2
    assert fresh_scheduler.state_dict()["last_epoch"] == scheduler.state_dict()["last_epoch"] == 2

    save_state(tmp_path, fresh, fresh_optimizer, fresh_scheduler, progress)
    new = torch.load(tmp_path / STATE, weights_only=True)
    assert tuple(new) == OLD_STATE_KEYS
    for key in OLD_STATE_KEYS:
        assert type(new[key]) is type(old[key]), key
        if isinstance(old[key], torch.Tensor):
            assert (new[key].dtype, new[key].shape) == (old[key].dtype, old[key].shape), key
    assert [new[k].item() for k in ("epoch", "best_loss", "bad_epochs", "elapsed")] == \
        [2, 0.75, 1, 3.25]
    assert new["history"] == history and new["run_id"] == old["run_id"]
    assert new["scheduler"]["last_epoch"] == 2 and new["optimizer"]["state"][0]["step"] == 2
    assert sorted(p.name for p in (tmp_path / STATE).parent.iterdir()) == [STATE.name]

"""Real training on tiny generated data: it learns, stops early, records its runs, writes the
checkpoint format, and runs under torchrun with two CPU processes."""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fvcore import load_checkpoint
from fvcore.checkpoints.card import ModelCard
from fvcore.training.recipe import TrainConfig
from fvcore.training.runs import list_runs, run_epochs
from fvcore.training.trainer import train

pytestmark = pytest.mark.slow


def _config(tiny_data, out, **kw) -> TrainConfig:
    settings = dict(arch="cnn", data=str(tiny_data), out=str(out), pretrained="none",
                    image_size=32, batch_size=16, lr=3e-3, epochs=6, patience=10, seed=0,
                    runs_db=str(Path(out).parent / "runs.db"), command="pytest")
    settings.update(kw)
    return TrainConfig(**settings)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_data):
    """A 6-epoch run; also records how many rows history.csv had at the end of each epoch."""
    import fvcore.training.trainer
    out = tmp_path_factory.mktemp("train") / "cnn"
    rows_per_epoch = []
    save_state = fvcore.training.trainer.save_state

    def counting(folder, *state):
        rows_per_epoch.append(len(list(csv.DictReader((out / "history.csv").open()))))
        save_state(folder, *state)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fvcore.training.trainer, "save_state", counting)
        card = train(_config(tiny_data, out))
    return out, card, rows_per_epoch


def test_training_learns_the_shapes_well_above_chance(trained):
    out, card, _ = trained
    assert card.metrics["accuracy"] > 0.6          # chance is 1/3
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 7))
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])


def test_history_csv_has_every_epoch_while_training_not_only_the_best_ones(trained):
    _, _, rows_per_epoch = trained
    assert rows_per_epoch == list(range(1, 7))


def test_the_finished_folder_is_a_loadable_checkpoint_with_a_complete_card(trained):
    out, card, _ = trained
    assert not (out / ".train").exists()                 # resume state removed when finished
    assert (out / "train.log").read_text().count("epoch") >= 6
    clf = load_checkpoint(out)
    assert clf.card.best_epoch == card.best_epoch and 1 <= card.best_epoch <= 6
    assert card.init.startswith("none") and card.dataset == tiny_data_name(out)
    assert card.splits["provenance"]["validation"] == "validation/"
    assert card.recipe["finetune"] == "full" and card.recipe["optimizer"] == "AdamW"
    assert card.training_seconds > 0 and card.hardware.startswith("CPU")
    assert card.groups == {"circle": "round", "square": "angular", "triangle": "angular"}
    assert "group_accuracy" in card.metrics
    # temperature scaling is tried on the validation split: 18 images are too few for it
    assert card.calibration["fitted_on"] == "validation" and card.calibration["n_images"] == 18
    assert "skipped" in card.calibration and card.temperature == 1.0


def tiny_data_name(out: Path) -> str:
    return ModelCard.read(out).dataset


def test_every_run_and_epoch_is_in_the_run_registry(trained):
    out, card, _ = trained
    [run] = [r for r in list_runs(out.parent / "runs.db") if r["out"] == str(out)]
    assert run["status"] == "finished" and run["arch"] == "cnn"
    assert run["final"]["accuracy"] == card.metrics["accuracy"]
    assert [e["epoch"] for e in run_epochs(out.parent / "runs.db", run["id"])] == list(range(1, 7))


def test_early_stopping_stops_when_validation_loss_stops_improving(tmp_path, tiny_data):
    card = train(_config(tiny_data, tmp_path / "es", epochs=60, patience=2, lr=1e-2))
    assert card.stopped_early
    assert card.epochs_run == card.best_epoch + 2 < 60
    rows = list(csv.DictReader((tmp_path / "es" / "history.csv").open()))
    best = min(float(r["val_loss"]) for r in rows)
    assert float(rows[card.best_epoch - 1]["val_loss"]) == best


def test_early_stopping_waits_for_min_epochs(tmp_path, tiny_data):
    card = train(_config(tiny_data, tmp_path / "min", epochs=8, patience=1, lr=1e-2,
                         min_epochs=7))
    assert card.epochs_run >= 7 and card.recipe["min_epochs"] == 7


def test_resume_of_a_finished_run_changes_nothing(trained, tiny_data):
    out, card, _ = trained
    before = (out / "model.safetensors").read_bytes()
    again = train(_config(tiny_data, out, resume=True))
    assert again.metrics == card.metrics and (out / "model.safetensors").read_bytes() == before


def test_head_only_finetuning_with_cached_features_trains_only_the_head(tmp_path, tiny_data):
    card = train(_config(tiny_data, tmp_path / "head", finetune="head", augment=False,
                         epochs=3))
    assert card.recipe["finetune"] == "head" and card.epochs_run == 3


def test_strong_augmentation_mixing_and_a_larger_test_resolution_are_recorded(tmp_path,
                                                                               tiny_data):
    out = tmp_path / "fixres"
    card = train(_config(tiny_data, out, epochs=2, augment_policy="trivial", mix=0.4,
                         eval_size=40, eval_resize=40))
    assert card.image_size == 40 and card.resize_size == 40         # what evaluate/predict use
    assert card.recipe["image_size"] == 32 and card.recipe["eval_size"] == 40
    assert card.recipe["augment_policy"] == "trivial" and card.recipe["mix"] == 0.4
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert all(0 <= float(r["train_acc"]) <= 1 for r in rows)
    assert load_checkpoint(out).preset.key[:2] == (40, 40)


@pytest.mark.parametrize("bad, message", [
    ({"augment_policy": "wild"}, "--augment-policy"), ({"mix": -1.0}, "--mix"),
    ({"eval_size": 48, "eval_resize": 40}, "--eval-resize"),
    ({"arch": "vit", "image_size": 32, "eval_size": 48}, "training size")])
def test_bad_training_options_are_refused_with_one_line(tmp_path, tiny_data, bad, message):
    from fvcore.errors import FvError
    with pytest.raises(FvError, match=message):
        train(_config(tiny_data, tmp_path / "bad", epochs=1, **bad))


def test_missing_splits_are_carved_from_train_and_recorded(tmp_path, tiny_data):
    data = tmp_path / "onlytrain"
    shutil.copytree(tiny_data / "train", data / "train")
    card = train(_config(data, tmp_path / "carved", epochs=1))
    assert card.splits["provenance"]["test"].startswith("carved from train")
    assert len(card.splits["carved"]["test"]) == card.metrics["n_images"] > 0


def test_distributed_training_with_two_cpu_processes(tmp_path, tiny_data):
    torchrun = Path(sys.executable).with_name("torchrun")
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path.cwd())}
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "fvcore", "train",
         "--arch", "cnn", "--data", str(tiny_data), "--out", str(out), "--image-size", "32",
         "--epochs", "2", "--batch-size", "8", "--pretrained", "none", "--device", "cpu",
         "--runs-db", str(tmp_path / "runs.db")],
        capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    card = ModelCard.read(out)
    assert card.metrics["n_images"] == 24 and card.epochs_run == 2
    runs = list_runs(tmp_path / "runs.db")
    assert len(runs) == 1 and runs[0]["status"] == "finished"   # only rank 0 records
    assert len(list(csv.DictReader((out / "history.csv").open()))) == 2

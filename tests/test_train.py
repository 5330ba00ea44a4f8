"""Real training on tiny generated data: it learns, stops early, records its runs, writes the
checkpoint format, runs under torchrun with two CPU processes, and trains on two dataset folders
with each one's test split reported as its own test domain."""
from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_dataset

from fvcore import load_checkpoint
from fvcore.checkpoints.card import ModelCard
from fvcore.cli import main
from fvcore.datasets.combine import load_datasets
from fvcore.evaluation.evaluate import read_predictions
from fvcore.training.recipe import TrainConfig
from fvcore.training.runs import SCHEMA, list_runs, log_epoch, run_epochs
from fvcore.training.steps import validation_domains
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
    out, _, rows_per_epoch = trained
    assert rows_per_epoch == list(range(1, 7))
    header = (out / "history.csv").read_text().splitlines()[0]
    assert header == "epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds"  # one folder


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


def test_selecting_by_source_accuracy_weighs_each_source_the_same_whatever_the_loss():
    from fvcore.training.state import Progress
    progress = Progress()
    rows = [  # val_acc is over all images: the big source dominates it, not the choice
        {"val_loss": 0.9, "val_acc": 0.80, "val_acc:shelf": 0.90, "val_acc:web": 0.50},
        {"val_loss": 1.2, "val_acc": 0.78, "val_acc:shelf": 0.80, "val_acc:web": 0.70},
        {"val_loss": 0.8, "val_acc": 0.79, "val_acc:shelf": 0.88, "val_acc:web": 0.60}]
    improved = [progress.record({"epoch": i, "seconds": 1.0, **row}, 1e-4, "source_accuracy")
                for i, row in enumerate(rows, 1)]
    assert improved == [True, True, False] and progress.bad_epochs == 1
    assert progress.best_loss == pytest.approx(-0.75)
    by_loss = Progress()
    assert [by_loss.record({"epoch": i, "seconds": 1.0, **row}, 1e-4)
            for i, row in enumerate(rows, 1)] == [True, False, True]


def test_selecting_by_accuracy_on_one_folder_uses_its_validation_accuracy(tmp_path, tiny_data):
    card = train(_config(tiny_data, tmp_path / "acc", epochs=4, patience=10, lr=1e-2,
                         select_by="source_accuracy"))
    rows = list(csv.DictReader((tmp_path / "acc" / "history.csv").open()))
    best = max(float(r["val_acc"]) for r in rows)
    assert [float(r["val_acc"]) for r in rows].index(best) + 1 == card.best_epoch
    assert card.recipe["select_by"] == "source_accuracy"


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


def test_a_warm_start_begins_from_the_checkpoints_weights_and_its_card_says_so(trained, tmp_path,
                                                                                tiny_data):
    import torch

    from fvcore.checkpoints.folder import build_model
    from fvcore.models.registry import create_model
    from fvcore.training.warmstart import warm_start
    source, source_card, _ = trained
    model = build_model(source, source_card)
    fresh, _ = create_model("cnn", len(source_card.classes), image_size=32)
    label = warm_start(fresh, "cnn", source_card.classes, source)
    assert label.startswith("none") and f"warm-started from the {source_card.dataset}" in label
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key].to(value.dtype), value), key
    # one more epoch at a tiny learning rate keeps the source's accuracy: it did start from it
    card = train(_config(tiny_data, tmp_path / "warm", init_from=str(source), epochs=1,
                         lr=1e-6, augment=False))
    assert "warm-started from" in card.init and not card.pretrained
    assert card.metrics["accuracy"] >= source_card.metrics["accuracy"] - 0.1


@pytest.mark.parametrize("change, message", [({"arch": "cnn_attention"}, "from a cnn checkpoint"),
                                             ({"classes": ["a", "b"]}, "classes differ")])
def test_a_warm_start_from_another_architecture_or_other_classes_is_refused(trained, change,
                                                                          message):
    from fvcore.errors import FvError
    from fvcore.models.registry import create_model
    from fvcore.training.warmstart import warm_start
    source, card, _ = trained
    arch, classes = change.get("arch", "cnn"), change.get("classes", card.classes)
    model, _ = create_model(arch, len(classes), image_size=32)
    with pytest.raises(FvError, match=message):
        warm_start(model, arch, classes, source)


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


@pytest.fixture(scope="module")
def combined(tmp_path_factory, tiny_data):
    """Two epochs through the CLI on tiny_data plus ``wild``, a folder with no triangles and no
    square test images, named ``shapes`` on the card."""
    root = tmp_path_factory.mktemp("combined")
    wild = make_dataset(root / "wild", {"train": 8, "validation": 3, "test": 4}, seed=5)
    for split in ("train", "validation", "test"):
        shutil.rmtree(wild / split / "triangle")
    shutil.rmtree(wild / "test" / "square")
    out = root / "cnn"
    argv = ["train", "--arch", "cnn", "--data", str(tiny_data), "--data", str(wild),
            "--dataset-name", "shapes", "--out", str(out), "--pretrained", "none",
            "--image-size", "32", "--batch-size", "16", "--lr", "3e-3", "--epochs", "2",
            "--runs-db", str(root / "runs.db")]
    assert main(argv) == 0
    return tiny_data, wild, out, argv


def test_two_folders_train_one_model_whose_card_reports_each_test_domain(combined):
    tiny_data, wild, out, argv = combined
    card = ModelCard.read(out)
    assert card.dataset == "shapes" and card.classes == ["circle", "square", "triangle"]
    assert card.command == shlex.join(["python", "-m", "fvcore", *argv])
    sources = card.splits["sources"]
    assert sources[tiny_data.name]["counts"] == {"train": 90, "validation": 18, "test": 24}
    assert sources["wild"]["counts"] == {"train": 16, "validation": 6, "test": 4}
    assert card.splits["counts"] == {"train": 106, "validation": 24, "test": 28}
    by_split = card.metrics_by_split
    assert list(by_split) == [tiny_data.name, "wild"]
    assert [m["n_images"] for m in by_split.values()] == [24, 4]
    assert sum(m["n_images"] for m in by_split.values()) == card.metrics["n_images"] == 28
    assert sum(m["correct"] for m in by_split.values()) == card.metrics["correct"]
    assert card.metrics["accuracy"] == card.metrics["correct"] / 28
    assert set(by_split["wild"]) == set(card.metrics)        # the same keys per domain
    assert by_split["wild"]["dataset"] == "wild" and card.metrics["dataset"] == "shapes"
    assert card.calibration["n_images"] == 24                # the combined validation split
    assert json.loads((out / "card.json").read_text())["schema_version"] == 1


def test_history_has_each_sources_validation_accuracy_which_together_make_the_whole(combined):
    tiny_data, _, out, _ = combined
    rows = list(csv.DictReader((out / "history.csv").open()))
    mine, wild = f"val_acc:{tiny_data.name}", "val_acc:wild"
    assert len(rows) == 2 and list(rows[0])[-2:] == [mine, wild]
    for row in rows:     # 18 validation images from tiny_data, 6 from wild
        whole = (float(row[mine]) * 18 + float(row[wild]) * 6) / 24
        assert whole == pytest.approx(float(row["val_acc"]))
    assert f"(val_acc {tiny_data.name} " in (out / "train.log").read_text()


def test_the_run_registry_keeps_each_sources_validation_accuracy_for_live_curves(combined):
    tiny_data, _, out, _ = combined
    [run] = list_runs(out.parent / "runs.db")
    epochs = run_epochs(out.parent / "runs.db", run["id"])
    history = list(csv.DictReader((out / "history.csv").open()))
    for epoch, row in zip(epochs, history, strict=True):
        for column in ("val_acc:wild", f"val_acc:{tiny_data.name}"):
            assert epoch[column] == pytest.approx(float(row[column]))
        assert "domains" not in epoch


def test_a_registry_from_before_per_source_accuracy_still_reads_and_records(tmp_path):
    db = tmp_path / "runs.db"
    with sqlite3.connect(db) as con:   # the epochs table as it was, with one row
        con.executescript(SCHEMA.replace("    domains TEXT,\n", ""))
        con.execute("INSERT INTO runs VALUES ('r1', 'cnn', 'd', 'f', 'o', '{}', 'h', 1, 0, 0, 0,"
                    " 'finished', '', '{}')")
        con.execute("INSERT INTO epochs VALUES ('r1', 1, 1.0, 0.5, 1.1, 0.4, 0.1, 3.0, 9.0)")
    assert run_epochs(db, "r1")[0]["val_acc"] == 0.4
    log_epoch(db, "r1", {"epoch": 2, "val_acc": 0.5, "val_acc:web": 0.25})
    assert [e.get("val_acc:web") for e in run_epochs(db, "r1")] == [None, 0.25]


def test_each_rank_knows_the_source_of_its_share_of_the_validation_images(combined):
    tiny_data, wild, _, _ = combined
    splits = load_datasets([tiny_data, wild])
    whole = validation_domains(splits)
    assert whole.names == (tiny_data.name, "wild") and whole.of_item == (0,) * 18 + (1,) * 6
    assert validation_domains(splits, 1, 2).of_item == whole.of_item[1::2]
    assert validation_domains(load_datasets([tiny_data])) is None


def test_predictions_csv_names_each_rows_test_domain_and_prefixes_paths_with_it(combined):
    tiny_data, _, out, _ = combined
    header = (out / "predictions.csv").read_text().splitlines()[0]
    assert header.startswith("path,label,pred,domain,p:")
    preds = read_predictions(out, ["circle", "square", "triangle"])
    assert preds.domain_names == [tiny_data.name, "wild"]
    wild = preds.subset("wild")
    assert all(p.startswith("wild/test/circle/") for p in wild.paths) and len(wild.paths) == 4
    assert all(p.startswith(f"{tiny_data.name}/test/") for p in preds.subset(tiny_data.name).paths)
    assert (tiny_data.parent / preds.paths[0]).is_file()


def test_evaluate_per_domain_reproduces_the_cards_per_split_numbers(combined, capsys):
    tiny_data, wild, out, _ = combined
    card = ModelCard.read(out)
    before = (out / "predictions.csv").read_text()
    assert main(["evaluate", str(out), "--data", str(tiny_data / "test"),
                 "--data", str(wild / "test"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_images"] == 28 and report["accuracy"] == card.metrics["accuracy"]
    for domain, m in card.metrics_by_split.items():
        again = report["metrics_by_split"][domain]
        assert again["accuracy"] == m["accuracy"] and again["n_images"] == m["n_images"]
        assert again["loss"] == pytest.approx(m["loss"], abs=1e-6)
    assert main(["evaluate", str(out), "--data", str(tiny_data / "test"),
                 "--data", str(wild / "test"), "--save"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{out.name} on {tiny_data.name}: accuracy ")
    assert lines[1].startswith(f"{out.name} on wild: accuracy ") and "on 4 images" in lines[1]
    assert lines[2].startswith(f"{out.name} on all: accuracy ") and "on 28 images" in lines[2]
    saved = ModelCard.read(out)
    assert saved.metrics_by_split.keys() == card.metrics_by_split.keys()
    for domain, m in card.metrics_by_split.items():
        assert saved.metrics_by_split[domain]["accuracy"] == m["accuracy"]
        assert saved.metrics_by_split[domain]["loss"] == pytest.approx(m["loss"], abs=1e-6)
    after = (out / "predictions.csv").read_text()
    assert [r.split(",")[:4] for r in after.splitlines()] == \
        [r.split(",")[:4] for r in before.splitlines()]


def test_calibrate_accepts_the_folders_a_combined_model_was_trained_on(combined, capsys):
    tiny_data, wild, out, _ = combined
    assert main(["calibrate", str(out), "--data", str(tiny_data), "--data", str(wild)]) == 0
    card = ModelCard.read(out)
    assert card.calibration["n_images"] == 24 and len(card.metrics_by_split) == 2
    assert card.calibration["command"].endswith(f"--data {tiny_data} --data {wild}")
    assert main(["calibrate", str(out), "--data", str(tiny_data)]) == 1
    assert "not the dataset" in capsys.readouterr().err

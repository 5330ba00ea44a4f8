"""Checkpoint folders: float16 safetensors + card.json round-trip, discovery that skips broken
folders with a reason, the notebook importer, and cards and predictions.csv written before test
domains existed."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from skimage import data as skdata

from fvcore import discover, load_checkpoint, scan
from fvcore.checkpoints.card import ModelCard
from fvcore.checkpoints.catalog import datasets
from fvcore.cli import main
from fvcore.errors import CheckpointError, FvError
from fvcore.evaluation.evaluate import read_predictions
from fvcore.explain.cam import CAM_METHODS, cam_class
from fvcore.models.registry import create_model


def test_a_checkpoint_folder_holds_the_four_files(checkpoint_root):
    folder = checkpoint_root / "shapes" / "cnn"
    assert {p.name for p in folder.iterdir()} >= {"model.safetensors", "card.json", "history.csv",
                                                  "predictions.csv"}
    card = json.loads((folder / "card.json").read_text())
    assert list(card) == sorted(card)
    for key in ("arch", "classes", "groups", "image_size", "mean", "std", "init", "recipe",
                "best_epoch", "params", "flops", "metrics", "metrics_by_split"):
        assert key in card
    assert set(card["metrics"]) >= {"accuracy", "loss", "n_images", "dataset"}
    [(domain, by_split)] = card["metrics_by_split"].items()         # one test folder: one domain
    assert by_split == {**card["metrics"], "dataset": domain}
    header = (folder / "history.csv").read_text().splitlines()[0]
    assert header == "epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds"
    predictions = (folder / "predictions.csv").read_text().splitlines()
    assert predictions[0] == "path,label,pred,domain,p:circle,p:square,p:triangle"
    assert len(predictions) == 1 + card["metrics"]["n_images"]


def test_float16_weights_load_as_float32_in_eval_mode(checkpoint_root):
    from safetensors import safe_open
    folder = checkpoint_root / "shapes" / "efficientnet_lite0"
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        assert f.get_tensor("conv_stem.weight").dtype == torch.float16
    clf = load_checkpoint(folder)
    assert not clf.model.training
    assert all(p.dtype == torch.float32 for p in clf.model.parameters())


def test_predict_returns_probabilities_for_paths_bytes_and_pil_images(checkpoint_root, tiny_data):
    from PIL import Image
    clf = load_checkpoint(checkpoint_root / "shapes" / "vit")
    path = next((tiny_data / "test" / "circle").iterdir())
    probs = clf.predict([path, path.read_bytes(), Image.open(path)])
    assert probs.shape == (3, 3)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probs[0], probs[1], atol=1e-6)
    np.testing.assert_allclose(probs[0], probs[2], atol=1e-6)


@pytest.mark.parametrize("method", CAM_METHODS)
def test_gradcam_is_an_input_sized_map_in_unit_range_for_every_method(checkpoint_root, method):
    clf = load_checkpoint(checkpoint_root / "shapes" / "vit")
    heat = clf.gradcam(skdata.astronaut(), method=method)
    assert heat.shape == (64, 64) and heat.dtype == np.float32
    assert 0.0 <= heat.min() and heat.max() <= 1.0 and heat.max() > 0
    assert not clf.model.blocks[-1].norm1._forward_hooks


@pytest.mark.parametrize("method", CAM_METHODS)
def test_every_cam_method_names_its_grad_cam_class_and_label(method):
    import pytorch_grad_cam
    spec = CAM_METHODS[method]
    assert cam_class(method) is getattr(pytorch_grad_cam, spec.cam_class)
    assert cam_class(method.upper()) is cam_class(method)
    assert spec.label and spec.label.replace("-", "").lower() == method.replace("-", "")


def test_an_unknown_cam_method_lists_the_table():
    with pytest.raises(FvError, match="choose one of gradcam, gradcam\\+\\+, eigencam, layercam"):
        cam_class("scorecam")


def test_cam_view_has_the_predicted_and_explained_class(checkpoint_root):
    clf = load_checkpoint(checkpoint_root / "shapes" / "cnn")
    probs = clf.predict(skdata.coffee())[0]
    view = clf.explain_view(skdata.coffee(), target="square", method="gradcam++", score=True)
    assert (view.target, view.target_index) == ("square", clf.classes.index("square"))
    assert view.predicted == clf.classes[int(probs.argmax())]
    assert view.predicted_prob == pytest.approx(float(probs.max()), abs=1e-5)
    assert view.target_prob == pytest.approx(float(probs[view.target_index]), abs=1e-5)
    np.testing.assert_allclose(view.probs, probs, atol=1e-5)
    assert (view.method, view.method_label) == ("gradcam++", "Grad-CAM++")
    assert view.crop.size == view.heatmap.shape[::-1] == (64, 64)
    assert -1.0 <= view.faithfulness <= 1.0 and view.ms > 0
    plain = clf.explain_view(skdata.coffee())
    assert plain.target == plain.predicted and plain.faithfulness is None


def test_explain_returns_the_same_probabilities_as_predict(checkpoint_root):
    clf = load_checkpoint(checkpoint_root / "shapes" / "cnn")
    result, faithfulness = clf.explain(skdata.coffee(), target="square", score=True)
    assert result.target == clf.classes.index("square")
    np.testing.assert_allclose(result.probs, clf.predict(skdata.coffee())[0], atol=1e-5)
    assert -1.0 <= faithfulness <= 1.0


def test_discovery_walks_recursively_groups_by_dataset_and_skips_broken_folders(checkpoint_root,
                                                                                tmp_path):
    root = tmp_path / "ck"
    shutil.copytree(checkpoint_root, root)
    (root / "broken" / "nocard").mkdir(parents=True)
    shutil.copy(root / "shapes" / "cnn" / "model.safetensors", root / "broken" / "nocard")
    shutil.copytree(root / "shapes" / "cnn", root / "broken" / "mismatch")
    card = json.loads((root / "broken" / "mismatch" / "card.json").read_text())
    card["classes"].append("hexagon")
    (root / "broken" / "mismatch" / "card.json").write_text(json.dumps(card))
    classifiers, problems = discover(root)
    assert sorted(c.name for c in classifiers) == ["shapes/cnn", "shapes/efficientnet_lite0",
                                                   "shapes/vit"]
    reasons = {p.path: p.reason for p in problems}
    assert reasons["broken/nocard"] == "missing card.json"
    assert "card/weights mismatch: card lists 4 classes, weights have 3 outputs" \
        in reasons["broken/mismatch"]
    entries, _ = scan(root)
    assert list(datasets(entries)) == ["shapes"]


def test_load_checkpoint_of_a_broken_folder_raises_one_line(tmp_path):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path)
    assert "\n" not in str(info.value) and "missing card.json" in str(info.value)


def test_import_pth_turns_a_notebook_state_dict_into_a_checkpoint(tmp_path, capsys):
    model, _ = create_model("mobilenet_v3_large", 3)
    model.eval()
    torch.save(model.state_dict(), tmp_path / "best_model.pth")
    (tmp_path / "classes.txt").write_text("ant\nbee\nwasp\n")
    out = tmp_path / "imported"
    assert main(["import-pth", str(tmp_path / "best_model.pth"), "--arch", "mobilenet_v3_large",
                 "--classes", str(tmp_path / "classes.txt"), "--out", str(out)]) == 0
    clf = load_checkpoint(out)
    assert clf.classes == ["ant", "bee", "wasp"]
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        np.testing.assert_allclose(clf.model(x).numpy(), model(x).numpy(), atol=1e-5)


def test_import_pth_with_the_wrong_class_count_explains_the_mismatch(tmp_path, capsys):
    model, _ = create_model("cnn", 3)
    torch.save(model.state_dict(), tmp_path / "best_model.pth")
    (tmp_path / "classes.txt").write_text("a\nb\n")
    code = main(["import-pth", str(tmp_path / "best_model.pth"), "--arch", "cnn",
                 "--classes", str(tmp_path / "classes.txt"), "--out", str(tmp_path / "o")])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "weights do not fit cnn with 2 classes" in err
    assert err.count("\n") == 1


def test_card_rejects_malformed_fields(tmp_path):
    (tmp_path / "card.json").write_text(json.dumps({"arch": "cnn", "classes": ["a"],
                                                    "image_size": 64, "mean": [0] * 3,
                                                    "std": [1] * 3}))
    with pytest.raises(CheckpointError, match="2\\+ distinct names"):
        ModelCard.read(tmp_path)


def _old_style(folder):
    """Rewrite a checkpoint as older fvcore wrote it: no domain column, no per-split metrics."""
    lines = (folder / "predictions.csv").read_text().splitlines()
    rows = [line.split(",") for line in lines]
    (folder / "predictions.csv").write_text(
        "\n".join(",".join(r[:3] + r[4:]) for r in rows) + "\n")
    card = json.loads((folder / "card.json").read_text())
    del card["metrics_by_split"]
    (folder / "card.json").write_text(json.dumps(card))


def test_an_old_card_and_predictions_csv_without_test_domains_still_load(checkpoint_root,
                                                                         tmp_path):
    folder = tmp_path / "old"
    shutil.copytree(checkpoint_root / "shapes" / "cnn", folder)
    new = read_predictions(folder, ["circle", "square", "triangle"])
    _old_style(folder)
    assert "domain" not in (folder / "predictions.csv").read_text().splitlines()[0]
    card = ModelCard.read(folder)
    assert card.metrics_by_split == {} and card.schema_version == 1
    old = read_predictions(folder, card.classes)
    assert old.domain_names == ["shapes"]                    # one domain: the card's dataset
    assert old.paths == new.paths and (old.labels == new.labels).all()
    np.testing.assert_allclose(old.probs, new.probs)
    assert len(old.subset("shapes").paths) == card.metrics["n_images"]
    assert read_predictions(folder, card.classes, domain="shelf").domain_names == ["shelf"]
    assert load_checkpoint(folder).card.metrics == card.metrics


def test_predictions_subset_by_domain_and_refuse_an_unknown_one(checkpoint_root):
    preds = read_predictions(checkpoint_root / "shapes" / "cnn", ["circle", "square", "triangle"])
    [domain] = preds.domain_names
    assert preds.subset(domain).paths == preds.paths
    with pytest.raises(FvError, match="no test domain 'nope'"):
        preds.subset("nope")


def test_card_per_split_metrics_must_be_a_map_of_maps(tmp_path):
    card = {"arch": "cnn", "classes": ["a", "b"], "image_size": 64, "mean": [0] * 3,
            "std": [1] * 3, "metrics_by_split": {"shelf": 0.9}}
    with pytest.raises(CheckpointError, match="'metrics_by_split' has the wrong type"):
        ModelCard.from_dict(card)


def test_a_card_gives_its_accuracy_per_test_domain_and_skips_malformed_entries():
    card = ModelCard(arch="cnn", classes=["a", "b"], image_size=32, mean=[0.5] * 3, std=[0.5] * 3,
                     metrics_by_split={"shelf": {"accuracy": 0.838}, "wild": {"accuracy": 0.3},
                                       "odd": {"accuracy": True}, "none": {"n_images": 4}})
    assert card.split_accuracies() == {"shelf": 0.838, "wild": 0.3}

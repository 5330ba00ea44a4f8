"""Bring your own model: a notebook's ``torch.save(model.state_dict(), "best_model.pth")``
imports and gives the notebook's own answers. Every model is built here the way a notebook
builds it (torchvision/timm with random weights and a replaced head, BatchNorm statistics moved by
a few training-mode passes), saved, imported, and its predict() compared with the original
model's softmax on scikit-image photos."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import torchvision
from PIL import Image
from skimage import data as skdata
from torch import nn
from torchvision import transforms as T

from fvcore.checkpoints.catalog import scan
from fvcore.checkpoints.heads import parse_head
from fvcore.checkpoints.importer import Preprocessing, classes_from_folder
from fvcore.cli.parser import main
from fvcore.errors import FvError
from fvcore.inference import importing
from fvcore.inference.importing import import_state_dict
from fvcore.inference.loading import discover, load_checkpoint, onnx_export

SIZE, RESIZE = 64, 73          # small inputs keep the CNN tests fast (any size works for them)
ATOL = 1e-4
PHOTOS = [Image.fromarray(f()) for f in (skdata.astronaut, skdata.coffee, skdata.chelsea)]


def notebook_model(model: nn.Module, size: int = SIZE) -> nn.Module:
    """What a notebook ends with: BatchNorm statistics moved by training, then eval mode."""
    torch.manual_seed(0)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(4, 3, size, size))
    return model.eval()


def notebook_softmax(model: nn.Module, size: int = SIZE, resize: int = RESIZE,
                     mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)) -> np.ndarray:
    transform = T.Compose([T.Resize(resize), T.CenterCrop(size), T.ToTensor(),
                           T.Normalize(mean, std)])
    with torch.no_grad():
        return torch.softmax(model(torch.stack([transform(p) for p in PHOTOS])), 1).numpy()


def save(model: nn.Module, folder: Path) -> Path:
    path = folder / "best_model.pth"
    torch.save(model.state_dict(), path)
    return path


def classes(n: int) -> list[str]:
    return [f"class{i:02d}" for i in range(n)]


def run_import(weights: Path, arch: str, n: int, out: Path, *, backend: str = "pytorch",
               size: int = SIZE, resize: int = RESIZE, **kw):
    return import_state_dict(weights, arch=arch, classes=classes(n), out=out, backend=backend,
                             preprocessing=Preprocessing(size, resize), **kw)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine tiny inputs run far faster on one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def resnet50_body() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet50(weights=None)


def test_resnet50_with_a_linear_fc_gives_the_notebooks_answers(resnet50_body, tmp_path, capsys):
    model = resnet50_body
    model.fc = nn.Linear(2048, 36)
    weights = save(notebook_model(model), tmp_path)
    (tmp_path / "classes.txt").write_text("\n".join(classes(36)) + "\n")
    out = tmp_path / "ckpt"
    assert main(["import-pth", str(weights), "--arch", "resnet50", "--classes",
                 str(tmp_path / "classes.txt"), "--out", str(out), "--image-size", str(SIZE),
                 "--resize", str(RESIZE)]) == 0
    printed = capsys.readouterr().out
    assert "torchvision:resnet50, head fc = Linear(2048, 36)" in printed and "self-check" in printed
    clf = load_checkpoint(out, backend="pytorch")
    np.testing.assert_allclose(clf.predict(PHOTOS), notebook_softmax(model), atol=ATOL)
    card = json.loads((out / "card.json").read_text())
    assert card["arch"] == "torchvision:resnet50" and card["resize_size"] == RESIZE
    assert card["builder"]["head_path"] == "fc" and card["builder"]["cam_layer"] == "layer4"
    assert card["init"] == "imported:best_model.pth" and "sha256" in card["notes"]


def test_resnet50_with_a_sequential_head_and_its_gradcam(resnet50_body, tmp_path):
    model = resnet50_body
    model.fc = nn.Sequential(nn.Linear(2048, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.3),
                             nn.Linear(64, 5))
    weights = save(notebook_model(model), tmp_path)
    result = run_import(weights, "resnet50", 5, tmp_path / "ckpt", dataset="shelf")
    assert [s["type"] for s in result.card.builder["head"]] == [
        "linear", "batchnorm", "relu", "dropout", "linear"]
    assert result.difference <= ATOL
    clf = load_checkpoint(result.path, backend="pytorch")
    np.testing.assert_allclose(clf.predict(PHOTOS), notebook_softmax(model), atol=ATOL)
    view = clf.explain_view(PHOTOS[1])
    assert view.heatmap.shape == (SIZE, SIZE) and view.heatmap.max() > 0
    entries, problems = scan(tmp_path)
    assert [(e.name, e.card.dataset) for e in entries] == [("ckpt", "shelf")] and not problems


def test_densenet121_with_a_linear_classifier(tmp_path):
    torch.manual_seed(1)
    model = torchvision.models.densenet121(weights=None)
    model.classifier = nn.Linear(1024, 4)
    weights = save(notebook_model(model), tmp_path)
    result = run_import(weights, "densenet121", 4, tmp_path / "ckpt")
    assert result.card.builder["head_path"] == "classifier"
    clf = load_checkpoint(result.path, backend="pytorch")
    np.testing.assert_allclose(clf.predict(PHOTOS), notebook_softmax(model), atol=ATOL)


def test_mobilenet_v3_large_with_classifier_3_replaced_keeps_its_hardswish(tmp_path):
    torch.manual_seed(2)
    model = torchvision.models.mobilenet_v3_large(weights=None)
    model.classifier[3] = nn.Linear(1280, 3)
    weights = save(notebook_model(model), tmp_path)
    result = run_import(weights, "mobilenet_v3_large", 3, tmp_path / "ckpt")
    assert result.card.builder["head_path"] == "classifier.3"
    clf = load_checkpoint(result.path, backend="pytorch")
    np.testing.assert_allclose(clf.predict(PHOTOS), notebook_softmax(model), atol=ATOL)


def test_a_torchvision_model_beyond_the_registry_runs_on_onnx_with_gradcam(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setenv("FVCORE_THREADS", "1")
    torch.manual_seed(3)
    model = torchvision.models.efficientnet_b0(weights=None)
    model.classifier[1] = nn.Linear(1280, 3)
    weights = save(notebook_model(model), tmp_path)
    result = run_import(weights, "torchvision:efficientnet_b0", 3, tmp_path / "ckpt",
                        backend="onnx")
    assert (result.path / ".onnx").is_dir()   # the export checked during the import is kept
    clf = load_checkpoint(result.path, backend="onnx")
    assert clf.backend == "onnx"
    np.testing.assert_allclose(clf.predict(PHOTOS), notebook_softmax(model), atol=ATOL)
    assert clf.cam_layer == "features" and clf.gradcam(PHOTOS[2]).shape == (SIZE, SIZE)
    [export] = (result.path / ".onnx").glob("model-*.onnx")
    assert onnx_export(result.path) == export.read_bytes()   # what Home's download serves


def test_a_timm_model_in_timms_own_layout(tmp_path):
    torch.manual_seed(4)
    model = timm.create_model("resnet18", pretrained=False, num_classes=3)
    weights = save(notebook_model(model), tmp_path)
    result = run_import(weights, "timm:resnet18", 3, tmp_path / "ckpt")
    clf = load_checkpoint(result.path, backend="pytorch")
    np.testing.assert_allclose(clf.predict(PHOTOS), notebook_softmax(model), atol=ATOL)


def test_a_registry_vit_in_timms_layout_gets_token_gradcam(tmp_path):
    torch.manual_seed(5)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=3).eval()
    weights = save(model, tmp_path)
    result = run_import(weights, "vit", 3, tmp_path / "ckpt", size=224, resize=256,
                        activation="gelu")
    assert result.card.arch == "timm:vit_tiny_patch16_224"
    assert (result.card.builder["cam_layer"], result.card.builder["cam_tokens"]) == \
        ("blocks.11.norm1", 1)
    clf = load_checkpoint(result.path, backend="pytorch")
    np.testing.assert_allclose(clf.predict(PHOTOS), notebook_softmax(model, 224, 256), atol=ATOL)
    heat = clf.gradcam(PHOTOS[0])
    assert heat.shape == (224, 224) and np.isfinite(heat).all()


def test_the_activation_option_names_the_heads_activation(tmp_path):
    torch.manual_seed(6)
    model = timm.create_model("resnet18", pretrained=False)
    model.fc = nn.Sequential(nn.Dropout(0.2), nn.Linear(512, 32), nn.GELU(), nn.Linear(32, 2))
    weights = save(notebook_model(model), tmp_path)
    result = run_import(weights, "timm:resnet18", 2, tmp_path / "ckpt", activation="gelu")
    assert [s["type"] for s in result.card.builder["head"]] == [
        "dropout", "linear", "gelu", "linear"]
    clf = load_checkpoint(result.path, backend="pytorch")
    np.testing.assert_allclose(clf.predict(PHOTOS), notebook_softmax(model), atol=ATOL)


def test_head_layers_are_read_from_keys_and_index_gaps():
    keys = {"0.weight": (8, 16), "0.bias": (8,), "1.weight": (8,), "1.bias": (8,),
            "1.running_mean": (8,), "1.running_var": (8,), "1.num_batches_tracked": (),
            "4.weight": (3, 8), "4.bias": (3,)}
    layers, sequential = parse_head(keys)
    assert sequential and [s["type"] for s in layers] == [
        "linear", "batchnorm", "relu", "dropout", "linear"]
    layers, _ = parse_head({"0.weight": (8, 16), "2.weight": (8,), "2.running_mean": (8,),
                            "2.running_var": (8,), "2.bias": (8,), "4.weight": (3, 8)},
                           activation="silu")
    assert [s["type"] for s in layers] == ["linear", "silu", "batchnorm", "dropout", "linear"]
    assert layers[-1]["bias"] is False
    assert parse_head({"weight": (3, 16), "bias": (3,)}) == (
        [{"type": "linear", "in": 16, "out": 3, "bias": True}], False)


# --- errors: one line each, nothing written ----------------------------------------------------

@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """A notebook's timm resnet18 with a 3-class fc, saved."""
    torch.manual_seed(7)
    model = timm.create_model("resnet18", pretrained=False, num_classes=3).eval()
    return save(model, tmp_path_factory.mktemp("small"))


def one_line(info) -> str:
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("arch, close", [("resnet5", "resnet50"),
                                         ("torchvision:resnet5O", "torchvision:resnet50"),
                                         ("timm:convnext_tinny", "timm:convnext_tiny")])
def test_an_unknown_architecture_names_the_close_ones(small, tmp_path, arch, close):
    with pytest.raises(FvError) as info:
        run_import(small, arch, 3, tmp_path / "ckpt")
    assert f"unknown architecture {arch!r}" in one_line(info) and close in str(info.value)
    assert not (tmp_path / "ckpt").exists()


def test_a_class_count_that_does_not_match_the_head(small, tmp_path):
    with pytest.raises(FvError) as info:
        run_import(small, "timm:resnet18", 4, tmp_path / "ckpt")
    assert "class count mismatch: the head of timm:resnet18 has 3 outputs, the classes list 4" \
        in one_line(info)
    assert not (tmp_path / "ckpt").exists()


def test_head_keys_that_fit_no_layout_are_listed(tmp_path):
    model = timm.create_model("resnet18", pretrained=False)
    model.fc = nn.Sequential(nn.Sequential(nn.Linear(512, 3)))
    with pytest.raises(FvError) as info:
        run_import(save(model, tmp_path), "timm:resnet18", 3, tmp_path / "ckpt")
    message = one_line(info)
    assert "head keys fit no known layout" in message and "0.0.weight [3, 512]" in message


def test_weights_of_another_architecture_say_what_differs(small, tmp_path):
    with pytest.raises(FvError) as info:
        run_import(small, "torchvision:resnet34", 3, tmp_path / "ckpt")
    message = one_line(info)
    assert "weights are not a torchvision:resnet34" in message
    assert "missing (first: layer" in message


def test_a_whole_pickled_model_says_how_to_resave_it(tmp_path, capsys):
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    torch.save(model, tmp_path / "best_model.pth")
    (tmp_path / "classes.txt").write_text("a\nb\nc\n")
    code = main(["import-pth", str(tmp_path / "best_model.pth"), "--arch", "timm:resnet18",
                 "--classes", str(tmp_path / "classes.txt"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert 'torch.save(model.state_dict(), "best_model.pth")' in err
    assert not (tmp_path / "out").exists()


def test_a_file_that_is_not_a_state_dict(tmp_path):
    torch.save([torch.zeros(3)], tmp_path / "list.pth")
    (tmp_path / "notes.pth").write_text("these are my notes, not weights")
    for name in ("list.pth", "notes.pth"):
        with pytest.raises(FvError) as info:
            run_import(tmp_path / name, "timm:resnet18", 3, tmp_path / "ckpt")
        assert "not a state dict" in one_line(info) or "not a plain state dict" in str(info.value)


def test_a_self_check_mismatch_is_an_error_and_writes_nothing(small, tmp_path, monkeypatch):
    monkeypatch.setitem(importing.TOLERANCE, True, 0.0)   # float16 weights are never exact
    out = tmp_path / "new" / "ckpt"
    with pytest.raises(FvError) as info:
        run_import(small, "timm:resnet18", 3, out, half=True)
    assert "self-check failed" in one_line(info) and "differ" in str(info.value)
    assert not (tmp_path / "new").exists() and list(tmp_path.iterdir()) == []


def test_float16_weights_pass_within_their_tolerance(small, tmp_path):
    result = run_import(small, "timm:resnet18", 3, tmp_path / "ckpt", half=True)
    assert 0 < result.difference <= importing.TOLERANCE[True]


def test_an_existing_folder_is_kept_unless_forced(small, tmp_path):
    out = tmp_path / "ckpt"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FvError, match="not empty"):
        run_import(small, "timm:resnet18", 3, out)
    assert (out / "keep.txt").exists()
    run_import(small, "timm:resnet18", 3, out, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").exists()


def test_classes_from_a_folder_are_imagefolders_sorted_names(tmp_path):
    for name in ("zebra", "ant", "Moth"):
        (tmp_path / "train" / name).mkdir(parents=True)
    assert classes_from_folder(tmp_path / "train") == ["Moth", "ant", "zebra"]
    (tmp_path / "test").mkdir()
    with pytest.raises(FvError, match="pass .*train"):
        classes_from_folder(tmp_path)


def test_a_hand_edited_card_of_an_imported_model_is_a_one_line_problem(small, tmp_path):
    good = run_import(small, "timm:resnet18", 3, tmp_path / "ok" / "good").path
    card = json.loads((good / "card.json").read_text())
    for name, change in {"nohead": {"builder": {"head_path": "fc"}},
                         "hub": {"arch": "timm:hf-hub:someone/model"},
                         "nosuch": {"arch": "torchvision:no_such_net"}}.items():
        folder = tmp_path / "ok" / name
        folder.mkdir()
        (folder / "model.safetensors").write_bytes((good / "model.safetensors").read_bytes())
        (folder / "card.json").write_text(json.dumps({**card, **change}))
    classifiers, problems = discover(tmp_path / "ok", backend="pytorch")
    assert [c.name for c in classifiers] == ["good"]
    reasons = {p.path: p.reason for p in problems}
    assert "'builder' of timm:resnet18 must give" in reasons["nohead"]
    assert "unknown architecture 'timm:hf-hub:someone/model'" in reasons["hub"]
    assert "torchvision has no model 'no_such_net'" in reasons["nosuch"]

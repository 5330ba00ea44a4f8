"""Hostile and broken checkpoints: a ``.pth`` whose pickle would run code is never unpickled
(read_state_dict, import-pth, --pretrained PATH, discovery, the app), and every broken folder is
skipped with a one-line reason while the good checkpoints load."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import make_checkpoint
from test_app import navigation_mode  # noqa: F401 - AppTest runs as a live server does

from fvcore.checkpoints.catalog import CARD, WEIGHTS, scan
from fvcore.cli import main
from fvcore.errors import FvError
from fvcore.inference.loading import discover, load_checkpoint
from fvcore.models.pretrained import read_state_dict
from fvcore.models.registry import create_model

pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol")


class Payload:
    """Unpickling this runs ``exec``, which writes ``marker``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('pwned')",)


def hostile_files(folder: Path, marker: Path) -> dict[str, Path]:
    """The same payload in every shape a weights file can take."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {"features.0.weight": torch.zeros(2, 2), "evil": Payload(marker)}
    files = {"zip.pth": folder / "best_model.pth", "legacy.pth": folder / "legacy.pth",
             "nested.pt": folder / "nested.pt", "raw-pickle.pth": folder / "raw.pth"}
    torch.save(state, files["zip.pth"])
    torch.save(state, files["legacy.pth"], _use_new_zipfile_serialization=False)
    torch.save({"state_dict": state, "epoch": 3}, files["nested.pt"])
    files["raw-pickle.pth"].write_bytes(pickle.dumps(state))
    return files


@pytest.fixture()
def marker(tmp_path) -> Path:
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "the pickle payload ran"


@pytest.fixture()
def evil(tmp_path, marker) -> dict[str, Path]:
    return hostile_files(tmp_path / "evil", marker)


def test_the_payload_is_live_when_unpickled_unsafely(tmp_path):
    # the control: a full unpickle of these files does run code, so "no marker" below means
    # the payload was refused, not that it was harmless
    control = tmp_path / "control"
    files = hostile_files(tmp_path / "c", control)
    torch.load(files["zip.pth"], weights_only=False)
    assert control.read_text() == "pwned"
    control.unlink()
    pickle.loads(files["raw-pickle.pth"].read_bytes())
    assert control.exists()


@pytest.mark.parametrize("kind", ["zip.pth", "legacy.pth", "nested.pt", "raw-pickle.pth"])
def test_read_state_dict_refuses_a_code_running_pickle(evil, kind):
    with pytest.raises(FvError) as info:
        read_state_dict(evil[kind])
    message = str(info.value)
    assert message.startswith(str(evil[kind])) and "\n" not in message
    assert "refused to load" in message or "not a state dict" in message
    if "refused to load" in message:     # names what it refused, not torch's general advice
        assert "Unsupported" in message and "In PyTorch 2.6" not in message


@pytest.mark.parametrize("kind", ["zip.pth", "legacy.pth", "nested.pt", "raw-pickle.pth"])
def test_import_pth_refuses_a_code_running_pickle(evil, kind, tmp_path, capsys):
    classes = tmp_path / "classes.txt"
    classes.write_text("cat\ndog\n")
    out = tmp_path / "imported"
    code = main(["import-pth", str(evil[kind]), "--arch", "cnn", "--classes", str(classes),
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith(f"error: {evil[kind]}: ") and err.count("\n") == 1
    assert not (out / WEIGHTS).exists()


@pytest.mark.parametrize("kind", ["zip.pth", "raw-pickle.pth"])
def test_import_pth_subprocess_prints_only_our_one_line_refusal(evil, kind, tmp_path):
    # torch remarks on a raw pickle ("Detected pickle protocol 4 ...") before refusing it: the
    # user sees our one line and nothing else
    classes = tmp_path / "classes.txt"
    classes.write_text("cat\ndog\n")
    proc = subprocess.run([sys.executable, "-m", "fvcore", "import-pth", str(evil[kind]),
                           "--arch", "cnn", "--classes", str(classes), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    [line] = proc.stderr.splitlines()
    assert proc.returncode == 1 and line.startswith(f"error: {evil[kind]}: refused to load")


def test_pretrained_path_refuses_a_code_running_pickle(evil):
    with pytest.raises(FvError, match="refused to load"):
        create_model("cnn", 3, pretrained=str(evil["zip.pth"]))


def test_train_with_pretrained_path_refuses_a_code_running_pickle(evil, tiny_data, tmp_path,
                                                                capsys):
    code = main(["train", "--arch", "cnn", "--data", str(tiny_data), "--out",
                 str(tmp_path / "out"), "--pretrained", str(evil["legacy.pth"]), "--epochs", "1",
                 "--image-size", "32", "--runs-db", str(tmp_path / "runs.db")])
    assert code == 1 and "refused to load" in capsys.readouterr().err
    assert not (tmp_path / "out" / WEIGHTS).exists()


# --- discovery: broken folders beside good ones --------------------------------------------

def _copy(good: Path, folder: Path, **card_changes) -> Path:
    shutil.copytree(good, folder)
    if card_changes:
        card = json.loads((folder / CARD).read_text())
        card.update(card_changes)
        (folder / CARD).write_text(json.dumps(card))
    return folder


def _build_zoo(root: Path, good: Path, marker: Path) -> dict[str, str]:
    """A checkpoints tree: the good CNN, hostile folders and broken ones.
    Returns folder name -> expected reason (substring) for each folder that must be skipped."""
    shutil.copytree(good, root / "shapes" / "cnn")
    evil = hostile_files(root / "shapes" / "loose-pth", marker)       # no card: not a checkpoint
    pickled = root / "shapes" / "pickled-weights"                     # card + .pth, no safetensors
    _copy(good, pickled)
    (pickled / WEIGHTS).unlink()
    shutil.copy(evil["zip.pth"], pickled / "model.pth")
    disguised = _copy(good, root / "shapes" / "disguised")           # a pickle named .safetensors
    shutil.copy(evil["zip.pth"], disguised / WEIGHTS)
    weights = (good / WEIGHTS).read_bytes()
    (_copy(good, root / "shapes" / "corrupt") / WEIGHTS).write_bytes(os.urandom(4096))
    (_copy(good, root / "shapes" / "truncated") / WEIGHTS).write_bytes(weights[: len(weights) // 2])
    (_copy(good, root / "shapes" / "header-bomb") / WEIGHTS).write_bytes(
        struct.pack("<Q", 2 ** 62) + b"{}")
    (_copy(good, root / "shapes" / "empty-weights") / WEIGHTS).write_bytes(b"")
    _copy(good, root / "shapes" / "four-classes",
          classes=["circle", "square", "triangle", "star"])
    _copy(good, root / "shapes" / "unknown-arch", arch="resnet9000")
    _copy(good, root / "shapes" / "wrong-arch", arch="cnn_attention")
    _copy(good, root / "shapes" / "wrong-type", schema_version="1")
    (_copy(good, root / "shapes" / "no-card") / CARD).unlink()
    (_copy(good, root / "shapes" / "no-weights") / WEIGHTS).unlink()
    (_copy(good, root / "shapes" / "bad-json") / CARD).write_text('{"arch": "cnn", ')
    (_copy(good, root / "shapes" / "json-list") / CARD).write_text("[1, 2, 3]")
    (_copy(good, root / "shapes" / "binary-card") / CARD).write_bytes(b"\xff\xfe\x00garbage")
    return {"pickled-weights": "missing model.safetensors",
            "disguised": "corrupt model.safetensors",
            "corrupt": "corrupt model.safetensors",
            "truncated": "corrupt model.safetensors",
            "header-bomb": "corrupt model.safetensors",
            "empty-weights": "corrupt model.safetensors",
            "four-classes": "card lists 4 classes, weights have 3 outputs",
            "unknown-arch": "unknown architecture 'resnet9000'",
            "wrong-arch": "weights do not match arch cnn_attention",
            "wrong-type": "'schema_version' has the wrong type",
            "no-card": "missing card.json",
            "no-weights": "missing model.safetensors",
            "bad-json": "card.json is not valid JSON",
            "json-list": "card.json is not a JSON object",
            "binary-card": "card.json is not valid JSON"}


@pytest.fixture(scope="module")
def good(tmp_path_factory, tiny_data) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("good") / "cnn", "cnn", tiny_data)


@pytest.fixture()
def zoo(tmp_path, good, marker) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "checkpoints"
    return root, _build_zoo(root, good, marker)


def test_discover_loads_the_good_checkpoint_and_skips_each_broken_one_with_its_reason(zoo):
    root, expected = zoo
    classifiers, problems = discover(root, backend="pytorch")
    assert [c.name for c in classifiers] == ["shapes/cnn"]
    reasons = {p.path.removeprefix("shapes/"): p.reason for p in problems}
    assert sorted(reasons) == sorted(expected)
    for folder, reason in reasons.items():
        assert expected[folder] in reason, (folder, reason)
        assert "\n" not in reason and len(reason) < 300


def test_scan_reads_no_tensors_and_still_skips_what_it_can_tell_is_broken(zoo):
    root, expected = zoo
    entries, problems = scan(root)
    skipped = {p.path.removeprefix("shapes/") for p in problems}
    # scan reads cards and safetensors headers only (the header check already catches a
    # truncated file); a strict-load mismatch (wrong-arch) shows when the weights are loaded
    assert skipped == set(expected) - {"wrong-arch"}
    assert "shapes/cnn" in {e.name for e in entries} and "shapes/loose-pth" not in skipped


def test_load_checkpoint_of_a_hostile_folder_raises_one_line(zoo):
    root, _ = zoo
    for folder in ("pickled-weights", "disguised"):
        with pytest.raises(FvError) as info:
            load_checkpoint(root / "shapes" / folder, backend="pytorch")
        assert "\n" not in str(info.value)


def test_cli_predict_warns_about_skipped_folders_and_still_predicts(zoo, tmp_path, capsys,
                                                                    monkeypatch):
    root, expected = zoo
    monkeypatch.setenv("FVCORE_BACKEND", "pytorch")
    from PIL import Image
    from skimage import data
    photo = tmp_path / "chelsea.png"
    Image.fromarray(data.chelsea()).save(photo)
    assert main(["predict", str(photo), "--checkpoints", str(root), "--json"]) == 0
    captured = capsys.readouterr()
    assert list(json.loads(captured.out)["results"][0]["predictions"]) == ["shapes/cnn"]
    warnings = [x for x in captured.err.splitlines() if x.startswith("warning: skipped")]
    assert len(warnings) == len(expected) and "Traceback" not in captured.err


def test_the_app_lists_skipped_folders_and_predicts_with_the_good_one(zoo, monkeypatch):
    import io

    from PIL import Image
    from skimage import data
    from streamlit.testing.v1 import AppTest

    from fvcore import settings
    root, expected = zoo
    monkeypatch.setenv(settings.ENV_CHECKPOINTS, str(root))
    monkeypatch.setenv("FVCORE_BACKEND", "pytorch")
    app_py = Path(__file__).resolve().parent.parent / "app.py"
    at = AppTest.from_file(str(app_py), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    shown = "\n".join(w.value for w in at.warning)
    late = {"wrong-arch"}    # found when the weights load, on the pages that load models
    for folder in set(expected) - late:
        assert f"shapes/{folder}" in shown
    at.switch_page("pages/predict.py").run()
    photo = io.BytesIO()
    Image.fromarray(data.chelsea()).save(photo, format="PNG")
    at.file_uploader(key="predict_upload").set_value(
        ("chelsea.png", photo.getvalue(), "image/png")).run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == len(late) and all("\n" not in e for e in errors)
    for folder in late:
        assert any(f"shapes/{folder}" in e and expected[folder] in e for e in errors), errors
    assert "chelsea.png" in [h.value for h in at.subheader]

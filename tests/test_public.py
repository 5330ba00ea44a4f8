"""Public mode (FVCORE_PUBLIC=1) through AppTest: the roots are the operator's (no folder box),
no page shows an absolute server path, an operator page refuses a visitor in one line until the
operator token is typed, and predictions still work within the visitor's limits."""
from __future__ import annotations

import dataclasses
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import test_app
from PIL import Image
from skimage import data as skdata
from streamlit.testing.v1 import AppTest

from fvcore import settings
from fvcore.app import access, cache, shell
from fvcore.training.runs import end_run, log_epoch, start_run

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "correct-horse-battery-staple"
TEXT_ELEMENTS = ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error",
                 "success", "code", "json", "text", "exception")


def png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


navigation_mode = test_app.navigation_mode   # the same fixture as tests/test_app.py


@pytest.fixture(scope="module")
def server_root(tmp_path_factory, checkpoint_root, tiny_data) -> Path:
    """The fixture checkpoints, one broken folder, a card whose command names absolute server
    paths, and a run registry whose run does too."""
    root = tmp_path_factory.mktemp("public") / "checkpoints"
    shutil.copytree(checkpoint_root / "shapes", root / "shapes")
    (root / "shapes" / "broken").mkdir()
    (root / "shapes" / "broken" / "card.json").write_text('{"arch": "cnn"}')
    card_path = root / "shapes" / "cnn" / "card.json"
    card = json.loads(card_path.read_text())
    card["command"] = f"python -m fvcore train --data {tiny_data} --out {root}/shapes/cnn"
    card_path.write_text(json.dumps(card))
    db = root.parent / "runs.db"
    run = start_run(db, arch="cnn", dataset="shapes", fingerprint="f", out=str(root / "x"),
                    args={"data": str(tiny_data), "lr": 1e-3})
    log_epoch(db, run, {"epoch": 1, "train_loss": 1.0, "val_loss": 1.1, "train_acc": 0.5,
                        "val_acc": 0.4, "lr": 1e-3, "seconds": 1.0, "images_per_s": 9.0})
    end_run(db, run, "finished")
    return root


@pytest.fixture
def public(server_root, tiny_data, monkeypatch):
    monkeypatch.setenv(settings.ENV_PUBLIC, "1")
    monkeypatch.setenv(settings.ENV_OPERATOR_TOKEN, TOKEN)
    monkeypatch.setenv(settings.ENV_CHECKPOINTS, str(server_root))
    monkeypatch.setenv(settings.ENV_RUNS_DB, str(server_root.parent / "runs.db"))
    monkeypatch.setenv(settings.ENV_DATA, str(tiny_data))
    monkeypatch.setenv(settings.ENV_BACKEND, "pytorch")
    for name in (settings.ENV_SAMPLES, settings.ENV_MAX_JOBS, settings.ENV_SESSION_JOBS,
                 settings.ENV_MAX_IMAGES, settings.ENV_OPERATOR_EMAILS):
        monkeypatch.delenv(name, raising=False)
    return server_root


def start() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()


def page_text(at: AppTest) -> str:
    """Every text the page and its sidebar show: elements, widget labels, values and options,
    tables."""
    parts = []
    for kind in TEXT_ELEMENTS:
        parts += [str(e.value) for e in at.get(kind)]
    for widget in (*at.text_input, *at.selectbox, *at.multiselect, *at.radio):
        parts += [str(widget.label), str(widget.value), *map(str, getattr(widget, "options", []))]
    parts += [frame.value.to_string() for frame in at.dataframe]
    return "\n".join(parts)


def server_paths(tiny_data: Path, root: Path) -> list[str]:
    return [str(ROOT), str(root), str(root.resolve()), str(tiny_data), "/tmp", "/root", "/etc"]


@pytest.mark.parametrize("page", shell.PAGES, ids=[p.title for p in shell.PAGES])
def test_no_page_shows_a_server_path_or_a_folder_box(public, tiny_data, page):
    at = start().switch_page(page.path).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert not [t for t in at.text_input if t.key in ("checkpoints_dir", "runs_db")]
    text = page_text(at)
    assert [p for p in server_paths(tiny_data, public) if p in text] == []
    if page.title == "Home":
        assert "shapes/broken" in text and at.sidebar.selectbox(key="dataset").value == "shapes"
    if page.title == "Compare":
        at.selectbox(key="compare_card_model").set_value("cnn").run()
        command = at.code[0].value
        assert command == f"python -m fvcore train --data {tiny_data.name} --out shapes/cnn"


def test_an_operator_page_refuses_a_visitor_until_the_token_is_typed(public, monkeypatch):
    pages = tuple(dataclasses.replace(p, operator=p.title == "Runs") for p in shell.PAGES)
    monkeypatch.setattr(shell, "PAGES", pages)
    at = start().switch_page("pages/runs.py").run()
    assert [t.value for t in at.title] == ["Runs"] and not at.dataframe
    assert [i.value for i in at.info] == [
        "The Runs page is for the operator of this public server: sign in as the operator in "
        "the sidebar."]
    at.sidebar.text_input(key=access.TOKEN_KEY).input("guess").run()
    assert [e.value for e in at.sidebar.error] == ["Wrong token."] and not at.dataframe
    at.sidebar.text_input(key=access.TOKEN_KEY).input(TOKEN).run()
    assert not at.exception and not at.error
    assert at.title[0].value == "Training runs" and len(at.dataframe) == 1
    assert not [t for t in at.sidebar.text_input if t.key == access.TOKEN_KEY]   # box gone
    assert "Signed in as the operator." in [c.value for c in at.sidebar.caption]
    at.sidebar.button(key="operator_sign_out").click().run()
    assert not at.dataframe and "is for the operator" in at.info[0].value


def test_an_operator_email_signed_in_with_st_login_is_the_operator(public, monkeypatch):
    monkeypatch.setenv(settings.ENV_OPERATOR_EMAILS, "Op@Example.org, other@example.org")
    monkeypatch.setattr(access, "_login_email", lambda: "op@example.org")
    pages = tuple(dataclasses.replace(p, operator=p.title == "Runs") for p in shell.PAGES)
    monkeypatch.setattr(shell, "PAGES", pages)
    at = start().switch_page("pages/runs.py").run()
    assert at.title[0].value == "Training runs" and len(at.dataframe) == 1


def test_public_predict_works_and_a_visitor_over_the_limit_gets_one_line(public, monkeypatch):
    monkeypatch.setenv(settings.ENV_SESSION_JOBS, "1")
    cache.predict_files.clear()
    at = start().switch_page("pages/predict.py").run()
    at.file_uploader(key="predict_upload").set_value(
        ("chelsea.png", png(skdata.chelsea()), "image/png")).run()
    assert not at.exception and not at.error
    assert "Ensemble (soft vote)" in [m.label for m in at.metric]
    at.slider(key="predict_k").set_value(2).run()          # a cached result: not a new run
    assert not at.error and "Ensemble (soft vote)" in [m.label for m in at.metric]
    at.file_uploader(key="predict_upload").set_value(
        ("coffee.png", png(skdata.coffee()), "image/png")).run()
    assert not at.exception and not at.metric
    assert [e.value for e in at.error] == [
        "limit reached: 1 prediction runs in the last 10 min for this visitor; retry in about "
        "10 min"]


def test_server_paths_are_shown_relative_to_their_root(monkeypatch, tmp_path):
    root = tmp_path / "zoo"
    monkeypatch.setenv(settings.ENV_CHECKPOINTS, str(root))
    monkeypatch.setenv(settings.ENV_DATA, str(tmp_path / "data"))
    message = f"{root}/shapes/cnn: corrupt; see /etc/passwd and {tmp_path}/data/x/y.png"
    monkeypatch.delenv(settings.ENV_PUBLIC, raising=False)
    assert access.shown(message, root) == (
        f"shapes/cnn: corrupt; see /etc/passwd and {tmp_path}/data/x/y.png")
    assert access.shown(message, root, keep_local=True) == message
    monkeypatch.setenv(settings.ENV_PUBLIC, "1")
    assert access.shown(message, root) == "shapes/cnn: corrupt; see …/passwd and x/y.png"
    assert access.shown("1/2 of images / s, ../shared/datasets") == (
        "1/2 of images / s, ../shared/datasets")


def test_a_visitor_sees_dataset_health_but_adding_a_dataset_is_the_operators(public):
    at = start().switch_page("pages/datasets.py").run()
    assert not at.exception and not at.error
    assert at.success[0].value == "ready to train: 3 classes, 132 images"
    assert [i.value for i in at.info] == [
        "Adding a dataset is for the operator of this public server: sign in as the operator in "
        "the sidebar."]
    assert not [b for b in at.button if b.key == "datasets_add"]
    at.sidebar.text_input(key=access.TOKEN_KEY).input(TOKEN).run()
    assert [b.key for b in at.button if b.key == "datasets_add"] == ["datasets_add"]
    assert at.radio(key="datasets_source").options == ["Upload a zip", "A folder on the server"]

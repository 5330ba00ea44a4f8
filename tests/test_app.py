"""The Streamlit app through AppTest: every page of the one page list renders on the fixture
checkpoints, and the features of each page work (uploads, bad uploads, CAM grid, dashboard)."""
from __future__ import annotations

import base64
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage import data as skdata
from streamlit.testing.v1 import AppTest

from fvcore import settings
from fvcore.app import cache, shell
from fvcore.checkpoints.card import ModelCard
from fvcore.datasets.zipdata import zip_bytes
from fvcore.evaluation.evaluate import metrics_by_split, read_predictions
from fvcore.explain.cam import CAM_METHODS
from fvcore.training.runs import end_run, log_epoch, start_run

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("cnn", "efficientnet_lite0", "vit")
TIMEOUT = 120


def png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(autouse=True)
def navigation_mode(monkeypatch):
    """Run every AppTest run the way a live server runs after its first page view: through
    app.py's st.navigation. (AppTest re-detects the pages/ folder before each run and would
    otherwise start in Streamlit's folder mode, which a live server leaves for good at its first
    st.navigation call; fvcore.app.shell.selection handles that first run, the browser test covers
    it with a deep link.) Streamlit is pinned in requirements.txt."""
    from streamlit.runtime.pages_manager import PagesManager
    detect = PagesManager.__init__

    def init(self, *args, **kwargs):
        detect(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)
    return detect


@pytest.fixture(scope="module")
def app_root(tmp_path_factory, checkpoint_root) -> Path:
    """The fixture checkpoints plus one broken folder (weights that are not safetensors)."""
    root = tmp_path_factory.mktemp("app-checkpoints")
    shutil.copytree(checkpoint_root / "shapes", root / "shapes")
    broken = root / "shapes" / "broken"
    broken.mkdir()
    shutil.copy(root / "shapes" / "cnn" / "card.json", broken / "card.json")
    (broken / "model.safetensors").write_bytes(b"this is not a safetensors file")
    return root


@pytest.fixture
def app(app_root, tiny_data, tmp_path, monkeypatch) -> AppTest:
    """The app pointed at the fixture tree (PyTorch backend: no ONNX export in unit tests)."""
    monkeypatch.setenv(settings.ENV_CHECKPOINTS, str(app_root))
    monkeypatch.setenv(settings.ENV_RUNS_DB, str(tmp_path / "runs.db"))
    monkeypatch.setenv("FVCORE_DATA", str(tiny_data))
    monkeypatch.setenv("FVCORE_BACKEND", "pytorch")
    monkeypatch.delenv(settings.ENV_SAMPLES, raising=False)
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()


def open_page(app: AppTest, path: str) -> AppTest:
    return app.switch_page(path).run()


def no_failure(app: AppTest) -> None:
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]


@pytest.mark.parametrize("page", shell.PAGES, ids=[p.title for p in shell.PAGES])
def test_every_page_renders_on_the_fixture_checkpoints(app, page):
    open_page(app, page.path)
    no_failure(app)
    assert app.title, f"{page.title} has no title"


def test_home_lists_models_and_skipped_folders_without_loading_any(app_root, monkeypatch):
    monkeypatch.setenv(settings.ENV_CHECKPOINTS, str(app_root))

    def no_loading(*args, **kwargs):
        raise AssertionError("the home page must not load a model")

    monkeypatch.setattr(cache, "_load", no_loading)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    no_failure(at)
    table = at.dataframe[0].value
    assert sorted(table["model"]) == sorted(MODELS)
    assert list(table["accuracy"]) == sorted(table["accuracy"], reverse=True)  # best first
    warning = at.warning[0].value
    assert "shapes/broken" in warning and "corrupt model.safetensors" in warning


def test_missing_checkpoints_folder_gives_a_hint_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv(settings.ENV_CHECKPOINTS, str(tmp_path / "nowhere"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert "folder not found" in at.sidebar.error[0].value
    open_page(at, "pages/predict.py")
    assert not at.exception and "No checkpoints found" in at.info[0].value


def test_sidebar_is_on_every_page_and_switching_the_folder_takes_effect(app, tmp_path):
    open_page(app, "pages/compare.py")
    assert app.sidebar.text_input(key="checkpoints_dir").value
    app.sidebar.text_input(key="checkpoints_dir").set_value(str(tmp_path)).run()
    assert not app.exception and "No checkpoints found" in app.info[0].value
    assert not app.sidebar.selectbox  # no dataset to pick


def test_a_page_run_in_folder_mode_reruns_through_app_py(app, navigation_mode, monkeypatch):
    from streamlit.runtime.pages_manager import PagesManager
    monkeypatch.setattr(PagesManager, "__init__", navigation_mode)  # AppTest's own detection
    open_page(app, "pages/predict.py")
    no_failure(app)
    assert app.title[0].value == "Predict"
    assert app.sidebar.multiselect[0].value == list(MODELS)


def test_predict_shows_one_result_block_per_model_and_the_ensemble(app):
    open_page(app, "pages/predict.py")
    app.file_uploader(key="predict_upload").set_value(
        ("chelsea.png", png(skdata.chelsea()), "image/png")).run()
    no_failure(app)
    labels = [m.label for m in app.metric]
    assert sorted(label for label in labels if label in MODELS) == sorted(MODELS)
    assert "Ensemble (soft vote)" in labels
    assert len(app.get("plotly_chart")) == len(MODELS)


def test_the_same_photo_twice_gets_two_result_blocks_not_a_duplicate_element_error(app):
    open_page(app, "pages/predict.py")
    photo = png(skdata.chelsea())
    app.file_uploader(key="predict_upload").set_value([
        ("chelsea.png", photo, "image/png"), ("chelsea-copy.png", photo, "image/png")]).run()
    no_failure(app)
    assert len(app.get("plotly_chart")) == 2 * len(MODELS)   # equal bars, each its own chart


def test_bad_upload_shows_error_and_the_good_one_still_gets_results(app):
    open_page(app, "pages/predict.py")
    app.file_uploader(key="predict_upload").set_value([
        ("notes.jpg", b"these are not pixels", "image/jpeg"),
        ("coffee.png", png(skdata.coffee()), "image/png")]).run()
    assert not app.exception
    assert len(app.error) == 1
    assert app.error[0].value.startswith("notes.jpg: ") and "\n" not in app.error[0].value
    assert sorted(m.label for m in app.metric if m.label in MODELS) == sorted(MODELS)


def test_gradcam_shows_one_heatmap_per_model_with_faithfulness(app):
    open_page(app, "pages/gradcam.py")
    app.file_uploader(key="cam_upload").set_value(
        ("chelsea.png", png(skdata.chelsea()), "image/png"))
    app.selectbox(key="cam_method").set_value("gradcam++").run()
    no_failure(app)
    assert len(app.get("image")) == len(MODELS)
    assert sum("faithfulness" in m.value for m in app.markdown) == len(MODELS)
    assert app.get("download_button")


def test_a_broken_gradcam_upload_is_one_line_naming_the_file_not_one_per_model(app):
    open_page(app, "pages/gradcam.py")
    app.file_uploader(key="cam_upload").set_value(
        ("notes.jpg", b"these are not pixels", "image/jpeg")).run()
    assert not app.exception
    assert [e.value.split(": ")[0] for e in app.error] == ["notes.jpg"]
    assert "\n" not in app.error[0].value
    assert not app.get("image") and not app.get("download_button")


def test_the_gradcam_menu_is_the_cam_table(app):
    open_page(app, "pages/gradcam.py")
    no_failure(app)
    menu = app.selectbox(key="cam_method")
    assert menu.options == [method.label for method in CAM_METHODS.values()]
    assert menu.value == next(iter(CAM_METHODS))


def test_each_model_is_loaded_once_per_page_run(app, monkeypatch):
    loads = []
    load = cache._load

    def counted(path, stamp):
        loads.append(Path(path).name)
        return load(path, stamp)

    monkeypatch.setattr(cache, "_load", counted)
    cache.predict_files.clear()   # a result cached by another test would skip the prediction
    cache._explain.clear()
    open_page(app, "pages/predict.py")
    app.sidebar.multiselect[0].set_value(["cnn", "vit"]).run()
    assert loads == []            # nothing to predict yet: no model loaded
    app.file_uploader(key="predict_upload").set_value(
        ("astronaut.png", png(skdata.astronaut()), "image/png")).run()
    no_failure(app)
    assert sorted(m.label for m in app.metric) == ["Ensemble (soft vote)", "cnn", "vit"]
    assert sorted(loads) == ["cnn", "vit"]
    loads.clear()
    open_page(app, "pages/gradcam.py")
    app.file_uploader(key="cam_upload").set_value(
        ("astronaut.png", png(skdata.astronaut()), "image/png")).run()
    no_failure(app)
    assert len(app.get("image")) == 2
    assert sorted(loads) == ["cnn", "vit"]


def test_gradcam_explains_a_chosen_class(app):
    open_page(app, "pages/gradcam.py")
    app.file_uploader(key="cam_upload").set_value(("coffee.png", png(skdata.coffee()), "image/png"))
    app.selectbox(key="cam_target").set_value("triangle").run()
    no_failure(app)
    assert sum("p(triangle)" in m.value for m in app.markdown) == len(MODELS)


def test_compare_shows_the_charts_and_the_misclassified_gallery(app):
    open_page(app, "pages/compare.py")
    no_failure(app)
    # efficiency, loss and accuracy curves, confusion, per-class F1, reliability, McNemar
    assert len(app.get("plotly_chart")) == 7
    assert app.get("image"), "the misclassified gallery shows the fixture's test images"


def test_the_misclassified_gallery_shows_blind_spots_and_photos_no_model_gets_right(app):
    open_page(app, "pages/compare.py")
    wrong_by = {}
    for which in ("model", "only", "all"):
        app.selectbox(key="gallery_which").set_value(which).run()
        no_failure(app)
        captions = [c.value for c in app.caption if " models" in c.value and "wrong in" in c.value]
        wrong_by[which] = {int(c.split("wrong in ")[1].split(" of")[0]) for c in captions}
        assert all(c.endswith(f"of {len(MODELS)} models") for c in captions)
    # the fixture's models share some mistakes and not others
    assert wrong_by == {"model": {1, 2, 3}, "only": {1}, "all": {len(MODELS)}}


def test_compare_shows_how_each_model_was_trained(app):
    open_page(app, "pages/compare.py")
    app.selectbox(key="compare_card_model").set_value("vit").run()
    no_failure(app)
    facts = next(m.value for m in app.markdown if "**initialisation**" in m.value)
    assert "| **architecture** | vit |" in facts and "scratch" in facts
    assert "| **epochs** | 4 run, best" in facts and "| **test accuracy** |" in facts
    assert [c.value for c in app.code] == ["pytest fixture"]   # the card's exact command


def test_compare_training_curves_one_split_at_a_time(app):
    open_page(app, "pages/compare.py")
    app.radio(key="curves_split").set_value("validation").run()
    no_failure(app)
    loss = json.loads(app.get("plotly_chart")[1].proto.spec)
    assert "validation only" in loss["layout"]["title"]["text"]
    names = [trace["name"] for trace in loss["data"]]
    assert len(names) == len(MODELS) and all("validation" in name for name in names)
    assert "validation per source" not in app.radio(key="curves_split").options  # one folder


def test_compare_draws_validation_accuracy_per_source_of_a_model_trained_on_two(app, app_root):
    history = app_root / "shapes" / "cnn" / "history.csv"
    kept = history.read_text()
    frame = pd.read_csv(history).assign(**{"val_acc:shelves": 0.9, "val_acc:web": 0.4})
    frame.to_csv(history, index=False)
    try:
        open_page(app, "pages/compare.py")
        app.radio(key="curves_split").set_value("validation per source").run()
        no_failure(app)
        accuracy = json.loads(app.get("plotly_chart")[2].proto.spec)
        dashed = {t["name"]: t["line"]["dash"] for t in accuracy["data"]
                  if t["line"]["dash"] != "solid"}
        assert dashed == {"cnn, validation: shelves": "dash", "cnn, validation: web": "dashdot"}
        assert not any("train" in t["name"] for t in accuracy["data"])
    finally:
        history.write_text(kept)


def test_compare_opens_on_the_best_model(app):
    open_page(app, "pages/compare.py")
    no_failure(app)
    overview = app.dataframe[0].value
    assert list(overview["accuracy"]) == sorted(overview["accuracy"], reverse=True)
    assert app.selectbox(key="compare_cm_model").value == overview["model"][0]


def test_compare_confusion_difference_of_two_models(app):
    open_page(app, "pages/compare.py")
    app.toggle(key="compare_cm_diff").set_value(True).run()
    no_failure(app)
    assert app.selectbox(key="compare_cm_other").value in MODELS


def test_evaluate_a_labelled_zip_and_report_skipped_files(app, tiny_data):
    files = {f"test/{p.parent.name}/{p.name}": p.read_bytes()
             for p in sorted((tiny_data / "test").rglob("*.png"))}
    files["test/circle/broken.png"] = b"not a png"
    files["test/README.txt"] = b"hello"
    open_page(app, "pages/evaluate.py")
    app.file_uploader(key="eval_zip").set_value(("shapes.zip", zip_bytes(files),
                                                 "application/zip")).run()
    app.button(key="eval_run").click().run()
    no_failure(app)
    assert sorted(app.dataframe[0].value["model"]) == sorted(MODELS)
    assert (app.dataframe[0].value["n_images"] == 24).all()
    skipped = app.warning[0].value
    assert "broken.png" in skipped and "README.txt" in skipped
    assert len(app.get("download_button")) == 2


def test_runs_page_shows_the_registry_and_curves(app, tmp_path):
    db = tmp_path / "runs.db"
    run = start_run(db, arch="cnn", dataset="shapes", fingerprint="f", out="o", args={"lr": 1})
    for epoch in (1, 2, 3):
        log_epoch(db, run, {"epoch": epoch, "train_loss": 1 / epoch, "val_loss": 1.2 / epoch,
                            "train_acc": 0.3 * epoch, "val_acc": 0.25 * epoch, "lr": 1e-3,
                            "seconds": 1.0, "images_per_s": 50.0})
    end_run(db, run, "finished")
    open_page(app, "pages/runs.py")
    no_failure(app)
    assert list(app.dataframe[0].value["id"]) == [run]
    assert len(app.get("plotly_chart")) == 2


def test_measuring_latency_adds_the_accuracy_vs_latency_chart(app):
    open_page(app, "pages/compare.py")
    app.button(key="compare_measure").click().run()
    no_failure(app)
    table = app.dataframe[0].value
    assert table["latency_ms"].notna().all() and (table["latency_ms"] > 0).all()
    assert len(app.get("plotly_chart")) == 8


def test_sample_folder_images_can_be_picked_instead_of_uploading(app, tiny_data, monkeypatch):
    monkeypatch.setenv(settings.ENV_SAMPLES, str(tiny_data / "test" / "circle"))
    open_page(app, "pages/predict.py")
    picker = app.multiselect(key="predict_samples")
    picker.set_value(picker.options[:2]).run()
    no_failure(app)
    assert sum(m.label in MODELS for m in app.metric) == 2 * len(MODELS)


def test_an_unexpected_failure_is_one_line_not_a_traceback(app, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire\nTraceback (most recent call last): ...")

    monkeypatch.setattr(cache, "predict_files", boom)
    open_page(app, "pages/predict.py")
    app.file_uploader(key="predict_upload").set_value(
        ("chelsea.png", png(skdata.chelsea()), "image/png")).run()
    assert not app.exception
    assert [e.value for e in app.error] == ["prediction failed: RuntimeError: disk on fire"]


def test_home_keeps_unfinished_models_out_of_the_table_and_says_how_far_they_are(
        app_root, tmp_path, monkeypatch):
    root = tmp_path / "ckpts"
    shutil.copytree(app_root / "shapes" / "cnn", root / "shapes" / "cnn")
    for name, in_training in (("running", True), ("unevaluated", False)):
        folder = root / "shapes" / name
        shutil.copytree(app_root / "shapes" / "vit", folder)
        card = json.loads((folder / "card.json").read_text())
        card["metrics"] = {}
        (folder / "card.json").write_text(json.dumps(card))
        (folder / "history.csv").write_text(
            "epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds\n"
            "1,2.0,0.30,2.1,0.25,0.001,10\n2,1.5,0.50,1.7,0.625,0.001,10\n"
            "3,1.2,0.60,1.8,0.5,0.001,10\n")
        if in_training:
            (folder / ".train").mkdir()
    monkeypatch.setenv(settings.ENV_CHECKPOINTS, str(root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    no_failure(at)
    assert list(at.dataframe[0].value["model"]) == ["cnn"]
    note = at.info[0].value
    assert "**running**: training not finished: 3 epochs" in note
    assert "best validation accuracy 62.5% (epoch 2)" in note
    assert "**unevaluated**: no test metrics yet" in note and "fvcore evaluate" in note
    assert sorted(at.sidebar.multiselect[0].options) == [
        "cnn", "running (training)", "unevaluated (not evaluated)"]
    assert len(at.sidebar.multiselect[0].value) == 3   # still selectable: best weights so far


@pytest.fixture(scope="module")
def domain_root(tmp_path_factory, checkpoint_root) -> Path:
    """The fixture checkpoints tested on two domains: alternate test rows come from "shelf" and
    "wild" in predictions.csv, and each card has the metrics of both."""
    root = tmp_path_factory.mktemp("domain-checkpoints")
    shutil.copytree(checkpoint_root / "shapes", root / "shapes")
    for folder in (root / "shapes").iterdir():
        card = ModelCard.read(folder)
        preds = read_predictions(folder, card.classes)
        preds.domains = ["shelf" if i % 2 == 0 else "wild" for i in range(len(preds.paths))]
        (folder / "predictions.csv").write_text(preds.to_csv(), encoding="utf-8")
        card.metrics_by_split = metrics_by_split(preds, card.groups)
        (folder / "card.json").write_text(card.to_json(), encoding="utf-8")
    return root


def heatmap_counts(app: AppTest, title: str) -> np.ndarray:
    """The cell values of the plotly heatmap whose title starts with ``title``."""
    for chart in app.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if spec["layout"]["title"]["text"].startswith(title):
            z = spec["data"][0]["z"]
            if isinstance(z, dict):   # plotly's typed-array encoding
                flat = np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"])
                shape = [int(n) for n in str(z.get("shape", len(flat))).split(",")]
                return flat.reshape(shape)
            return np.asarray(z, dtype=float)
    raise AssertionError(f"no heatmap titled {title!r}")


def test_two_test_domains_show_per_domain_accuracy_and_a_test_split_choice(
        app, domain_root, monkeypatch):
    monkeypatch.setenv(settings.ENV_CHECKPOINTS, str(domain_root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    no_failure(at)
    home = at.dataframe[0].value
    assert {"test_accuracy:shelf", "test_accuracy:wild", "domain_gap"} <= set(home.columns)
    cards = {m: ModelCard.read(domain_root / "shapes" / m) for m in MODELS}
    for row in home.itertuples():
        wild = cards[row.model].metrics_by_split["wild"]["accuracy"]
        assert home.loc[row.Index, "test_accuracy:wild"] == pytest.approx(wild * 100)

    open_page(at, "pages/compare.py")
    no_failure(at)
    at.toggle(key="compare_cm_norm").set_value(False).run()
    assert heatmap_counts(at, "Confusion matrix of").sum() == 24      # all test images
    at.selectbox(key="compare_domain").set_value("wild").run()
    no_failure(at)
    model = at.selectbox(key="compare_cm_model").value
    wild = read_predictions(domain_root / "shapes" / model, cards[model].classes).subset("wild")
    expected = np.zeros((3, 3))
    np.add.at(expected, (wild.labels, wild.preds), 1)   # that domain's rows alone
    counts = heatmap_counts(at, "Confusion matrix of")
    assert counts.sum() == 12 and (counts == expected).all()
    assert any("Test split: wild" in c.value for c in at.caption)   # the gallery follows


def test_one_test_domain_shows_no_test_split_choice(app):
    open_page(app, "pages/compare.py")
    no_failure(app)
    assert not [s for s in app.selectbox if s.key == "compare_domain"]


# --- the Import page ---------------------------------------------------------------------------

@pytest.fixture
def import_app(checkpoint_root, tiny_data, tmp_path, monkeypatch) -> tuple[AppTest, Path]:
    """The app over a fresh copy of one fixture checkpoint (imports write into it)."""
    root = tmp_path / "checkpoints"
    shutil.copytree(checkpoint_root / "shapes" / "cnn", root / "shapes" / "cnn")
    monkeypatch.setenv(settings.ENV_CHECKPOINTS, str(root))
    monkeypatch.setenv(settings.ENV_RUNS_DB, str(tmp_path / "runs.db"))
    monkeypatch.setenv("FVCORE_DATA", str(tiny_data))
    monkeypatch.setenv("FVCORE_BACKEND", "pytorch")
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    return open_page(app, "pages/import_model.py"), root


def notebook_state_dict() -> bytes:
    """A notebook's timm ResNet-18 for the three shapes, saved as its state dict."""
    import timm
    import torch
    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False, num_classes=3).eval()
    out = io.BytesIO()
    torch.save(model.state_dict(), out)
    return out.getvalue()


def test_import_page_adds_a_notebook_model_to_a_dataset_group_and_evaluates_it(
        import_app, tiny_data):
    app, root = import_app
    assert app.selectbox(key="import_dataset").value == tiny_data.name   # the known dataset
    app.file_uploader(key="import_upload").set_value(
        ("best_model.pth", notebook_state_dict(), "application/octet-stream"))
    app.text_input(key="import_arch_other").set_value("timm:resnet18")
    app.text_input(key=f"import_group::{tiny_data.name}").set_value("shapes")
    app.number_input(key="import_size").set_value(32)
    app.number_input(key="import_resize").set_value(36)
    app.checkbox(key="import_evaluate").check().run()
    app.button(key="import_run").click().run()
    no_failure(app)
    message = app.success[0].value
    assert "timm:resnet18, head fc = Linear(512, 3)" in message and "Test accuracy" in message
    folder = root / "shapes" / "timm-resnet18-imported"
    assert read_predictions(folder, ["circle", "square", "triangle"]).probs.shape == (24, 3)
    card = ModelCard.read(folder)
    assert card.dataset == "shapes" and card.metrics["n_images"] == 24
    assert card.image_size == 32 and card.resize_size == 36
    # the sidebar lists it at once, in the shapes group, on every page
    assert "timm-resnet18-imported" in app.sidebar.multiselect[0].options
    open_page(app, "pages/compare.py")
    no_failure(app)
    assert "timm-resnet18-imported" in app.sidebar.multiselect[0].value


def test_import_page_wrong_file_is_one_line_error_and_writes_nothing(import_app):
    app, root = import_app
    app.file_uploader(key="import_upload").set_value(
        ("best_model.pth", b"this is not a state dict", "application/octet-stream")).run()
    app.button(key="import_run").click().run()
    assert not app.exception and len(app.error) == 1
    assert "refused to load" in app.error[0].value and "\n" not in app.error[0].value
    assert sorted(p.name for p in (root / "shapes").iterdir()) == ["cnn"]


def test_home_offers_each_checkpoints_onnx_export(app):
    buttons = app.get("download_button")
    assert [b.proto.label for b in buttons] == [f"{name}.onnx" for name in MODELS]


# -- the Datasets page ---------------------------------------------------------------------------

@pytest.fixture
def datasets_app(app_root, tiny_data, tmp_path, monkeypatch) -> tuple[AppTest, Path]:
    """The app over a data root holding a copy of the shapes dataset (adding writes into it)."""
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data / "shapes")
    monkeypatch.setenv(settings.ENV_CHECKPOINTS, str(app_root))
    monkeypatch.setenv(settings.ENV_RUNS_DB, str(tmp_path / "runs.db"))
    monkeypatch.setenv(settings.ENV_DATA, str(data))
    monkeypatch.setenv(settings.ENV_BACKEND, "pytorch")
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    return open_page(app, "pages/datasets.py"), data


def test_datasets_page_lists_the_datasets_and_reports_their_health(datasets_app):
    app, _ = datasets_app
    no_failure(app)
    listing = app.dataframe[0].value
    assert list(listing["dataset"]) == ["shapes"] and list(listing["images"]) == [132]
    assert app.success[0].value == "ready to train: 3 classes, 132 images"
    counts = app.dataframe[1].value
    assert list(counts["class"]) == ["circle", "square", "triangle"]
    assert list(counts["train/"]) == [30, 30, 30] and list(counts["total"]) == [44, 44, 44]
    assert len(app.get("image")) == 3   # a sample grid per class (one st.image each)


def test_datasets_page_adds_a_zip_and_says_why_one_class_cannot_be_trained(datasets_app):
    app, data = datasets_app
    files = {f"cat/{i}.png": png(skdata.chelsea()[i * 20:i * 20 + 200, :200]) for i in range(3)}
    app.text_input(key="datasets_name").set_value("cats")
    app.file_uploader(key="datasets_zip").set_value(("cats.zip", zip_bytes(files),
                                                     "application/zip")).run()
    app.button(key="datasets_add").click().run()
    assert not app.exception
    assert app.success[0].value == "Added dataset cats (from a zip)."
    assert app.selectbox(key="datasets_pick").value == "cats"
    assert [e.value for e in app.error] == [
        "cannot be trained on: fewer than two classes: found 1 (cat); a classifier needs at "
        "least two"]
    assert sorted(p.name for p in data.iterdir()) == ["cats", "shapes"]


def test_datasets_page_bad_zip_is_one_line_and_writes_nothing(datasets_app):
    app, data = datasets_app
    app.text_input(key="datasets_name").set_value("broken")
    app.file_uploader(key="datasets_zip").set_value(("broken.zip", b"PK\x03\x04 no zip at all",
                                                     "application/zip")).run()
    app.button(key="datasets_add").click().run()
    assert not app.exception
    assert [e.value for e in app.error] == ["not a zip file (or a damaged one)"]
    assert [p.name for p in data.iterdir()] == ["shapes"]

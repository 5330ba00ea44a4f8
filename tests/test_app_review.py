"""Compare's review views through AppTest: the confusion click-through (its select boxes, the
fallback for a click on the matrix), label issues and the embedding map, on the fixture
checkpoints with planted predictions and a precomputed map."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import test_app
from streamlit.testing.v1 import AppTest
from test_app import MODELS, ROOT, TIMEOUT, no_failure, open_page

from fvcore import settings
from fvcore.checkpoints.card import ModelCard
from fvcore.evaluation import cells, features
from fvcore.evaluation.embedding import embedding_frame, save_embedding
from fvcore.evaluation.evaluate import read_predictions

navigation_mode = test_app.navigation_mode   # the same autouse fixtures as tests/test_app.py
app_root, app = test_app.app_root, test_app.app
PLANTED = 3   # the test row whose label every model doubts


@pytest.fixture(scope="module")
def review_root(tmp_path_factory, checkpoint_root) -> Path:
    """The fixture checkpoints with confident stored predictions (every model right except on
    row PLANTED: labelled circle, each model sure it is a square) and cnn's embedding map."""
    root = tmp_path_factory.mktemp("review-checkpoints")
    shutil.copytree(checkpoint_root / "shapes", root / "shapes")
    for folder in (root / "shapes").iterdir():
        preds = read_predictions(folder, ModelCard.read(folder).classes)
        preds.probs[:] = 0.05
        preds.probs[np.arange(len(preds.labels)), preds.labels] = 0.9
        assert preds.labels[PLANTED] == 0
        preds.probs[PLANTED] = [0.05, 0.9, 0.05]
        (folder / "predictions.csv").write_text(preds.to_csv(), encoding="utf-8")
    cnn = root / "shapes" / "cnn"
    preds = read_predictions(cnn, ModelCard.read(cnn).classes)
    xy = np.random.default_rng(0).normal(size=(len(preds.paths), 2))
    classes = preds.classes
    save_embedding(cnn, embedding_frame(preds.paths, preds.domains,
                                        [classes[i] for i in preds.labels],
                                        [classes[i] for i in preds.preds], xy),
                   {"method": "umap"})
    return root


@pytest.fixture
def review(review_root, tiny_data, tmp_path, monkeypatch) -> AppTest:
    monkeypatch.setenv(settings.ENV_CHECKPOINTS, str(review_root))
    monkeypatch.setenv(settings.ENV_RUNS_DB, str(tmp_path / "runs.db"))
    monkeypatch.setenv("FVCORE_DATA", str(tiny_data))
    monkeypatch.setenv("FVCORE_BACKEND", "pytorch")
    monkeypatch.delenv(settings.ENV_SAMPLES, raising=False)
    return open_page(AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run(),
                     "pages/compare.py")


def stored(root: Path) -> dict:
    return {m: read_predictions(root / "shapes" / m, ModelCard.read(root / "shapes" / m).classes)
            for m in MODELS}


def cell_captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption if ".png**  \n" in c.value]


def test_the_click_through_shows_exactly_the_images_of_the_chosen_cell(app, app_root):
    open_page(app, "pages/compare.py")
    no_failure(app)
    model = app.selectbox(key="compare_cm_model").value
    preds = stored(app_root)
    report = {"confusion": np.zeros((3, 3))}
    np.add.at(report["confusion"], (preds[model].labels, preds[model].preds), 1)
    true, pred = "triangle", "circle"
    app.selectbox(key="compare_cell_true").set_value(true).run()
    app.selectbox(key="compare_cell_pred").set_value(pred).run()
    no_failure(app)
    expected = cells.cell_images(preds, model, true, pred)
    captions = cell_captions(app)
    assert len(captions) == len(expected) == report["confusion"][2, 0]
    for caption, path in zip(captions, expected["path"], strict=True):
        assert caption.startswith(f"**{Path(path).name}**  \n{model}: ")
        assert all(f"{m}: " in caption for m in MODELS)   # every selected model's answer


def test_the_click_through_opens_on_the_most_frequent_mistake_and_says_when_a_cell_is_empty(
        review):
    no_failure(review)
    model = review.selectbox(key="compare_cm_model").value
    assert (review.selectbox(key="compare_cell_true").value,
            review.selectbox(key="compare_cell_pred").value) == ("circle", "square")
    assert len(cell_captions(review)) == 1 and review.get("image")
    review.selectbox(key="compare_cell_pred").set_value("triangle").run()
    assert any(f"{model} classifies no test image of circle as triangle" in i.value
               for i in review.info)


def test_without_the_images_the_click_through_is_a_table(review_root, tmp_path, monkeypatch):
    monkeypatch.setenv(settings.ENV_CHECKPOINTS, str(review_root))
    monkeypatch.setenv("FVCORE_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv(settings.ENV_RUNS_DB, str(tmp_path / "runs.db"))
    at = open_page(AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run(),
                   "pages/compare.py")
    no_failure(at)
    assert any(c.value.startswith("Test images not found under") for c in at.caption)
    table = next(d.value for d in at.dataframe if "cnn prob" in d.value.columns)
    assert list(table["true"]) == ["circle"] and set(MODELS) <= set(table.columns)


def test_label_issues_rank_the_planted_error_first_with_a_download(review):
    no_failure(review)
    name = read_predictions(review_root_of(review) / "cnn", ["circle", "square", "triangle"]) \
        .paths[PLANTED].rsplit("/", 1)[-1]
    first = next(c.value for c in review.caption if c.value.startswith("#1 "))
    assert first.startswith(f"#1 **{name}**: label **circle**, models say **square** (90%; "
                            f"3 of 3 models)")
    assert any(m.value.startswith("**1 likely label error**") for m in review.markdown)
    assert [b.proto.label for b in review.get("download_button")
            if b.proto.label == "Label issues (CSV)"]


def review_root_of(at: AppTest) -> Path:
    return Path(at.sidebar.text_input(key="checkpoints_dir").value) / "shapes"


def test_the_embedding_map_shows_a_stored_map_and_offers_to_compute_a_missing_one(
        review, monkeypatch):
    review.selectbox(key="embed_model").set_value("cnn").run()
    no_failure(review)
    titles = [c.proto.spec for c in review.get("plotly_chart")]
    assert sum('"cnn: 24 test images by its penultimate features (UMAP' in t for t in titles) == 1
    assert any(c.value.startswith("Draw a lasso") for c in review.caption)

    monkeypatch.setattr(features, "resolve_method", lambda method="auto": "pca")
    review.selectbox(key="embed_model").set_value("vit").run()
    assert any("No embedding map for vit yet: run `python -m fvcore embed" in i.value
               for i in review.info)
    review.button(key="embed_compute").click().run()
    no_failure(review)
    titles = [c.proto.spec for c in review.get("plotly_chart")]
    assert sum('"vit: 24 test images by its penultimate features (PCA' in t for t in titles) == 1
    assert (review_root_of(review) / "vit" / "embedding.csv").is_file()


def test_in_public_mode_only_the_operator_computes_a_map(review_root, tiny_data, tmp_path,
                                                         monkeypatch):
    root = tmp_path / "checkpoints"            # vit without the map another test may compute
    shutil.copytree(review_root, root)
    for stored in (root / "shapes" / "vit").glob("embedding.*"):
        stored.unlink()
    for name, value in ((settings.ENV_PUBLIC, "1"), (settings.ENV_OPERATOR_TOKEN, "secret"),
                        (settings.ENV_CHECKPOINTS, str(root)),
                        (settings.ENV_RUNS_DB, str(tmp_path / "runs.db")),
                        (settings.ENV_DATA, str(tiny_data)), (settings.ENV_BACKEND, "pytorch")):
        monkeypatch.setenv(name, value)
    at = open_page(AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run(),
                   "pages/compare.py")
    at.selectbox(key="embed_model").set_value("vit").run()
    no_failure(at)
    assert any(c.value.startswith("Computing an embedding map is for the operator")
               for c in at.caption)
    assert not [b for b in at.button if b.key == "embed_compute"]
    assert not [i.value for i in at.info if str(root) in i.value]   # no server path

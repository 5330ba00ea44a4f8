"""Which labels to doubt and what a model sees: the confusion click-through, label issues found
by confident learning, and the embedding map (library, CLI and figures) on hand-built
predictions and the fixture checkpoints."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fvcore.app import charts
from fvcore.checkpoints.card import ModelCard
from fvcore.cli.parser import main
from fvcore.errors import FvError
from fvcore.evaluation import analysis, cells, embedding, features
from fvcore.evaluation.evaluate import Predictions, read_predictions
from fvcore.evaluation.labels import label_issues
from fvcore.inference.loading import load_checkpoint

CLASSES = ["a", "b", "c"]


def made(labels, predicted, confidence=0.9, paths=None) -> Predictions:
    """Predictions giving ``confidence`` to each predicted class."""
    probs = np.full((len(labels), 3), (1 - confidence) / 2)
    probs[np.arange(len(labels)), predicted] = confidence
    paths = paths or [f"test/{CLASSES[k]}/{i:02d}.png" for i, k in enumerate(labels)]
    return Predictions(list(paths), np.array(labels), probs, CLASSES)


# -- confusion click-through ---------------------------------------------------------------------

def test_the_click_through_shows_exactly_the_images_of_the_chosen_cell():
    labels = [0, 0, 0, 1, 1, 2, 2, 2]
    one = made(labels, [0, 1, 1, 1, 0, 2, 1, 2])
    one.probs[2, 1] = 0.95   # the more confident of the two a -> b mistakes comes first
    other = made(labels, [0, 1, 0, 1, 1, 2, 2, 2], confidence=0.7)
    frame = cells.cell_images({"one": one, "other": other}, "one", "a", "b")
    assert list(frame["path"]) == [one.paths[2], one.paths[1]]
    assert list(frame.columns[:5]) == ["path", "domain", "true", "one", "one prob"]
    assert list(frame["one"]) == ["b", "b"] and list(frame["other"]) == ["a", "b"]
    assert frame["other prob"].tolist() == pytest.approx([0.7, 0.7])
    assert cells.answers(frame.iloc[0].to_dict(), ["one", "other"]) == [
        ("one", "b", pytest.approx(0.95)), ("other", "a", pytest.approx(0.7))]
    assert cells.cell_images({"one": one}, "one", "c", "a").empty


def test_a_model_without_the_image_answers_nothing():
    one = made([0, 0], [1, 1])
    other = made([0], [1], paths=["elsewhere.png"])
    frame = cells.cell_images({"one": one, "other": other}, "one", "a", "b")
    assert frame["other"].isna().all()
    assert [m for m, _, _ in cells.answers(frame.iloc[0].to_dict(), ["one", "other"])] == ["one"]


def test_unknown_cells_and_models_are_one_line_errors():
    with pytest.raises(FvError, match="unknown class 'z'"):
        cells.cell_images({"one": made([0], [0])}, "one", "z", "a")
    with pytest.raises(FvError, match="no stored predictions"):
        cells.cell_images({"one": made([0], [0])}, "two", "a", "a")


def test_every_cell_of_a_real_confusion_matrix_holds_its_count_of_images(checkpoint_root):
    folder = checkpoint_root / "shapes" / "cnn"
    preds = {"cnn": read_predictions(folder, ModelCard.read(folder).classes)}
    classes = preds["cnn"].classes
    matrix = analysis.confusion_frame(analysis.reports(preds)["cnn"], classes)
    seen = []
    for true in classes:
        for pred in classes:
            frame = cells.cell_images(preds, "cnn", true, pred)
            assert len(frame) == matrix.loc[true, pred]
            assert set(frame["true"]) <= {true} and set(frame["cnn"]) <= {pred}
            seen += list(frame["path"])
    assert sorted(seen) == sorted(preds["cnn"].paths)


# -- label issues --------------------------------------------------------------------------------

def planted(confidence: float = 0.9) -> tuple[Predictions, int]:
    """30 images the models classify confidently and right, except image 7: labelled ``a``,
    every model is sure it is ``c``; image 20 (labelled ``c``) is a milder doubt."""
    labels = np.repeat([0, 1, 2], 10)
    predicted = labels.copy()
    predicted[7] = 2
    p = made(list(labels), list(predicted), confidence)
    p.probs[20] = [0.45, 0.1, 0.45]
    return p, 7


def test_a_planted_label_error_is_ranked_first():
    p, wrong = planted()
    q, _ = planted(0.8)
    issues = label_issues({"m1": p, "m2": q})
    assert issues["path"][0] == p.paths[wrong]
    first = issues.iloc[0]
    assert (first["rank"], first["label"], first["consensus"]) == (1, "a", "c")
    assert first["consensus_prob"] == pytest.approx(0.85)
    assert first["models_agree"] == first["models"] == 2
    assert list(issues["quality"]) == sorted(issues["quality"])   # most doubtful first
    assert p.paths[0] not in set(issues["path"])                   # good labels are not flagged


def test_label_issues_use_the_images_the_models_share_and_one_class_list():
    p, wrong = planted()
    fewer = Predictions(p.paths[:25], p.labels[:25], p.probs[:25], CLASSES)
    issues = label_issues({"m1": p, "m2": fewer})
    assert issues["path"][0] == p.paths[wrong] and set(issues["path"]) <= set(fewer.paths)
    other = Predictions(p.paths, p.labels, p.probs, ["x", "y", "z"])
    with pytest.raises(FvError, match="different class lists"):
        label_issues({"m1": p, "m2": other})
    with pytest.raises(FvError, match="no stored predictions"):
        label_issues({})


# -- embedding map -------------------------------------------------------------------------------

@pytest.fixture
def checkpoint(tmp_path, checkpoint_root) -> Path:
    """A writable copy of the fixture CNN checkpoint."""
    return Path(shutil.copytree(checkpoint_root / "shapes" / "cnn", tmp_path / "cnn"))


def test_the_map_has_one_point_per_test_image(checkpoint, tiny_data):
    emb, missing = features.embed(load_checkpoint(checkpoint), checkpoint, roots=[tiny_data],
                                  method="pca")
    preds = read_predictions(checkpoint, ModelCard.read(checkpoint).classes)
    assert missing == 0 and len(emb.frame) == len(preds.paths) == 24
    assert list(emb.frame["path"]) == preds.paths
    assert list(emb.frame["label"]) == [preds.classes[i] for i in preds.labels]
    # the forward pass that gave the features gives the stored predictions' classes
    assert list(emb.frame["pred"]) == [preds.classes[i] for i in preds.preds]
    assert np.isfinite(emb.frame[["x", "y"]].to_numpy()).all()
    stored = embedding.read_embedding(checkpoint)
    text = ["path", "domain", "label", "pred"]
    assert stored.frame[text].equals(emb.frame[text])
    np.testing.assert_allclose(stored.frame[["x", "y"]], emb.frame[["x", "y"]], rtol=1e-5)
    assert stored.method == "pca" and stored.current(checkpoint)
    meta = json.loads((checkpoint / embedding.EMBEDDING_META).read_text())
    assert meta["n_images"] == 24 and meta["features"].startswith("input of ")
    meta["weights"] = "0" * 16   # other weights: the map is stale
    (checkpoint / embedding.EMBEDDING_META).write_text(json.dumps(meta))
    assert not embedding.read_embedding(checkpoint).current(checkpoint)


def test_missing_images_or_predictions_are_one_clear_line(checkpoint, tmp_path):
    with pytest.raises(FvError, match="none of the 24 test images .* set FVCORE_DATA"):
        features.embed(load_checkpoint(checkpoint), checkpoint, roots=[tmp_path / "nowhere"])
    (checkpoint / "predictions.csv").unlink()
    with pytest.raises(FvError, match="no predictions.csv: pass the test folders"):
        features.embed(load_checkpoint(checkpoint), checkpoint, roots=[])


def test_the_embed_command_maps_a_test_folder_once(checkpoint, tiny_data, capsys):
    assert main(["embed", str(checkpoint), "--data", str(tiny_data / "test"),
                 "--method", "pca"]) == 0
    assert "24 test images mapped by pca" in capsys.readouterr().out
    assert len(embedding.read_embedding(checkpoint).frame) == 24
    assert main(["embed", str(checkpoint)]) == 0
    assert "up to date" in capsys.readouterr().out


@pytest.mark.parametrize("method", ["tsne", "pca"])
def test_projections_give_two_coordinates_per_image(method):
    x = np.random.default_rng(0).normal(size=(40, 8))
    x[:20] += 4   # two clusters stay apart
    xy = features.project(x, method)
    assert xy.shape == (40, 2) and np.isfinite(xy).all()
    assert features.project(x[:3], method).shape == (3, 2)   # too few for neighbours: PCA
    assert features.project(x[:0], method).shape == (0, 2)


def test_an_unknown_projection_lists_the_choices():
    with pytest.raises(FvError, match="auto, umap, tsne, pca"):
        features.resolve_method("mds")


def test_a_malformed_map_is_an_error_not_a_crash(tmp_path):
    (tmp_path / embedding.EMBEDDING).write_text("path,x\na.png,1\n")
    with pytest.raises(FvError, match="columns"):
        embedding.read_embedding(tmp_path)
    (tmp_path / embedding.EMBEDDING).write_text("path,domain,label,pred,x,y\na,d,l,p,one,2\n")
    with pytest.raises(FvError, match="numbers"):
        embedding.read_embedding(tmp_path)
    assert embedding.read_embedding(tmp_path / "none") is None


def small_map() -> pd.DataFrame:
    return embedding.embedding_frame(["t/a/1.png", "t/b/2.png", "t/b/3.png"], ["t"] * 3,
                                     ["a", "b", "b"], ["a", "b", "a"],
                                     np.array([[0.0, 1.0], [2.0, 3.0], [4.5, 5.0]]))


def test_a_selection_picks_its_photos_by_path_or_position():
    frame = small_map()
    assert list(frame["correct"]) == [True, True, False]
    picked = embedding.selected_rows(frame, [{"customdata": ["t/b/3.png", "3.png"]},
                                             {"x": 0.0, "y": 1.0}])
    assert list(picked["path"]) == ["t/a/1.png", "t/b/3.png"]
    assert embedding.selected_rows(frame, []).empty


def test_the_map_and_the_clickable_confusion_are_labelled_figures():
    fig = charts.embedding_map(small_map(), "map")
    assert fig.layout.title.text == "map" and fig.layout.xaxis.title.text == "map x"
    assert {t.marker.symbol for t in fig.data} == {"circle", "x"}   # mistakes as crosses
    assert sum(len(t.x) for t in fig.data) == 3
    cm = pd.DataFrame(np.eye(3), index=CLASSES, columns=CLASSES)
    fig = charts.cell_targets(charts.heatmap(cm, "cm", "predicted", "true"), cm)
    targets = fig.data[-1]
    assert len(targets.x) == 9 and list(targets.customdata[1]) == ["a", "b"]

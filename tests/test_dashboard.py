"""The app's pure data preparation (fvcore.evaluation.analysis, fvcore.app.frames) and figures
(fvcore.app.charts), on tiny hand-made inputs."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fvcore.app import charts, domains, frames, sections
from fvcore.checkpoints.card import ModelCard
from fvcore.checkpoints.catalog import Entry, scan
from fvcore.datasets import folders
from fvcore.evaluation import analysis
from fvcore.evaluation.evaluate import Predictions
from fvcore.inference import predict

CLASSES = ["a", "b", "c"]


def preds(labels, predicted, confidence=0.8) -> Predictions:
    probs = np.full((len(labels), 3), (1 - confidence) / 2)
    probs[np.arange(len(labels)), predicted] = confidence
    return Predictions([f"test/{CLASSES[k]}/{i}.png" for i, k in enumerate(labels)],
                       np.array(labels), probs, CLASSES)


def test_pareto_front_keeps_models_nothing_cheaper_beats():
    table = pd.DataFrame({"model": list("wxyz"), "gflops": [1.0, 2.0, 3.0, 4.0],
                          "accuracy": [0.5, 0.4, 0.7, 0.6]})
    assert list(frames.pareto_front(table, "gflops")["model"]) == ["w", "y"]


@pytest.mark.parametrize("top1, majority, dissent", [
    ({"m1": "a", "m2": "a", "m3": "b"}, "a", ["m3"]),
    ({"m1": "a", "m2": "a"}, "a", []),
    ({"m1": "a", "m2": "b"}, None, ["m1", "m2"]),
])
def test_agreement_names_the_majority_and_the_dissenters(top1, majority, dissent):
    assert predict.agreement(top1) == (majority, dissent)


def answer(model, probs, classes=CLASSES, ms=1.0) -> predict.ModelAnswer:
    return predict.ModelAnswer(model, tuple(classes), np.asarray(probs, dtype=np.float32), ms,
                               {"a": "vowel", "b": "consonant", "c": "consonant"})


def test_ensemble_and_agreement_come_with_every_prediction():
    answers = [answer("m1", [0.6, 0.3, 0.1]), answer("m2", [0.5, 0.1, 0.4]),
               answer("m3", [0.1, 0.2, 0.7])]
    prediction = predict.ImagePrediction.of("x.png", answers)
    assert prediction.answers == tuple(answers)
    assert (prediction.majority, prediction.dissenters) == ("a", ("m3",))
    assert not prediction.unanimous
    ens = prediction.ensemble
    assert ens.label == "a" and ens.prob == pytest.approx(0.4) and ens.group == "vowel"
    np.testing.assert_allclose(ens.probs, np.mean([a.probs for a in answers], axis=0))
    tie = predict.ImagePrediction.of("y.png", answers[::2])
    assert (tie.majority, tie.dissenters) == (None, ("m1", "m3"))
    same = predict.ImagePrediction.of("z.png", answers[:1] * 2)
    assert same.unanimous and same.majority == "a" and same.dissenters == ()


def test_the_ensemble_needs_two_models_with_the_same_classes():
    one = predict.ImagePrediction.of("x.png", [answer("m1", [0.6, 0.3, 0.1])])
    assert one.ensemble is None and one.majority == "a" and not one.unanimous
    other = answer("m2", [0.2, 0.8], classes=["a", "d"])
    mixed = predict.ImagePrediction.of("x.png", [answer("m1", [0.6, 0.3, 0.1]), other])
    assert mixed.ensemble is None and mixed.dissenters == ("m1", "m2")


def test_a_model_answer_gives_its_top_k_label_probability_and_group():
    a = answer("m", [0.2, 0.5, 0.3])
    assert [label for label, _ in a.top(2)] == ["b", "c"]
    assert (a.label, a.group) == ("b", "consonant") and a.prob == pytest.approx(0.5)
    top = frames.answer_top_k(a, 2)
    assert list(top["label"]) == ["b", "c"] and top["prob"].tolist() == pytest.approx([0.5, 0.3])
    assert top.equals(frames.top_k(CLASSES, a.probs, 2))


@pytest.mark.parametrize("best, low", [(0.29, True), (0.3, False), (0.9, False)])
def test_a_low_confidence_answer_is_marked(best, low):
    five = list("abcde")
    rest = (1 - best) / 4
    answers = [answer("m1", [best, rest, rest, rest, rest], five),
               answer("m2", [rest, best - 0.01, rest + 0.01, rest, rest], five)]
    prediction = predict.ImagePrediction.of("x.png", answers)
    assert prediction.confidence == pytest.approx(best)
    assert prediction.low_confidence is low
    assert predict.LOW_CONFIDENCE == 0.3


def test_a_bad_image_is_named_once_in_its_failure():
    named = predict.ImageFailure("notes.jpg", "notes.jpg: not an image")
    assert named.message == "notes.jpg: not an image"
    bare = predict.ImageFailure("notes.jpg", "not an image")
    assert bare.message == "notes.jpg: not an image"
    upload = io.BytesIO(b"these are not pixels")
    upload.name = "upload.jpg"
    run = predict.predict_images([], [upload])
    assert run.predictions == () and run.thumbnails == ()
    [failure] = run.failures
    assert failure.image == "upload.jpg" and failure.message.count("upload.jpg") == 1
    assert failure.message.startswith("upload.jpg: ") and "\n" not in failure.message


def test_predictions_come_typed_with_thumbnails_and_failures(checkpoint_root):
    from skimage import data as skdata

    from fvcore.inference.loading import discover
    classifiers, _ = discover(checkpoint_root)
    photos = []
    for name, array in (("chelsea.png", skdata.chelsea()), ("bad.jpg", None),
                        ("coffee.png", skdata.coffee())):
        handle = io.BytesIO(b"nope")
        if array is not None:
            handle = io.BytesIO()
            Image.fromarray(array).save(handle, format="PNG")
            handle.seek(0)
        handle.name = name
        photos.append(handle)
    names = ["cnn", "lite0", "vit"]
    run = predict.predict_images(classifiers, photos, names=names, thumbnail=32)
    assert [p.image for p in run.predictions] == ["chelsea.png", "coffee.png"]
    assert [f.image for f in run.failures] == ["bad.jpg"]
    assert [max(t.size) for t in run.thumbnails] == [32, 32]
    for i, prediction in enumerate(run.predictions):
        assert [a.model for a in prediction.answers] == names
        for a, clf in zip(prediction.answers, classifiers, strict=True):
            assert a.classes == tuple(clf.classes) and a.ms > 0
            np.testing.assert_allclose(a.probs, clf.predict(photos[2 * i].getvalue())[0],
                                       atol=1e-5)
        top1 = {a.model: a.label for a in prediction.answers}
        assert (prediction.majority, list(prediction.dissenters)) == predict.agreement(top1)
        np.testing.assert_allclose(prediction.ensemble.probs,
                                   predict.ensemble([a.probs for a in prediction.answers]))


def test_short_names_drop_the_dataset_folder(checkpoint_root):
    entries, _ = scan(checkpoint_root)
    assert [e.name for e in frames.short_names(entries, "shapes")] == \
        ["cnn", "efficientnet_lite0", "vit"]


def test_models_table_has_each_cards_temperature(checkpoint_root):
    entries, _ = scan(checkpoint_root)
    entries[0].card.temperature = 0.5
    table = frames.models_table(entries)
    assert list(table["temperature"]) == [0.5, 1.0, 1.0]


def test_models_table_shows_the_training_and_test_size_as_the_readme_does(checkpoint_root):
    entries, _ = scan(checkpoint_root)
    entries[0].card.recipe["image_size"] = entries[0].card.image_size - 16
    sizes = list(frames.models_table(entries)["image_size"])
    size = entries[0].card.image_size
    assert sizes[0] == f"{size - 16} (test {size})"
    assert sizes[1:] == [str(e.card.image_size) for e in entries[1:]]


def test_confusion_normalised_rows_and_difference():
    a = analysis.reports({"a": preds([0, 0, 1, 2], [0, 1, 1, 2])})["a"]
    b = analysis.reports({"b": preds([0, 0, 1, 2], [0, 0, 1, 2])})["b"]
    cm = analysis.confusion_frame(a, CLASSES, normalise=True)
    assert np.allclose(cm.sum(1), 1.0) and cm.loc["a", "b"] == 0.5
    diff = analysis.confusion_difference(a, b, CLASSES)
    assert diff.loc["a", "b"] == 1 and diff.loc["a", "a"] == -1 and diff.to_numpy().sum() == 0


def test_top_confusions_are_the_largest_off_diagonal_cells_first():
    report = analysis.reports({"m": preds([0, 0, 0, 1, 1, 2], [1, 1, 0, 2, 1, 2])})["m"]
    top = analysis.top_confusions(report, CLASSES)
    assert top.to_dict("records") == [
        {"true": "a", "predicted": "b", "images": 2, "share": pytest.approx(2 / 3)},
        {"true": "b", "predicted": "c", "images": 1, "share": pytest.approx(1 / 2)}]
    perfect = analysis.reports({"m": preds([0, 1, 2], [0, 1, 2])})["m"]
    assert analysis.top_confusions(perfect, CLASSES).empty


def test_tall_narrow_heatmaps_keep_their_numbers():
    f1 = pd.DataFrame(np.full((34, 9), 0.5), index=[f"c{i}" for i in range(34)],
                      columns=[f"m{i}" for i in range(9)])
    assert charts.heatmap(f1, "F1", "model", "class").data[0].texttemplate
    confusion = pd.DataFrame(np.eye(34), index=f1.index, columns=f1.index)
    assert not charts.heatmap(confusion, "cm", "predicted", "true").data[0].texttemplate


def test_mcnemar_matrix_is_symmetric_with_empty_diagonal_best_model_first():
    models = {"x": preds([0, 1, 2, 0], [0, 1, 2, 0]), "y": preds([0, 1, 2, 0], [1, 1, 2, 0]),
              "z": preds([0, 1, 2, 0], [1, 2, 0, 1])}
    sig = analysis.mcnemar_matrix({name: models[name] for name in ("z", "x", "y")})
    assert list(sig.pvals.index) == list(sig.pvals.columns) == ["x", "y", "z"]
    assert np.isnan(np.diag(sig.pvals.to_numpy())).all()
    assert sig.pvals.loc["x", "z"] == sig.pvals.loc["z", "x"] and "only x right: 4" in \
        sig.text.loc["x", "z"]
    # x is right on all 4 images, z on none: +100 points one way, -100 the other
    assert sig.diffs.loc["x", "z"] == 100.0 and sig.diffs.loc["z", "x"] == -100.0
    assert sig.diffs.loc["x", "y"] == 25.0
    assert sig.result["n_images"] == 4


def test_the_significance_chart_shows_direction_and_a_readable_p_value():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 400)
    good = labels.copy()
    bad = np.where(rng.random(400) < 0.5, (labels + 1) % 3, labels)
    near = labels.copy()
    near[:3] = (labels[:3] + 1) % 3      # 3 images apart: p = 0.25
    sig = analysis.mcnemar_matrix({"bad": preds(labels, bad), "good": preds(labels, good),
                                    "near": preds(labels, near)})
    heat = charts.mcnemar(sig).data[0]
    z = pd.DataFrame(heat.z, index=heat.y, columns=heat.x)
    text = pd.DataFrame(heat.text, index=heat.y, columns=heat.x)
    assert list(heat.y) == ["good", "near", "bad"]
    assert z.loc["good", "bad"] == 1 and z.loc["bad", "good"] == -1   # significant, both ways
    assert z.loc["good", "near"] == 0                                 # cannot tell apart
    assert text.loc["good", "bad"].endswith("p<0.001") and text.loc["good", "bad"].startswith("+")
    assert "p=0." in text.loc["good", "near"]
    assert analysis.format_p(0.2549) == "p=0.255" and analysis.format_p(3e-40) == "p<0.001"


def test_misclassified_are_the_wrong_ones_most_confident_first():
    p = preds([0, 1, 2], [1, 1, 0])
    p.probs[2] = [0.95, 0.03, 0.02]
    wrong = analysis.misclassified(p)
    assert list(wrong["true"]) == ["c", "a"] and wrong["prob"][0] == pytest.approx(0.95)


def test_misclassified_tells_a_models_own_blind_spots_from_photos_no_model_gets_right():
    #              image:  0  1  2  3  4
    labels = [0, 1, 2, 0, 1]
    this = preds(labels, [1, 1, 0, 2, 1])        # wrong on 0, 2, 3
    other = preds(labels, [1, 1, 2, 0, 1])       # wrong on 0
    third = preds(labels, [2, 1, 2, 0, 0])       # wrong on 0, 4
    others = {"other": other, "third": third}
    own = analysis.misclassified(this, others=others, which="only")
    assert sorted(own["path"]) == ["test/a/3.png", "test/c/2.png"]
    hard = analysis.misclassified(this, others=others, which="all")
    assert list(hard["path"]) == ["test/a/0.png"] and list(hard["wrong_by"]) == [3]
    every = analysis.misclassified(this, others=others)
    assert sorted(every["path"]) == ["test/a/0.png", "test/a/3.png", "test/c/2.png"]
    assert dict(zip(every["path"], every["wrong_by"], strict=True))["test/c/2.png"] == 1
    assert analysis.ranked_predictions({"this": this, "third": third, "other": other}) == \
        ["other", "third", "this"]
    with pytest.raises(ValueError):
        analysis.misclassified(this, which="some")


def test_reliability_bins_and_ece_per_model():
    frame, eces = analysis.reliability({"m": preds([0, 1, 2, 0], [0, 1, 2, 1], confidence=0.9)})
    assert eces["m"] == pytest.approx(abs(0.75 - 0.9)) and frame["count"].sum() == 4


def test_resolve_image_searches_dataset_folders_and_dataset_roots(tmp_path):
    image = tmp_path / "shared" / "shapes" / "test" / "a" / "x.png"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"png")
    assert folders.resolve_image("test/a/x.png", "shapes", [tmp_path / "shared"]) == image
    dataset_root = tmp_path / "shared" / "shapes"
    assert folders.resolve_image("test/a/x.png", "other", [dataset_root]) == image
    assert folders.resolve_image("test/a/y.png", "shapes", [tmp_path / "shared"]) is None


def test_curves_long_has_both_splits_and_metrics():
    history = pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.5], "val_loss": [1.1, 0.6],
                            "train_acc": [0.5, 0.7], "val_acc": [0.4, 0.6]})
    long = frames.curves_long({"m": history})
    assert len(long) == 8 and set(long["split"]) == {"train", "validation"}
    fig = charts.curves(long, "loss", log_y=True)
    assert fig.layout.title.text and fig.layout.yaxis.title.text == "loss (log scale)"
    assert not frames.has_domain_curves({"m": history})


def test_validation_accuracy_per_source_is_a_dashed_curve_of_its_own_when_asked_for():
    history = pd.DataFrame({"epoch": [1, 2], "val_loss": [1.1, 0.6], "val_acc": [0.4, 0.6],
                            "val_acc:shelves": [0.5, 0.8], "val_acc:web": [0.3, 0.4]})
    assert frames.has_domain_curves({"m": history, "other": history[["epoch", "val_acc"]]})
    assert set(frames.curves_long({"m": history})["split"]) == {"validation"}
    long = frames.curves_long({"m": history}, domains=True)
    web = long[long["split"] == "validation: web"]
    assert list(web["value"]) == [0.3, 0.4] and set(web["metric"]) == {"accuracy"}
    fig = charts.curves(long, "accuracy")
    dashes = {trace.name: trace.line.dash for trace in fig.data}
    assert dashes == {"validation": "solid", "validation: shelves": "dash",
                      "validation: web": "dashdot"}
    assert "per source dashed" in fig.layout.title.text
    live = frames.epochs_long("run", [{"epoch": 1, "val_acc": 0.5, "val_acc:web": 0.3}])
    assert set(live["split"]) == {"validation", "validation: web"}   # Train and Runs pages


def test_every_chart_has_a_title_and_axis_labels(checkpoint_root):
    entries, _ = scan(checkpoint_root)
    table = frames.models_table(entries)
    full = analysis.reports({"m": preds([0, 1, 2], [0, 1, 1])})
    figures = [
        charts.efficiency(table, frames.pareto_front(table, "gflops"), "gflops", "GFLOPs", "t"),
        charts.top_k_bars(frames.top_k(CLASSES, np.array([0.2, 0.5, 0.3]), 2), "Top-2"),
        charts.heatmap(analysis.per_class_f1(full), "F1", "model", "class"),
        charts.reliability(*analysis.reliability({"m": preds([0, 1], [0, 1])})),
    ]
    for fig in figures:
        assert fig.layout.title.text and fig.layout.xaxis.title.text and fig.layout.yaxis.title.text


def test_cam_grid_is_a_png_with_one_tile_per_model():
    tiles = [(f"model {i}\npredicts a", Image.new("RGB", (64, 64), "red")) for i in range(5)]
    grid = Image.open(io.BytesIO(charts.cam_grid(tiles, tile=100, columns=4)))
    assert grid.format == "PNG" and grid.width > 4 * 100 and grid.height > 2 * 100


def test_the_shown_table_drops_what_repeats_and_joins_the_interval(checkpoint_root):
    entries, _ = scan(checkpoint_root)
    table = frames.models_table(frames.short_names(entries, "shapes"))
    shown = sections.display_frame(table)
    assert "arch" not in shown                         # every model is named after its arch
    assert list(shown.columns[:3]) == ["model", "init", "accuracy"]
    assert shown.columns[3] == "ci95" and all("–" in c for c in shown["ci95"])
    assert shown["accuracy"].max() > 1                  # in percent
    table.loc[0, "model"] = "my-cnn"
    assert "arch" in sections.display_frame(table)


def test_models_are_ranked_best_first():
    full = analysis.reports({"a": preds([0, 1, 2], [0, 0, 0]), "b": preds([0, 1, 2], [0, 1, 2]),
                              "c": preds([0, 1, 2], [0, 1, 0])})
    assert analysis.ranked(full) == ["b", "c", "a"]


def test_a_cards_facts_read_as_a_table_and_survive_odd_cards():
    card = ModelCard(arch="cnn", classes=["a", "b"], image_size=64, mean=[0, 0, 0], std=[1, 1, 1],
                     init="none (random init, trained from scratch)", epochs_run=30,
                     best_epoch=24, stopped_early=True, training_seconds=600,
                     hardware="CPU, 2 cores", temperature=0.5,
                     recipe={"optimizer": "AdamW", "lr": 0.001, "schedule": "cosine",
                             "epochs": 30, "min_epochs": 20, "patience": 4},
                     splits={"counts": {"train": 100, "validation": 20, "test": 50},
                             "provenance": {"validation": "carved from train | seed 1"}},
                     calibration={"val_ece_before": 0.2, "val_ece_after": 0.05},
                     metrics={"accuracy": 0.8, "n_images": 50})
    facts = dict(zip(*frames.card_facts(card).to_dict("list").values(), strict=True))
    assert facts["epochs"] == "30 run, best 24, stopped early"
    assert facts["validation images"] == "20 · carved from train | seed 1"
    assert facts["schedule"] == "cosine, 30 epochs, early stopping after epoch 20 with patience 4"
    assert facts["calibration"] == "temperature 0.5 (validation ECE 0.200 -> 0.050)"
    assert facts["test accuracy"] == "80.0% on 50 images"
    table = frames.facts_markdown(frames.card_facts(card))
    assert "| **validation images** | 20 · carved from train \\| seed 1 |" in table
    odd = ModelCard(arch="cnn", classes=["a", "b"], image_size=64, mean=[0, 0, 0],
                    std=[1, 1, 1], recipe={"lr": [1]}, splits={"counts": "train"},
                    calibration={"val_ece_before": "x"}, metrics={"accuracy": "high"})
    odd_facts = frames.card_facts(odd)
    assert list(odd_facts["what"]) == ["architecture", "initialisation", "dataset", "image size",
                                       "optimiser", "calibration"]
    assert odd_facts["value"].iloc[-1] == "temperature 1"


def domain_card(by_split=None, splits=None, accuracy=0.6) -> ModelCard:
    return ModelCard(arch="cnn", classes=["a", "b"], image_size=64, mean=[0, 0, 0],
                     std=[1, 1, 1], metrics={"accuracy": accuracy, "n_images": 100,
                                              "accuracy_ci95": [0.5, 0.7]},
                     metrics_by_split=by_split or {}, splits=splits or {})


def card_entry(name: str, card: ModelCard) -> Entry:
    return Entry(name=name, path=Path(name), card=card)


def test_models_table_has_a_column_per_test_domain_and_the_gap_only_with_two_domains():
    two = domain_card({"shelf": {"accuracy": 0.84, "n_images": 60},
                       "wild": {"accuracy": 0.30, "n_images": 40}})
    one = domain_card({"shelf": {"accuracy": 0.7}})
    table = frames.models_table([card_entry("two", two), card_entry("one", one)])
    columns = list(table.columns)
    at = columns.index("ci_high") + 1
    assert columns[at:at + 3] == ["test_accuracy:shelf", "test_accuracy:wild", "domain_gap"]
    assert list(table["test_accuracy:shelf"]) == [0.84, 0.7]
    assert table["test_accuracy:wild"][0] == 0.30 and pd.isna(table["test_accuracy:wild"][1])
    assert table["domain_gap"][0] == pytest.approx(54.0) and pd.isna(table["domain_gap"][1])
    assert all(pd.api.types.is_float_dtype(table[c]) for c in columns[at:at + 3])  # sortable
    shown = sections.display_frame(table, ["model", "accuracy", "ci_low", "ci_high"])
    assert list(shown.columns) == ["model", "accuracy", "ci95", "test_accuracy:shelf",
                                   "test_accuracy:wild", "domain_gap"]
    assert shown["test_accuracy:shelf"][0] == pytest.approx(84.0)   # percent, like accuracy
    config = sections.column_config(shown)
    assert config["test_accuracy:wild"]["label"] == "Test accuracy: wild"
    single = frames.models_table([card_entry("one", one), card_entry("none", domain_card())])
    assert list(single.columns) == list(frames.TABLE_COLUMNS)


@pytest.mark.parametrize("by_split", [
    "shelf", ["shelf"], {"shelf": "high", "wild": {"accuracy": "x"}},
    {"shelf": {"accuracy": True}, "wild": None}, {"shelf": {"accuracy": 0.5}, "wild": {}},
    {1: {"accuracy": 0.5, "n_images": "many"}},
])
def test_malformed_domain_metrics_add_no_columns(by_split):
    table = frames.models_table([card_entry("odd", domain_card(by_split))])
    assert list(table.columns) == list(frames.TABLE_COLUMNS)
    assert frames.card_facts(domain_card(by_split)) is not None


def test_card_facts_list_the_sources_and_the_accuracy_per_domain():
    card = domain_card(
        {"grocery-produce": {"accuracy": 0.84, "n_images": 1704},
         "produce-wild": {"accuracy": 0.3, "n_images": 220}},
        {"sources": {"grocery-produce": {"counts": {"train": 1760, "validation": 212,
                                                    "test": 1704}, "provenance": {}},
                     "produce-wild": {"counts": {"train": 300, "test": 220},
                                      "provenance": {"validation": "carved from train"}}}})
    facts = dict(zip(*frames.card_facts(card).to_dict("list").values(), strict=True))
    assert facts["source grocery-produce"] == "1,760 train · 212 validation · 1,704 test"
    assert facts["source produce-wild"] == "300 train · 220 test"
    assert facts["test accuracy: grocery-produce"] == "84.0% on 1,704 images"
    assert facts["test accuracy: produce-wild"] == "30.0% on 220 images"
    single = domain_card({"shelf": {"accuracy": 0.7}})
    assert not any(w.startswith("test accuracy:")
                   for w in frames.card_facts(single)["what"])


@pytest.mark.parametrize("splits", [
    {"sources": "grocery"}, {"sources": ["a", "b"]}, {"sources": {"a": "x", "b": None}},
    {"sources": {"a": {"counts": "many", "provenance": 3}}},
    {"sources": {"a": {"counts": {"train": "10", "test": True, "validation": None}}}},
    {"sources": {"a": {"counts": {"train": 5}, "provenance": {"train": 7}}}},
])
def test_card_facts_survive_malformed_sources(splits):
    card = domain_card(splits=splits)
    card.splits = splits
    facts = frames.card_facts(card)
    sources = [v for w, v in zip(facts["what"], facts["value"], strict=True)
               if w.startswith("source")]
    assert sources in ([], ["5 train"])
    card.splits = "not a dict"
    card.metrics_by_split = "not a dict"
    assert list(frames.card_facts(card)["what"])[:3] == ["architecture", "initialisation",
                                                         "dataset"]


def test_predictions_of_one_test_domain_for_every_model():
    p = preds([0, 1, 2, 0], [0, 1, 0, 1])
    p.domains = ["shelf", "wild", "shelf", "wild"]
    q = preds([0, 1], [0, 1])
    q.domains = ["shelf", "shelf"]
    both = {"p": p, "q": q}
    assert domains.test_domains(both) == ["shelf", "wild"]
    wild, missing = domains.in_domain(both, "wild")
    assert list(wild) == ["p"] and missing == ["q"] and list(wild["p"].labels) == [1, 0]
    assert domains.in_domain(both, None) == (both, [])

"""Temperature scaling: fitted on validation, stored in the card, honoured by every consumer
(predict, stored predictions, Grad-CAM's probabilities), accuracy untouched."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from conftest import make_checkpoint, make_dataset
from PIL import Image

from fvcore.checkpoints.card import ModelCard
from fvcore.cli import main
from fvcore.errors import CheckpointError
from fvcore.evaluation import calibration
from fvcore.evaluation.evaluate import read_predictions
from fvcore.inference.loading import load_checkpoint


def synthetic(temperature: float, n: int = 4000, classes: int = 5, seed: int = 0):
    """Logits, and labels drawn from softmax(logits / temperature): the true T is known."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (n, classes))
    probs = calibration.softmax(logits, temperature)
    labels = np.array([rng.choice(classes, p=p) for p in probs])
    return logits, labels


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_fit_recovers_the_temperature_that_generated_the_labels(true_t):
    logits, labels = synthetic(true_t)
    fitted = calibration.fit_temperature(logits, labels)
    assert fitted == pytest.approx(true_t, rel=0.1)
    assert calibration.nll(logits, labels, fitted) <= calibration.nll(logits, labels, true_t)


def test_calibrate_lowers_validation_nll_and_ece_and_keeps_the_ranking():
    logits, labels = synthetic(3.0)  # the model is over-confident by a factor 3
    t, record = calibration.calibrate(logits, labels)
    assert record["val_nll_after"] < record["val_nll_before"]
    assert record["val_ece_after"] < record["val_ece_before"]
    assert (calibration.softmax(logits, t).argmax(1) == logits.argmax(1)).all()
    assert record["temperature"] == pytest.approx(t) and not record["at_bound"]


def test_too_few_images_keep_temperature_one_and_a_separable_split_stops_at_the_bound():
    logits, labels = synthetic(1.0, n=10)
    t, record = calibration.calibrate(logits, labels)
    assert t == 1.0 and "fewer than" in record["skipped"]
    perfect = np.eye(3)[np.arange(120) % 3] * 5.0  # every image right: NLL falls as T -> 0
    t, record = calibration.calibrate(perfect, np.arange(120) % 3)
    assert t == pytest.approx(calibration.T_MIN, rel=1e-3) and record["at_bound"]


@pytest.mark.parametrize("bad", [0, -1.0, 1e9, "2", None])
def test_a_card_with_an_impossible_temperature_is_refused(bad):
    card = {"arch": "cnn", "classes": ["a", "b"], "image_size": 64, "mean": [0.5] * 3,
            "std": [0.5] * 3, "temperature": bad}
    with pytest.raises(CheckpointError, match="temperature"):
        ModelCard.from_dict(card)


@pytest.fixture(scope="module")
def calib_data(tmp_path_factory):
    """Shapes with 34 validation images per class (102: enough to fit a temperature)."""
    return make_dataset(tmp_path_factory.mktemp("calib"),
                        {"train": 4, "validation": 34, "test": 6}, seed=3)


def test_predictions_are_softmax_of_logits_over_the_cards_temperature(tmp_path, calib_data):
    folder = make_checkpoint(tmp_path / "cnn", "cnn", calib_data)
    card = json.loads((folder / "card.json").read_text())
    card["temperature"] = 2.0
    (folder / "card.json").write_text(json.dumps(card))
    clf = load_checkpoint(folder)
    batch = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    expected = calibration.softmax(clf.logits_tensor(batch), 2.0)
    assert np.allclose(clf.predict_tensor(batch), expected, atol=1e-6)
    image = Image.fromarray(np.full((64, 64, 3), 128, np.uint8))
    result, _ = clf.explain(image)
    probs = clf.predict(image)[0]
    assert np.allclose(result.probs, probs, atol=1e-5)  # Grad-CAM shows the same probabilities


def test_cli_calibrate_fits_on_validation_rewrites_card_and_predictions_not_weights(
        tmp_path, calib_data, capsys):
    folder = make_checkpoint(tmp_path / "cnn", "cnn", calib_data, seed=1)
    card = json.loads((folder / "card.json").read_text())
    card["recipe"]["dataset_fingerprint"] = load_fingerprint(calib_data)
    (folder / "card.json").write_text(json.dumps(card))
    weights = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    before = read_predictions(folder, card["classes"])

    assert main(["calibrate", str(folder), "--data", str(calib_data)]) == 0
    assert "temperature" in capsys.readouterr().out
    after_card = ModelCard.read(folder)
    after = read_predictions(folder, card["classes"])
    assert after_card.calibration["n_images"] == 102 and after_card.calibration["fitted_on"] == \
        "validation"
    assert after_card.calibration["command"].startswith("python -m fvcore calibrate ")
    assert after_card.temperature == pytest.approx(after_card.calibration["temperature"], rel=1e-5)
    assert after_card.calibration["val_nll_after"] <= after_card.calibration["val_nll_before"]
    assert (after.probs.argmax(1) == before.probs.argmax(1)).all()
    assert after_card.metrics["accuracy"] == card["metrics"]["accuracy"]
    assert hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest() == weights
    # the stored predictions are what the calibrated checkpoint predicts
    clf = load_checkpoint(folder)
    first = calib_data / after.paths[0]
    assert np.allclose(clf.predict(first)[0], after.probs[0], atol=1e-5)


def test_cli_calibrate_refuses_another_dataset(tmp_path, calib_data, tiny_data, capsys):
    folder = make_checkpoint(tmp_path / "cnn", "cnn", calib_data)
    card = json.loads((folder / "card.json").read_text())
    card["recipe"]["dataset_fingerprint"] = load_fingerprint(calib_data)
    (folder / "card.json").write_text(json.dumps(card))
    assert main(["calibrate", str(folder), "--data", str(tiny_data)]) != 0
    assert "not the dataset" in capsys.readouterr().err


def load_fingerprint(root) -> str:
    from fvcore.datasets.folders import load_splits
    return load_splits(root).fingerprint()

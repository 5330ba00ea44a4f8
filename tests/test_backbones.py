"""Choosing the ImageNet backbone by validation: bench/backbones.py probes the frozen features of
every backbone whose ImageNet weights install offline, on each source's validation split, without
reading a test split."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import make_dataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from backbones import main, offline_imagenet_archs  # noqa: E402


def test_the_offline_imagenet_backbones_are_the_three_lite_wheels():
    assert offline_imagenet_archs() == ["efficientnet_lite0", "efficientnet_lite1",
                                        "efficientnet_lite2"]


def test_a_probe_scores_each_source_s_validation_split_and_never_opens_a_test_image(
        tmp_path, capsys):
    shelf = make_dataset(tmp_path / "shelf", {"train": 8, "validation": 4, "test": 1}, seed=1)
    web = make_dataset(tmp_path / "web", {"train": 8, "validation": 3, "test": 1}, seed=2,
                       size=72)
    for folder in (shelf, web):   # a test image that would fail to decode if it were read
        (folder / "test" / "circle" / "circle_000.png").write_bytes(b"not an image")
    out = tmp_path / "backbones.json"
    main(["--data", str(shelf), "--data", str(web), "--archs", "efficientnet_lite0",
          "--out", str(out)])
    report = json.loads(out.read_text())
    lite0 = report["archs"]["efficientnet_lite0"]
    assert report["n_train"] == 2 * 3 * 8
    assert lite0["n_validation"] == {"shelf": 12, "web": 9}
    assert lite0["input_size"] == 224 and lite0["C"] in (0.1, 0.3, 1.0)
    # coloured shapes are easy for ImageNet features: a linear probe gets (nearly) all of them
    assert lite0["by_source"]["shelf"] >= 0.75 and lite0["by_source"]["web"] >= 0.75
    overall = (12 * lite0["by_source"]["shelf"] + 9 * lite0["by_source"]["web"]) / 21
    assert abs(lite0["validation_accuracy"] - overall) < 1e-9
    table = capsys.readouterr().out
    assert "| backbone | input | validation: shelf | validation: web |" in table
    assert "| efficientnet_lite0 | 224 |" in table


def test_a_backbone_is_probed_at_other_input_sizes_and_side_by_side_with_another(tmp_path):
    shelf = make_dataset(tmp_path / "shelf", {"train": 8, "validation": 4, "test": 1}, seed=1)
    out = tmp_path / "backbones.json"
    main(["--data", str(shelf), "--archs", "efficientnet_lite0@96,efficientnet_lite0@64/80",
          "--concat", "--out", str(out)])
    report = json.loads(out.read_text())["archs"]
    both = "efficientnet_lite0@96 + efficientnet_lite0@64/80"
    assert list(report) == ["efficientnet_lite0@96", "efficientnet_lite0@64/80", both]
    assert [r["input_size"] for r in report.values()] == [96, "64/80", "each its own"]
    assert report[both]["seconds_per_image"] == pytest.approx(
        report["efficientnet_lite0@96"]["seconds_per_image"]
        + report["efficientnet_lite0@64/80"]["seconds_per_image"])
    assert all(r["validation_accuracy"] >= 0.75 for r in report.values())


def test_a_malformed_input_size_is_one_line():
    with pytest.raises(SystemExit, match="expected ARCH, ARCH@CROP or ARCH@CROP/RESIZE"):
        main(["--data", "unused", "--archs", "efficientnet_lite0@big"])

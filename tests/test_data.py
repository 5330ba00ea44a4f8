"""Dataset folders: splits found or carved reproducibly, class groups read, clear errors."""
from __future__ import annotations

import shutil

import pytest

from fvcore.datasets.folders import load_splits
from fvcore.errors import FvError


def test_splits_classes_and_groups_come_from_the_folders(tiny_data):
    data = load_splits(tiny_data)
    assert data.classes == ["circle", "square", "triangle"]
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 90, "validation": 18,
                                                          "test": 24}
    assert data.groups["circle"] == "round"
    assert data.fingerprint() == load_splits(tiny_data).fingerprint()


def test_val_only_datasets_use_val_as_test_and_carve_validation(tmp_path, tiny_data):
    root = tmp_path / "hym"
    shutil.copytree(tiny_data / "train", root / "train")
    shutil.copytree(tiny_data / "test", root / "val")
    data = load_splits(root, val_fraction=0.2, seed=7)
    assert data.provenance["test"] == "val/ (the dataset has no test split)"
    assert len(data.splits["test"]) == 24 and len(data.splits["validation"]) == 18
    again = load_splits(root, val_fraction=0.2, seed=7)
    assert data.carved["validation"] == again.carved["validation"]
    assert not set(data.carved["validation"]) & {data.relative(p) for p, _ in data.splits["train"]}


def test_an_empty_class_folder_is_a_clear_error(tmp_path, tiny_data):
    shutil.copytree(tiny_data, tmp_path / "d")
    (tmp_path / "d" / "train" / "hexagon").mkdir()
    with pytest.raises(FvError, match="class folder without images: hexagon"):
        load_splits(tmp_path / "d")


def test_a_class_missing_from_a_split_is_a_clear_error(tmp_path, tiny_data):
    shutil.copytree(tiny_data, tmp_path / "d")
    shutil.rmtree(tmp_path / "d" / "test" / "square")
    with pytest.raises(FvError, match="test split has no images of: square"):
        load_splits(tmp_path / "d")


def test_no_images_at_all_is_a_clear_error(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(FvError, match="no class folders"):
        load_splits(tmp_path)

"""Dataset folders: splits found or carved reproducibly, class groups read, clear errors; several
folders combined by class name with each test split kept apart as a test domain."""
from __future__ import annotations

import shutil

import pytest
from conftest import make_dataset

from fvcore.datasets.combine import load_datasets
from fvcore.datasets.folders import load_splits, resolve_image
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


# --- several folders combined: classes by name, test domains kept apart ------------------------

def _two_folders(tmp_path):
    """``shelf`` (every class, every split) and ``wild`` (no triangles at all, no square test
    images), side by side as in ../shared/datasets."""
    shelf = make_dataset(tmp_path / "shelf", {"train": 6, "validation": 2, "test": 3}, seed=1)
    wild = make_dataset(tmp_path / "wild", {"train": 4, "validation": 2, "test": 2}, seed=2)
    for split in ("train", "validation", "test"):
        shutil.rmtree(wild / split / "triangle")
    shutil.rmtree(wild / "test" / "square")
    return shelf, wild


def test_two_folders_combine_classes_by_name_and_keep_their_test_domains_apart(tmp_path):
    shelf, wild = _two_folders(tmp_path)
    data = load_datasets([shelf, wild])
    assert data.name == "shelf+wild" and data.classes == ["circle", "square", "triangle"]
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 18 + 8, "validation": 6 + 4,
                                                          "test": 9 + 2}
    assert list(data.test_domains) == ["shelf", "wild"]
    assert [len(v) for v in data.test_domains.values()] == [9, 2]
    assert {data.classes[label] for _, label in data.test_domains["wild"]} == {"circle"}
    assert data.splits["test"] == data.test_domains["shelf"] + data.test_domains["wild"]
    assert [(s.name, s.counts) for s in data.sources] == [
        ("shelf", {"train": 18, "test": 9, "validation": 6}),
        ("wild", {"train": 8, "test": 2, "validation": 4})]
    assert data.provenance["test"] == "shelf: test/; wild: test/"
    assert data.groups == {"circle": "round", "square": "angular", "triangle": "angular"}
    assert load_datasets([shelf, wild], name="produce").name == "produce"


def test_combined_paths_start_with_the_source_folder_and_resolve_under_the_shared_root(tmp_path):
    shelf, wild = _two_folders(tmp_path)
    data = load_datasets([shelf, wild], name="produce")
    names = [data.relative(p) for p, _ in data.splits["test"]]
    assert names[0] == "shelf/test/circle/circle_000.png"
    assert names[-1] == "wild/test/circle/circle_001.png"
    assert all(resolve_image(n, data.name, [tmp_path]) == tmp_path / n for n in names)
    assert data.fingerprint() == load_datasets([shelf, wild]).fingerprint()
    assert data.fingerprint() != load_splits(shelf).fingerprint()


def test_a_class_missing_from_one_folders_validation_or_test_is_allowed(tmp_path):
    shelf, wild = _two_folders(tmp_path)
    shutil.rmtree(shelf / "test" / "square")          # now no folder tests squares at all
    shutil.rmtree(wild / "validation" / "square")
    data = load_datasets([shelf, wild])
    assert data.classes == ["circle", "square", "triangle"]
    assert data.sources[1].counts["validation"] == 2


def test_a_class_missing_from_every_validation_split_is_refused_in_one_line(tmp_path):
    shelf, wild = _two_folders(tmp_path)
    shutil.rmtree(shelf / "validation" / "square")
    shutil.rmtree(wild / "validation" / "square")
    with pytest.raises(FvError, match="validation split has no images of: square") as info:
        load_datasets([shelf, wild])
    assert "\n" not in str(info.value) and "shelf, wild" in str(info.value)


def test_a_class_no_folder_trains_on_is_refused(tmp_path):
    shelf, wild = _two_folders(tmp_path)
    shutil.copytree(wild / "test" / "circle", wild / "test" / "hexagon")
    with pytest.raises(FvError, match="train split has no images of: hexagon"):
        load_datasets([shelf, wild])


def test_missing_splits_are_carved_per_folder_and_recorded_with_the_folder_prefix(tmp_path):
    shelf, wild = _two_folders(tmp_path)
    shutil.rmtree(wild / "validation")
    shutil.rmtree(wild / "test")
    data = load_datasets([shelf, wild], val_fraction=0.25, seed=3)
    assert data.sources[1].provenance["validation"].startswith("carved from train: 25%")
    assert data.carved["validation"] and all(p.startswith("wild/train/")
                                             for p in data.carved["validation"])
    assert data.carved == load_datasets([shelf, wild], val_fraction=0.25, seed=3).carved
    assert len(data.test_domains["wild"]) == 2                # 20% of 4 per class, 2 classes


def test_two_folders_of_the_same_name_or_disagreeing_groups_are_refused(tmp_path, tiny_data):
    shutil.copytree(tiny_data, tmp_path / "a" / tiny_data.name)
    with pytest.raises(FvError, match=f"two dataset folders are named {tiny_data.name}"):
        load_datasets([tiny_data, tmp_path / "a" / tiny_data.name])
    other = tmp_path / "other"
    shutil.copytree(tiny_data, other)
    (other / "classes.json").write_text('{"groups": {"circle": "angular"}}')
    with pytest.raises(FvError, match="groups disagree on circle: round in"):
        load_datasets([tiny_data, other])


@pytest.mark.parametrize("layout", ["all splits", "train only", "val as test"])
def test_one_folder_is_exactly_load_splits(tmp_path, tiny_data, layout):
    root = tmp_path / "one"
    if layout == "all splits":
        root = tiny_data
    else:
        shutil.copytree(tiny_data / "train", root / "train")
        if layout == "val as test":
            shutil.copytree(tiny_data / "test", root / "val")
    a, b = load_splits(root, seed=5), load_datasets([root], seed=5)
    assert (a.name, a.root, a.classes, a.groups) == (b.name, b.root, b.classes, b.groups)
    assert a.splits == b.splits and a.provenance == b.provenance and a.carved == b.carved
    assert [a.relative(p) for p, _ in a.splits["test"]] == \
        [b.relative(p) for p, _ in b.splits["test"]]
    assert a.relative(a.splits["test"][0][0]).startswith(("test/", "val/", "train/"))
    assert a.fingerprint() == b.fingerprint()
    assert list(b.test_domains) == [root.name] and b.test_domains[root.name] == a.splits["test"]
    renamed = load_datasets(str(root), name="produce", seed=5)
    assert renamed.name == "produce" and renamed.fingerprint() == a.fingerprint()

"""A dataset's health report and adding a dataset: every planted problem is reported in one line
(duplicates across splits, a near duplicate, a corrupt file, a tiny image, imbalance, a class
missing from validation), a one-class dataset is untrainable with its reason, and adding is
atomic: a broken zip writes nothing."""
from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_dataset, shape_image
from PIL import Image
from skimage import data as skdata

from fvcore import settings
from fvcore.datasets.folders import load_splits
from fvcore.datasets.hashing import groups, near_pairs
from fvcore.datasets.health import dataset_health
from fvcore.datasets.store import add_from_folder, add_from_zip, check_name, list_datasets
from fvcore.datasets.zipdata import zip_bytes
from fvcore.errors import FvError


def encoded(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    """Shapes with every problem planted once."""
    root = make_dataset(tmp_path_factory.mktemp("planted"), {"train": 8, "validation": 3,
                                                              "test": 3})
    rng = np.random.default_rng(7)
    for i in range(24):   # imbalance: 32 circles against 8 squares and 8 triangles
        shape_image("circle", rng).save(root / "train" / "circle" / f"extra_{i:02d}.png")
    shutil.copy(root / "train" / "square" / "square_001.png",
                root / "test" / "square" / "copied.png")   # exact duplicate across train/test
    photo = Image.fromarray(skdata.coffee())
    photo.resize((200, 133)).save(root / "train" / "triangle" / "coffee.png")
    (root / "test" / "triangle" / "coffee.jpg").write_bytes(   # near duplicate: JPEG, resized
        encoded(photo.resize((180, 120)), "JPEG", quality=80))
    full = encoded(shape_image("square", rng))
    (root / "train" / "square" / "broken.png").write_bytes(full[: len(full) // 2])
    (root / "train" / "square" / "notes.txt").write_text("not an image")
    shape_image("circle", rng, size=16).save(root / "train" / "circle" / "tiny.png")
    shutil.rmtree(root / "validation" / "triangle")   # a class missing from validation
    return root


@pytest.fixture(scope="module")
def report(planted):
    return dataset_health(planted)


def test_counts_per_class_and_split(report):
    rows = {row["class"]: row for row in report.table()}
    assert rows["circle"] == {"class": "circle", "train/": 33, "validation/": 3, "test/": 3,
                              "total": 39}
    assert rows["square"]["train/"] == 8   # the broken file and the text file do not count
    assert rows["triangle"]["validation/"] == 0 and rows["triangle"]["train/"] == 9


def test_exact_duplicate_across_splits_is_leakage(report):
    exact = [d for d in report.duplicates if d.kind == "exact"]
    assert [d.files for d in exact] == [("test/square/copied.png", "train/square/square_001.png")]
    assert exact[0].leak and "exact duplicates across test and train (leakage)" in exact[0].line()


def test_near_duplicate_resaved_as_jpeg_and_resized_is_found(report):
    near = [d for d in report.duplicates if d.kind == "near"]
    assert [d.files for d in near] == [("test/triangle/coffee.jpg", "train/triangle/coffee.png")]
    assert near[0].leak and "near duplicates (pHash distance" in near[0].line()


def test_unreadable_and_unsupported_files_have_one_line_reasons(report):
    reasons = {issue.path: issue.reason for issue in report.unreadable}
    assert set(reasons) == {"train/square/broken.png", "train/square/notes.txt"}
    assert "truncated" in reasons["train/square/broken.png"]
    assert reasons["train/square/notes.txt"] == "not an image file (.txt)"
    assert all("\n" not in line for line in report.warnings())


def test_tiny_image_and_imbalance_are_warnings(report):
    assert [(i.path, i.reason) for i in report.small] == [
        ("train/circle/tiny.png", "16x16 pixels, under 32 px")]
    assert report.imbalance == pytest.approx(33 / 8)
    assert any(line.startswith("class imbalance: 4.1x between circle (33 train images) and "
                               "square (8)") for line in report.warnings())


def test_a_class_missing_from_validation_blocks_training(report):
    assert not report.trainable
    assert report.blocking == ("validation/ has no images of: triangle",)
    assert report.verdict() == "cannot be trained on: validation/ has no images of: triangle"


def test_a_clean_dataset_is_trainable_without_false_alarms(tiny_data):
    report = dataset_health(tiny_data)
    assert report.trainable and report.verdict().startswith("ready to train: 3 classes, 132")
    assert report.duplicates == () and report.unreadable == () and report.small == ()
    assert {c: len(p) for c, p in report.samples.items()} == {c: 6 for c in report.classes}


def test_one_class_is_untrainable_with_its_reason(tmp_path):
    make_dataset(tmp_path / "one", {"train": 4, "test": 2})
    for split in ("train", "test"):
        for kind in ("square", "triangle"):
            shutil.rmtree(tmp_path / "one" / split / kind)
    report = dataset_health(tmp_path / "one")
    assert report.blocking == ("fewer than two classes: found 1 (circle); a classifier needs at "
                               "least two",)


def test_an_empty_folder_has_no_images(tmp_path):
    (tmp_path / "empty" / "train" / "cat").mkdir(parents=True)
    assert dataset_health(tmp_path / "empty").blocking[0].startswith("no images")


def as_bytes(value: int) -> bytes:
    return value.to_bytes(8, "big")


def test_near_pairs_compare_hashes_bit_by_bit():
    base = 0xF0F0_1234_5678_9ABC
    hashes = [as_bytes(h) for h in (base, base ^ 0b111, ~base & (2**64 - 1), base ^ (1 << 63))]
    assert near_pairs(hashes, 3) == [(0, 1, 3), (0, 3, 1)]   # (1, 3) are 4 bits apart
    assert near_pairs([h * 4 for h in hashes], 12) == [(0, 1, 12), (0, 3, 4)]   # 256 bits
    assert groups(5, [(0, 1), (1, 3)]) == [[0, 1, 3]]


def test_a_few_thousand_hashes_compare_fast():
    rng = np.random.default_rng(0)
    hashes = [rng.bytes(32) for _ in range(3000)]
    hashes[2999] = bytes([hashes[5][0] ^ 1]) + hashes[5][1:]
    start = time.perf_counter()
    assert near_pairs(hashes) == [(5, 2999, 1)]
    assert time.perf_counter() - start < 20   # about 1 s alone on 2 cores


# -- adding a dataset ----------------------------------------------------------------------------

@pytest.fixture
def data_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv(settings.ENV_DATA, str(root))
    return root


def shape_files(prefix: str, classes=("circle", "square"), n: int = 4) -> dict[str, bytes]:
    rng = np.random.default_rng(1)
    return {f"{prefix}{c}/{c}_{i}.png": encoded(shape_image(c, rng))
            for c in classes for i in range(n)}


def shapes_zip(prefix: str, classes=("circle", "square"), n: int = 4) -> bytes:
    return zip_bytes(shape_files(prefix, classes, n))


def test_a_zip_of_class_folders_is_stored_as_train_and_listed(data_root):
    files = {"mine/circle/bad.png": b"not a png", "mine/readme.md": b"hello"}
    added = add_from_zip(zip_bytes({**files, **shape_files("mine/")}), "my-shapes")
    assert added.path == data_root / "my-shapes"
    assert sorted(p.name for p in (data_root / "my-shapes" / "train").iterdir()) == [
        "circle", "square"]
    assert not (data_root / "my-shapes" / "train" / "circle" / "bad.png").exists()
    assert {name for name, _ in added.skipped} == {"mine/readme.md", "mine/circle/bad.png"}
    assert [(d.name, d.counts) for d in list_datasets()] == [("my-shapes", {"train": 8})]
    assert len(load_splits(data_root / "my-shapes").classes) == 2
    assert [p.name for p in data_root.iterdir()] == ["my-shapes"]   # no temporary folder left


def test_a_zip_of_splits_keeps_them(data_root):
    files = {**shape_files("train/"), **shape_files("validation/", n=2),
             **shape_files("test/", n=2)}
    add_from_zip(zip_bytes(files), "split")
    assert sorted(p.name for p in (data_root / "split").iterdir()) == ["test", "train",
                                                                       "validation"]
    assert dataset_health(data_root / "split").trainable


def test_a_broken_zip_is_one_line_and_writes_nothing(data_root):
    with pytest.raises(FvError, match="^not a zip file") as caught:
        add_from_zip(b"PK\x03\x04 this is no zip", "broken")
    assert "\n" not in str(caught.value)
    assert list(data_root.iterdir()) == []


def test_a_one_class_zip_is_stored_but_untrainable(data_root):
    add_from_zip(shapes_zip("", classes=("circle",)), "one")
    assert dataset_health(data_root / "one").verdict() == (
        "cannot be trained on: fewer than two classes: found 1 (circle); a classifier needs at "
        "least two")


@pytest.mark.parametrize("name", ["../up", "a/b", "a\\b", ".hidden", "", "x" * 65, "a..b"])
def test_a_name_with_a_path_in_it_is_refused(name, data_root):
    with pytest.raises(FvError, match="is not allowed"):
        check_name(name)
    with pytest.raises(FvError):
        add_from_zip(shapes_zip(""), name)
    assert list(data_root.iterdir()) == []


def test_an_existing_name_is_refused_unless_replace_is_asked(data_root):
    add_from_zip(shapes_zip(""), "shapes")
    with pytest.raises(FvError, match="already exists; tick Replace"):
        add_from_zip(shapes_zip("", classes=("circle", "square", "triangle")), "shapes")
    add_from_zip(shapes_zip("", classes=("circle", "square", "triangle")), "shapes", replace=True)
    assert len(list((data_root / "shapes" / "train").iterdir())) == 3
    assert [p.name for p in data_root.iterdir()] == ["shapes"]


def test_a_server_folder_is_copied_or_referenced(data_root, tiny_data, tmp_path):
    copied = add_from_folder(tiny_data, "copy")
    assert (copied.path / "classes.json").is_file() and not copied.path.is_symlink()
    assert load_splits(copied.path).fingerprint() != ""
    linked = add_from_folder(tiny_data, "link", copy=False)
    assert linked.path.is_symlink() and linked.path.resolve() == tiny_data.resolve()
    assert {d.name: d.linked for d in list_datasets()} == {"copy": False, "link": True}
    flat = tmp_path / "flat"
    shutil.copytree(tiny_data / "train", flat)
    with pytest.raises(FvError, match="can be copied, not referenced"):
        add_from_folder(flat, "flat", copy=False)
    assert sorted(p.name for p in add_from_folder(flat, "flat").path.iterdir()) == ["train"]

"""Bounded scans: a folder someone points the app at is walked to a depth, a number of entries
and a time budget, never through a symlink out of its root or round a loop, and the result says
when the walk stopped early."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from fvcore import walk as walk_module
from fvcore.checkpoints.catalog import scan
from fvcore.datasets.folders import find_images
from fvcore.inference.loading import discover
from fvcore.walk import walk


def test_a_scan_finds_the_checkpoints_and_is_not_truncated(checkpoint_root):
    found = scan(checkpoint_root)
    assert sorted(e.name for e in found.entries) == [
        "shapes/cnn", "shapes/efficientnet_lite0", "shapes/vit"]
    assert found.truncated is None
    entries, problems = found          # still unpacks as before
    assert len(entries) == 3 and problems == []


def test_a_deep_tree_stops_at_the_depth_bound_and_says_so(tmp_path, checkpoint_root):
    shutil.copytree(checkpoint_root / "shapes" / "cnn", tmp_path / "shapes" / "cnn")
    deep = tmp_path.joinpath(*[f"d{i}" for i in range(40)])
    deep.mkdir(parents=True)
    shutil.copytree(checkpoint_root / "shapes" / "vit", deep / "vit")
    started = time.monotonic()
    found = scan(tmp_path)
    assert time.monotonic() - started < 2
    assert [e.name for e in found.entries] == ["shapes/cnn"]   # the shallow one is still found
    assert "stopped at 8 folder levels" in found.truncated
    classifiers, problems = discover(tmp_path, backend="pytorch")   # the CLI's way in says so too
    assert [c.name for c in classifiers] == ["shapes/cnn"]
    assert [p.reason for p in problems] == [found.truncated]


def test_a_symlink_loop_stops_and_is_not_followed_round(tmp_path, checkpoint_root):
    shutil.copytree(checkpoint_root / "shapes" / "cnn", tmp_path / "shapes" / "cnn")
    (tmp_path / "shapes" / "loop").symlink_to(tmp_path)          # back to the root
    (tmp_path / "shapes" / "cnn" / "self").symlink_to(tmp_path / "shapes" / "cnn")
    started = time.monotonic()
    found = scan(tmp_path)
    assert time.monotonic() - started < 2
    assert [e.name for e in found.entries] == ["shapes/cnn"]     # each real folder once
    assert found.truncated is None


def test_no_symlink_is_followed_out_of_the_root(tmp_path, checkpoint_root):
    root = tmp_path / "root"
    root.mkdir()
    (root / "elsewhere").symlink_to(checkpoint_root)             # a folder outside the root
    (root / "passwd.png").symlink_to("/etc/passwd")
    assert scan(root).entries == []
    assert find_images(root).files == []


def test_many_folders_stop_at_the_entry_bound_and_say_so(tmp_path):
    for i in range(300):
        (tmp_path / f"f{i:03d}").mkdir()
        (tmp_path / f"f{i:03d}" / "a.png").write_bytes(b"")
    found = walk(tmp_path, lambda name: name.endswith(".png"), max_entries=200)
    assert found.truncated and "200 entries" in found.truncated
    assert len(found.files) < 300


def test_a_walk_stops_at_its_time_budget(tmp_path, monkeypatch):
    for i in range(5):
        (tmp_path / f"f{i}").mkdir()
    clock = iter(range(0, 10_000, 10))          # every look at the clock: 10 s later
    monkeypatch.setattr(walk_module.time, "monotonic", lambda: next(clock))
    found = walk(tmp_path, lambda name: True, seconds=3)
    assert found.truncated.startswith("scan stopped after 3 s")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_special_filesystems_are_skipped(tmp_path):
    assert walk("/proc", lambda name: True).files == []
    assert "special filesystem" in walk("/proc", lambda name: True).truncated
    (tmp_path / "proc").symlink_to("/proc")
    started = time.monotonic()
    assert walk(tmp_path, lambda name: True).files == []   # a link out of the root: not followed
    assert time.monotonic() - started < 1


def test_a_scan_of_the_filesystem_root_is_bounded():
    started = time.monotonic()
    found = walk("/", lambda name: name == "card.json", max_entries=5_000, seconds=2)
    assert time.monotonic() - started < 4
    assert found.truncated is not None

"""Uploaded zips of labelled images: class folders found, unsafe or oversized zips refused,
non-images skipped with one-line reasons, nothing written outside the destination."""
from __future__ import annotations

import io
import stat
import zipfile

import numpy as np
import pytest
from PIL import Image

from fvcore.datasets.zipdata import (
    describe_skipped,
    extract_labelled_zip,
    safe_member_path,
    zip_bytes,
)
from fvcore.errors import FvError


def png(colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), colour, np.uint8)).save(out, format="PNG")
    return out.getvalue()


def test_class_folders_become_samples_in_the_models_class_order(tmp_path):
    data = zip_bytes({"Banana/b1.png": png(), "Apple/a1.png": png(), "Apple/a2.png": png()})
    extracted = extract_labelled_zip(data, tmp_path / "out")
    assert sorted(extracted.classes) == ["Apple", "Banana"] and extracted.n_images == 3
    samples, unknown = extracted.samples(["Banana", "Cherry", "Apple"])
    assert [label for _, label in samples] == [2, 2, 0] and unknown == []
    assert all(path.is_file() and (tmp_path / "out") in path.parents for path, _ in samples)


def test_a_wrapper_folder_such_as_test_is_stepped_into(tmp_path):
    data = zip_bytes({"mydata/test/Apple/a.png": png(), "mydata/test/Kiwi/k.png": png()})
    assert sorted(extract_labelled_zip(data, tmp_path).classes) == ["Apple", "Kiwi"]


def test_unknown_class_folders_are_reported_not_guessed(tmp_path):
    extracted = extract_labelled_zip(zip_bytes({"Apple/a.png": png(), "Durian/d.png": png()}),
                                     tmp_path)
    samples, unknown = extracted.samples(["Apple", "Banana"])
    assert len(samples) == 1 and unknown == ["Durian"]


def test_non_images_and_broken_images_are_skipped_with_one_line_reasons(tmp_path):
    data = zip_bytes({"Apple/a.png": png(), "Apple/notes.txt": b"hi",
                      "Apple/bad.jpg": b"\xff\xd8junk", "loose.png": png(),
                      "__MACOSX/Apple/._a.png": b"junk", "Apple/.DS_Store": b""})
    extracted = extract_labelled_zip(data, tmp_path)
    reasons = dict(extracted.skipped)
    assert reasons["Apple/notes.txt"] == "not an image file (.txt)"
    assert set(reasons) == {"Apple/notes.txt", "Apple/bad.jpg", "loose.png"}
    assert all("\n" not in line for line in describe_skipped(extracted.skipped))
    assert extracted.n_images == 1


@pytest.mark.parametrize("name", ["../../evil.png", "/etc/evil.png", "Apple/../../evil.png",
                                  "..\\..\\evil.png", "C:/evil.png"])
def test_path_traversal_is_refused_and_nothing_is_written_outside(tmp_path, name):
    dest = tmp_path / "a" / "b" / "out"
    with pytest.raises(FvError, match="refused"):
        extract_labelled_zip(zip_bytes({"Apple/ok.png": png(), name: png()}), dest)
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and dest not in p.parents]
    assert outside == []


def test_symbolic_links_are_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("Apple/link.png")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(FvError, match="symbolic link"):
        extract_labelled_zip(buffer.getvalue(), tmp_path)


def test_a_zip_bomb_is_refused_by_declared_size(tmp_path):
    bomb = zip_bytes({"Apple/a.png": png(), "Apple/big.png": b"\0" * 2_000_000})
    assert len(bomb) < 20_000
    with pytest.raises(FvError, match="limit 1 MiB"):
        extract_labelled_zip(bomb, tmp_path, max_total_bytes=1 << 20)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_a_header_lying_about_the_size_never_expands_past_the_limit(tmp_path):
    bomb = zip_bytes({"Apple/a.png": png(), "Apple/big.png": b"\0" * 2_000_000})
    extracted = extract_labelled_zip(_shrink_declared(bomb, "Apple/big.png"), tmp_path,
                                     max_total_bytes=1 << 20)
    assert "damaged zip entry" in dict(extracted.skipped)["Apple/big.png"]
    assert sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file()) < 10_000


def _shrink_declared(data: bytes, name: str) -> bytes:
    """Rewrite the central directory so ``name`` claims to be 100 bytes uncompressed."""
    out = bytearray(data)
    pos = 0
    while (pos := out.find(b"PK\x01\x02", pos)) >= 0:
        length = int.from_bytes(out[pos + 28:pos + 30], "little")
        if out[pos + 46:pos + 46 + length].decode() == name:
            out[pos + 24:pos + 28] = (100).to_bytes(4, "little")
        pos += 4
    return bytes(out)


def test_too_many_files_is_refused(tmp_path):
    data = zip_bytes({f"Apple/{i}.png": png() for i in range(6)})
    with pytest.raises(FvError, match="6 entries, limit 5"):
        extract_labelled_zip(data, tmp_path, max_files=5)


@pytest.mark.parametrize("files, message", [
    ({"a.png": b"x", "b.png": b"y"}, "no class folders"),
    ({"Apple/readme.txt": b"x"}, "no class folders"),
])
def test_a_zip_without_class_folders_gets_a_clear_error(tmp_path, files, message):
    with pytest.raises(FvError, match=message):
        extract_labelled_zip(zip_bytes(files), tmp_path)


def test_not_a_zip_is_one_line(tmp_path):
    with pytest.raises(FvError, match="^not a zip file"):
        extract_labelled_zip(b"PNG? no, just bytes", tmp_path)


def test_member_names_are_normalised():
    assert str(safe_member_path("./Apple//a.png")) == "Apple/a.png"
    assert str(safe_member_path("Apple\\a.png")) == "Apple/a.png"

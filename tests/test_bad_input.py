"""The bad-input corpus (tests/badfiles.py) through every entry point: the loader, the Python API
and the command line. Each bad file gets one line naming it; the good ones are still answered;
nothing prints a traceback."""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from badfiles import (
    BOMB_SIDE,
    asymmetric_image,
    bad_cases,
    corpus,
    encode,
    good_cases,
    write_corpus,
)
from conftest import make_checkpoint
from PIL import Image
from skimage import data as skdata
from test_app import navigation_mode  # noqa: F401 - AppTest runs as a live server does

from fvcore.cli import main
from fvcore.errors import FvError, ImageError
from fvcore.inference.images import load_image
from fvcore.inference.loading import load_checkpoint
from fvcore.inference.predict import predict_all

CASES = corpus()
IDS = [case.filename for case in CASES]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The corpus written to disk: filename -> path."""
    return write_corpus(tmp_path_factory.mktemp("badfiles"))


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_data):
    """A checkpoints folder with one small CNN (64 px)."""
    root = tmp_path_factory.mktemp("checkpoints")
    make_checkpoint(root / "shapes" / "cnn", "cnn", tiny_data)
    return root


@pytest.fixture(scope="module")
def classifier(models):
    return load_checkpoint(models / "shapes" / "cnn", backend="pytorch")


def _mean(image: Image.Image, box: tuple[int, int, int, int]) -> np.ndarray:
    return np.asarray(image.crop(box), dtype=np.float64).reshape(-1, 3).mean(axis=0)


# --- the loader --------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_loader_returns_rgb_or_one_line_error_naming_the_file(case, files):
    path = files[case.filename]
    for source, name in ((case.data, case.filename), (path, str(path))):
        if case.ok:
            image = load_image(source, name=name if isinstance(source, bytes) else None)
            assert image.mode == "RGB" and image.width >= 1 and image.height >= 1
            continue
        with pytest.raises(ImageError) as info:
            load_image(source, name=name if isinstance(source, bytes) else None)
        message = str(info.value)
        assert case.expected in message and name in message
        assert "\n" not in message and len(message) < 300 + len(name)


def test_exif_rotated_jpeg_is_loaded_upright(files):
    image = load_image(files["exif-rotated.jpg"])
    upright = asymmetric_image()
    assert image.size == upright.size == (96, 64)
    diff = np.abs(np.asarray(image, np.int16) - np.asarray(upright, np.int16))
    assert diff.mean() < 3
    assert _mean(image, (0, 0, 20, 20))[0] > 180            # red block top-left
    assert _mean(image, (0, 58, 96, 64))[2] > 180           # blue band along the bottom


def test_exif_rotated_jpeg_is_predicted_upright(classifier, files):
    seen = classifier.preprocess([files["exif-rotated.jpg"]])
    upright = classifier.preprocess([asymmetric_image()])
    sideways = classifier.preprocess([asymmetric_image().transpose(Image.Transpose.ROTATE_90)])
    assert (seen - upright).abs().mean() < 0.05 < (seen - sideways).abs().mean()
    probs = classifier.predict(files["exif-rotated.jpg"])
    expected = classifier.predict(asymmetric_image())
    assert np.allclose(probs, expected, atol=0.02)


@pytest.mark.parametrize("filename, box, rgb", [
    ("cmyk.jpg", (0, 0, 32, 32), (230, 30, 30)),
    ("palette-transparent.png", (0, 0, 16, 32), (255, 0, 0)),
    ("palette-transparent.png", (16, 0, 32, 32), (255, 255, 255)),   # transparent -> white
    ("rgba.webp", (0, 0, 16, 32), (0, 200, 0)),
    ("rgba.webp", (16, 0, 32, 32), (255, 255, 255)),
    ("animated.gif", (0, 0, 32, 32), (250, 0, 0)),                  # the first frame
    ("one-pixel.png", (0, 0, 1, 1), (10, 200, 30)),
])
def test_unusual_modes_become_the_right_rgb_colours(files, filename, box, rgb):
    assert np.allclose(_mean(load_image(files[filename]), box), rgb, atol=12)


def test_16_bit_grayscale_keeps_its_ramp_in_8_bits(files):
    row = np.asarray(load_image(files["gray16.png"]))[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255 and np.all(np.diff(row) >= 0)


def test_decompression_bomb_is_refused_before_decoding(files):
    start = time.perf_counter()
    with pytest.raises(ImageError, match=f"image too large: {BOMB_SIDE}x{BOMB_SIDE} pixels"):
        load_image(files["bomb.png"])
    assert time.perf_counter() - start < 1.0
    assert files["bomb.png"].stat().st_size < 100_000      # a small file that would be 400 MB


def test_a_sliver_is_refused_before_resizing_blows_it_up(classifier):
    # only 1.6 M pixels, but resizing its short side to the model's input needs over a GB
    with pytest.raises(ImageError, match="image too elongated: 200000x8"):
        classifier.predict(Image.new("RGB", (200_000, 8)))


def test_a_lazily_opened_truncated_pil_image_raises_image_error(files):
    with Image.open(files["truncated.jpg"]) as image:
        with pytest.raises(ImageError, match="photo.jpg: truncated JPEG"):
            load_image(image, name="photo.jpg")


# --- the Python API ----------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_classifier_predicts_good_files_and_names_bad_ones(case, classifier, files):
    path = files[case.filename]
    if case.ok:
        probs = classifier.predict(path)
        assert probs.shape == (1, 3) and np.isclose(probs.sum(), 1.0, atol=1e-5)
        return
    with pytest.raises(ImageError, match=case.expected) as info:
        classifier.predict([files["chelsea.jpg"], path])
    assert str(path) in str(info.value)


def test_predict_all_answers_the_good_files_and_lists_every_bad_one(classifier, files):
    results, errors = predict_all([classifier], [files[c.filename] for c in CASES])
    assert [r["image"] for r in results] == [str(files[c.filename]) for c in CASES if c.ok]
    expected = {str(files[c.filename]): c.expected for c in CASES if not c.ok}
    assert {e["image"] for e in errors} == set(expected)
    for error in errors:
        assert error["error"].startswith(error["image"] + ": ")
        assert expected[error["image"]] in error["error"]


# --- the command line --------------------------------------------------------------------------

def _check_cli_answer(out: dict, files) -> None:
    good = [str(files[c.filename]) for c in CASES if c.ok]
    assert [r["image"] for r in out["results"]] == good
    for result in out["results"]:
        assert result["predictions"]["shapes/cnn"]["top"][0]["label"] in {"circle", "square",
                                                                         "triangle"}
    errors = {e["image"]: e["error"] for e in out["errors"]}
    assert len(errors) == len(out["errors"]) == len(bad := [c for c in CASES if not c.ok])
    for case in bad:
        path = str(files[case.filename])
        assert case.expected in errors[path] and path in errors[path]


def test_cli_predict_in_process_answers_good_files_and_exits_2(models, files, capsys,
                                                              monkeypatch):
    monkeypatch.setenv("FVCORE_BACKEND", "pytorch")
    code = main(["predict", *map(str, files.values()), "--checkpoints", str(models), "--json"])
    captured = capsys.readouterr()
    assert code == 2 and "Traceback" not in captured.err
    _check_cli_answer(json.loads(captured.out), files)


def test_cli_predict_subprocess_has_no_traceback(models, files):
    env = {**os.environ, "FVCORE_BACKEND": "pytorch", "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "fvcore", "predict", *map(str, files.values()),
            "--checkpoints", str(models)]
    proc = subprocess.run([*args, "--json"], capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    _check_cli_answer(json.loads(proc.stdout), files)
    # plain-text mode: one "error: <file>: <reason>" line per bad file on stderr, and nothing
    # else: not Pillow's remark on a photo's damaged EXIF block, which is still answered
    damaged = files["chelsea.jpg"].with_name("damaged-exif.jpg")
    damaged.write_bytes(damaged_exif_jpeg())
    proc = subprocess.run([*args[:-2], str(damaged), *args[-2:]], capture_output=True,
                          text=True, timeout=180, env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert all(line.startswith("error: ") for line in lines), proc.stderr
    assert len(lines) == len(bad_cases()) - sum(c.ok for c in bad_cases())
    for case in good_cases():
        assert str(files[case.filename]) in proc.stdout
    assert str(damaged) in proc.stdout


def damaged_exif_jpeg() -> bytes:
    """A good photo whose EXIF block lists a tag with data far past its end: Pillow warns
    ("Tag data larger than file") and skips the tag."""
    ifd = struct.pack(">H", 2)
    ifd += struct.pack(">HHII", 0x0112, 3, 1, 1 << 16)     # Orientation 1 (upright)
    ifd += struct.pack(">HHII", 0x010E, 2, 1000, 0x7000)   # a description 28 KB past the end
    exif = b"Exif\x00\x00MM\x00*" + struct.pack(">I", 8) + ifd + struct.pack(">I", 0)
    return encode(Image.fromarray(skdata.chelsea()), "JPEG", exif=exif)


def test_cli_shows_our_warnings_in_one_line_each_and_no_library_warnings(
        models, tmp_path, capsys, monkeypatch):
    # the ONNX fast path falling back to PyTorch is ours to say (one line); Pillow's remark on
    # the damaged EXIF block is not
    from fvcore.inference import runners as fastpath

    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operator aten::weird")

    root = tmp_path / "checkpoints"
    shutil.copytree(models, root, ignore=shutil.ignore_patterns(fastpath.CACHE_DIR))
    monkeypatch.setattr(fastpath, "export_onnx", broken)
    monkeypatch.setenv("FVCORE_BACKEND", "onnx")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    photo = tmp_path / "damaged-exif.jpg"
    photo.write_bytes(damaged_exif_jpeg())
    assert main(["predict", str(photo), "--checkpoints", str(root)]) == 0
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("warning: shapes/cnn: ONNX fast path unavailable (RuntimeError: "
                           "unsupported operator aten::weird)")


def test_cli_predict_with_only_bad_files_exits_2_with_empty_results(models, files, capsys,
                                                                   monkeypatch):
    monkeypatch.setenv("FVCORE_BACKEND", "pytorch")
    bad = [str(files[c.filename]) for c in CASES if not c.ok]
    assert main(["predict", *bad, "--checkpoints", str(models), "--json"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["results"] == [] and len(out["errors"]) == len(bad)


def test_cli_predict_names_a_missing_file(models, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FVCORE_BACKEND", "pytorch")
    missing = tmp_path / "nowhere.jpg"
    assert main(["predict", str(missing), "--checkpoints", str(models), "--json"]) == 2
    [error] = json.loads(capsys.readouterr().out)["errors"]
    assert error["image"] == str(missing) and "file not found" in error["error"]


# --- the app (AppTest): the Predict page -------------------------------------------------------

def _app(models, monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    from fvcore import settings
    monkeypatch.setenv(settings.ENV_CHECKPOINTS, str(models))
    monkeypatch.setenv(settings.ENV_RUNS_DB, str(tmp_path / "runs.db"))
    monkeypatch.setenv("FVCORE_BACKEND", "pytorch")
    monkeypatch.delenv(settings.ENV_SAMPLES, raising=False)
    app_py = Path(__file__).resolve().parent.parent / "app.py"
    return AppTest.from_file(str(app_py), default_timeout=120).run()


def test_predict_page_names_each_bad_upload_and_answers_the_good_ones(models, monkeypatch,
                                                                      tmp_path):
    at = _app(models, monkeypatch, tmp_path)
    at.switch_page("pages/predict.py").run()
    at.file_uploader(key="predict_upload").set_value(
        [(c.filename, c.data, "application/octet-stream") for c in CASES]).run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    bad = [c for c in CASES if not c.ok]
    assert len(errors) == len(bad)
    for case, message in zip(bad, errors, strict=True):
        assert message.startswith(f"{case.filename}: ") and case.expected in message
        assert "\n" not in message and "Traceback" not in message
    assert [h.value for h in at.subheader] == [c.filename for c in CASES if c.ok]


def test_predict_page_names_a_bad_upload_once(models, monkeypatch, tmp_path):
    at = _app(models, monkeypatch, tmp_path)
    at.switch_page("pages/predict.py").run()
    at.file_uploader(key="predict_upload").set_value(
        [("notes.jpg", b"not a photo", "image/jpeg")]).run()
    assert [e.value for e in at.error] == ["notes.jpg: not an image (unrecognised file format)"]


# --- the zip corpus (Evaluate's uploads, fvcore/zipdata.py) ------------------------------------

def _corpus_zip() -> tuple[bytes, dict]:
    """Every corpus file inside class folders of the fixture's classes."""
    from fvcore.datasets.zipdata import zip_bytes
    classes = ("circle", "square", "triangle")
    names = {f"{classes[i % 3]}/{c.filename}": c for i, c in enumerate(CASES)}
    return zip_bytes({n: c.data for n, c in names.items()}), names


def _evaluate(at, name: str, data: bytes):
    at.switch_page("pages/evaluate.py").run()
    at.file_uploader(key="eval_zip").set_value((name, data, "application/zip")).run()
    return at.button(key="eval_run").click().run()


def test_evaluate_page_scores_the_good_files_of_a_corpus_zip_and_lists_the_skipped(
        models, monkeypatch, tmp_path):
    data, names = _corpus_zip()
    at = _evaluate(_app(models, monkeypatch, tmp_path), "corpus.zip", data)
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    skipped = sum(not c.ok for c in names.values())
    assert at.warning[0].value.startswith(f"{skipped} file(s) skipped")
    assert f"Results on {sum(c.ok for c in names.values())} images" in [
        h.value for h in at.subheader]


@pytest.mark.parametrize("entry, message", [
    ("../../fvcore-escape-{}.png", "refused"), ("/tmp/fvcore-escape-{}.png", "refused")])
def test_evaluate_page_refuses_a_path_traversal_zip_in_one_line(models, monkeypatch, tmp_path,
                                                                entry, message):
    import uuid

    from fvcore.datasets.zipdata import zip_bytes
    entry = entry.format(uuid.uuid4().hex)
    data = zip_bytes({"circle/ok.png": good_cases()[2].data, entry: good_cases()[2].data})
    at = _evaluate(_app(models, monkeypatch, tmp_path), "evil.zip", data)
    assert not at.exception
    [error] = [e.value for e in at.error]
    assert message in error and "\n" not in error
    escaped = Path(entry).name
    assert not any(Path(d, escaped).exists() for d in ("/", "/tmp", Path.cwd(), tmp_path))


def _suffix_refused(filename: str) -> bool:
    from fvcore.datasets.folders import IMAGE_SUFFIXES
    return Path(filename).suffix.lower() not in IMAGE_SUFFIXES


def test_the_corpus_in_a_labelled_zip_keeps_the_good_files_and_skips_each_bad_one(tmp_path):
    from fvcore.datasets.zipdata import extract_labelled_zip
    data, names = _corpus_zip()
    extracted = extract_labelled_zip(data, tmp_path / "out")
    kept = {p.relative_to(extracted.root).as_posix() for f in extracted.classes.values() for p in f}
    assert kept == {n for n, c in names.items() if c.ok}
    skipped = dict(extracted.skipped)
    assert set(skipped) == {n for n, c in names.items() if not c.ok}
    for name, reason in skipped.items():
        expected = "not an image file" if _suffix_refused(name) else names[name].expected
        assert expected in reason and "\n" not in reason, (name, reason)
    assert [p for p in tmp_path.rglob("*") if (tmp_path / "out") not in p.parents] == [
        tmp_path / "out"]


@pytest.mark.parametrize("files", [
    {"circle/a.png": b"", "circle/a.png/b.png": b""},              # a file, then a folder
    {"circle/a.png/b.png": b"", "circle/a.png": b""},              # a folder, then a file
    {"circle/" + "c" * 300 + ".png": b""},                         # a name the disk refuses
    {"d" * 300 + "/b.png": b""},
], ids=["file-then-folder", "folder-then-file", "long-file-name", "long-folder-name"])
def test_hostile_zip_names_are_one_line_errors_or_skips(tmp_path, files):
    from fvcore.datasets.zipdata import extract_labelled_zip, zip_bytes
    good = {"circle/ok.png": good_cases()[2].data, "square/ok.jpg": good_cases()[0].data}
    data = {name: content or good_cases()[2].data for name, content in files.items()}
    try:
        extracted = extract_labelled_zip(zip_bytes({**good, **data}), tmp_path / "out")
    except FvError as exc:
        assert "\n" not in str(exc)
        return
    assert extracted.n_images >= 2 and extracted.skipped

"""Robustness and unknown inputs: every corruption at every severity, a corruption sweep on a tiny
checkpoint (stored, resumed), the mCE and AUROC on hand-built cases, OOD scores stored and used
on Predict, Compare's Robustness tab, and bench/robustness.py's README table."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import test_app
from skimage import data as skdata
from streamlit.testing.v1 import AppTest

from fvcore import settings
from fvcore.app import robustness as app_robustness
from fvcore.cli.parser import main
from fvcore.cli.shift import parse_severities
from fvcore.errors import FvError
from fvcore.evaluation import ood, sweep
from fvcore.evaluation.corruptions import CORRUPTIONS, corrupt
from fvcore.evaluation.robustness import (
    ROBUSTNESS,
    corruption_errors,
    load_robustness,
    mean_corruption_error,
)
from fvcore.inference.loading import load_checkpoint
from fvcore.inference.predict import ImagePrediction, ModelAnswer

ROOT = Path(__file__).resolve().parent.parent
PHOTO = skdata.chelsea()[::4, ::4].copy()     # 75 x 113 x 3


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_each_corruption_keeps_shape_and_dtype_and_grows_with_severity(name):
    distance = {}
    for severity in (1, 5):
        out = corrupt(PHOTO, name, severity, rng=0)
        assert out.shape == PHOTO.shape and out.dtype == np.uint8
        assert 0 <= out.min() <= out.max() <= 255
        distance[severity] = np.abs(out.astype(float) - PHOTO).mean()
    assert 0 < distance[1] < distance[5]
    np.testing.assert_array_equal(corrupt(PHOTO, name, 3, rng=7), corrupt(PHOTO, name, 3, rng=7))


def test_corrupt_takes_grey_and_pil_images_and_refuses_unknown_names():
    from PIL import Image
    assert corrupt(skdata.camera()[::8, ::8], "contrast", 2).shape == (64, 64, 3)
    assert corrupt(Image.fromarray(PHOTO), "pixelate", 1).shape == PHOTO.shape
    with pytest.raises(FvError, match="choose from .*gaussian_noise"):
        corrupt(PHOTO, "snowstorm", 1)
    with pytest.raises(FvError, match="1-5"):
        corrupt(PHOTO, "contrast", 6)


def test_severities_parse_as_ranges_and_lists():
    assert parse_severities("1-5") == [1, 2, 3, 4, 5]
    assert parse_severities("1,5") == [1, 5]
    with pytest.raises(FvError):
        parse_severities("0-7")


def test_mce_is_the_mean_over_corruptions_of_summed_errors_over_the_baselines():
    model = {("noise", 1): 0.2, ("noise", 5): 0.6, ("blur", 1): 0.1, ("blur", 5): 0.3}
    base = {("noise", 1): 0.4, ("noise", 5): 0.6, ("blur", 1): 0.2, ("blur", 5): 0.2,
            ("jpeg", 1): 0.5}
    assert corruption_errors(model, base) == pytest.approx({"noise": 0.8, "blur": 1.0})
    assert mean_corruption_error(model, base) == pytest.approx(0.9)
    assert mean_corruption_error(base, base) == pytest.approx(1.0)


def test_auroc_of_perfectly_separated_scores_is_one():
    assert ood.auroc([0.9, 0.8, 0.95], [0.1, 0.3]) == 1.0
    assert ood.auroc([0.1, 0.2], [0.5, 0.6]) == 0.0
    score = ood.separation("msp", np.linspace(0.5, 1.0, 21), np.array([0.1, 0.2, 0.6]))
    assert score.threshold == pytest.approx(0.525) and score.fpr95 == pytest.approx(1 / 3)
    s = ood.scores(np.array([[0.0, 0.0], [10.0, 0.0]]))
    assert s["msp"] == pytest.approx([0.5, 1 / (1 + np.exp(-10))])
    assert s["energy"] == pytest.approx([np.log(2), 10 + np.log1p(np.exp(-10))])


@pytest.fixture
def cnn(checkpoint_root, tmp_path) -> Path:
    """A private copy of the fixture CNN (sweeps write beside it)."""
    return Path(shutil.copytree(checkpoint_root / "shapes" / "cnn", tmp_path / "cnn"))


def test_a_sweep_stores_each_severity_and_resumes_without_recomputing(cnn, tiny_data,
                                                                      monkeypatch):
    calls = []
    real = sweep.corrupt
    monkeypatch.setattr(sweep, "corrupt", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    clf = load_checkpoint(cnn)
    got = sweep.sweep(clf, [tiny_data / "test"], corruptions=["gaussian_noise", "pixelate"],
                      severities=[1, 5], limit=5)
    with open(cnn / ROBUSTNESS, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["corruption"], r["severity"]) for r in rows] == [
        ("clean", "0"), ("gaussian_noise", "1"), ("gaussian_noise", "5"), ("pixelate", "1"),
        ("pixelate", "5")]
    assert {r["n_images"] for r in rows} == {"5"} and len(calls) == 4 * 5
    assert got.computed == ("gaussian_noise", "pixelate") and got.clean.n_images == 5
    assert all(0 <= r.accuracy <= 1 and 0 <= r.ece <= 1 for r in got.rows)
    before = (cnn / ROBUSTNESS).read_text()
    calls.clear()
    again = sweep.sweep(clf, [tiny_data / "test"], corruptions=["gaussian_noise", "pixelate"],
                        severities=[1, 5], limit=5)
    assert calls == [] and again.computed == () and again.rows == got.rows
    assert (cnn / ROBUSTNESS).read_text() == before
    more = sweep.sweep(clf, [tiny_data / "test"], corruptions=["pixelate"], severities=[1, 3],
                       limit=5)
    assert calls == ["pixelate"] * 5 and [r.severity for r in more.rows] == [1, 3]
    assert load_robustness(cnn).clean == got.clean


def test_the_cli_sweeps_several_checkpoints_and_prints_the_mce(cnn, checkpoint_root, tiny_data,
                                                               tmp_path, capsys):
    vit = shutil.copytree(checkpoint_root / "shapes" / "vit", tmp_path / "vit")
    code = main(["robustness", str(cnn), str(vit), "--data", str(tiny_data / "test"),
                 "--corruptions", "contrast", "--severities", "1,5", "--limit", "3", "-q", "-v"])
    out = capsys.readouterr().out
    assert code == 0 and f"baseline for mCE: {cnn}" in out and "CE contrast" in out
    assert (vit / ROBUSTNESS).is_file() and "100.0%" in out   # the baseline's own mCE
    assert main(["robustness", str(cnn), "--data", str(tiny_data / "test"),
                 "--corruptions", "fog"]) == 1


def test_ood_scores_are_stored_and_mark_predict_answers_below_the_threshold(cnn, tiny_data):
    report = ood.measure_ood(load_checkpoint(cnn), [tiny_data / "test"], limit=6)
    stored = json.loads((cnn / ood.OOD).read_text())
    assert stored["n_in"] == 6 and stored["n_out"] == report.n_out >= 19 + 5 * 8
    assert [s.name for s in report.scores] == ["msp", "energy"]
    assert all(0 <= s.auroc <= 1 for s in report.scores) and ood.load_ood(cnn) == report
    answers = [ModelAnswer("m1", ("a", "b"), np.array([0.6, 0.4]), 1.0),
               ModelAnswer("m2", ("a", "b"), np.array([0.9, 0.1]), 1.0)]
    prediction = ImagePrediction.of("x.png", answers)
    note = app_robustness.unknown_note(prediction, {"m1": 0.7, "m2": 0.5})
    assert note.startswith("Probably none of its classes") and "m1" in note and "m2" not in note
    assert app_robustness.unknown_note(prediction, {"m1": 0.5}) is None
    low = ImagePrediction.of("y.png", [ModelAnswer("m1", ("a", "b"), np.array([.25, .2]), 1.0)])
    assert app_robustness.unknown_note(low, {}).startswith("Low confidence (best 25%)")


navigation_mode = test_app.navigation_mode   # the same fixture as tests/test_app.py


def compare_page(root: Path, tiny_data: Path, tmp_path: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv(settings.ENV_CHECKPOINTS, str(root))
    monkeypatch.setenv(settings.ENV_RUNS_DB, str(tmp_path / "runs.db"))
    monkeypatch.setenv("FVCORE_DATA", str(tiny_data))
    monkeypatch.setenv("FVCORE_BACKEND", "pytorch")
    monkeypatch.delenv(settings.ENV_SAMPLES, raising=False)
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    return app.switch_page("pages/compare.py").run()


def frame_with(app: AppTest, column: str):
    """The one dataframe on the page that has ``column``."""
    found = [d.value for d in app.dataframe if column in d.value]
    assert len(found) == 1, [list(d.value) for d in app.dataframe]
    return found[0]


def test_compare_robustness_tab_shows_the_stored_sweeps(navigation_mode, checkpoint_root,
                                                        tiny_data, tmp_path, monkeypatch):
    root = tmp_path / "checkpoints"
    shutil.copytree(checkpoint_root / "shapes", root / "shapes")
    app = compare_page(root, tiny_data, tmp_path, monkeypatch)
    assert not app.exception
    assert any("python -m fvcore robustness" in i.value for i in app.info)
    for arch in ("cnn", "vit"):
        clf = load_checkpoint(root / "shapes" / arch)
        sweep.sweep(clf, [tiny_data / "test"], corruptions=["contrast", "jpeg_compression"],
                    severities=[1, 5], limit=3)
    ood.measure_ood(load_checkpoint(root / "shapes" / "cnn"), [tiny_data / "test"], limit=3)
    app = compare_page(root, tiny_data, tmp_path, monkeypatch)
    assert not app.exception, app.exception
    assert not any("python -m fvcore robustness" in i.value for i in app.info)
    ranking = frame_with(app, "mce")
    assert sorted(ranking["model"]) == ["cnn", "vit"] and ranking["corruptions"].tolist() == [2, 2]
    baseline = app.selectbox(key="robust_baseline")
    assert ranking.set_index("model").loc[baseline.value, "mce"] == pytest.approx(100)
    assert list(frame_with(app, "msp_auroc")["model"]) == ["cnn"]
    baseline.set_value("vit").run()
    assert not app.exception
    ranking = frame_with(app, "mce")
    assert ranking.set_index("model").loc["vit", "mce"] == pytest.approx(100)


def test_the_bench_script_sweeps_a_group_and_writes_its_table_into_the_readme(
        checkpoint_root, tiny_data, tmp_path, capsys):
    import sys
    sys.path.insert(0, str(ROOT / "bench"))
    from robustness import main as bench_robustness
    group = tmp_path / "shapes"
    for arch in ("cnn", "vit"):
        shutil.copytree(checkpoint_root / "shapes" / arch, group / arch)
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- robustness:start -->\nold\n<!-- robustness:end -->\n\nend\n")
    args = [str(group), "--data", str(tiny_data / "test"), "--limit", "3", "--corruptions",
            "contrast,pixelate", "--severities", "1,5", "--readme", str(readme)]
    assert bench_robustness(args) == 0
    text = readme.read_text()
    assert "old" not in text and text.endswith("<!-- robustness:end -->\n\nend\n")
    rows = {line.split(" | ")[0][2:]: line for line in text.splitlines()
            if line.startswith(("| cnn", "| vit"))}
    assert sorted(rows) == ["cnn (baseline)", "vit"]   # the default baseline: cnn
    assert "| 100.0% |" in rows["cnn (baseline)"] and rows["vit"].endswith("| – |")
    assert "`python bench/robustness.py " in text
    assert "--limit 3 --corruptions contrast,pixelate --severities 1,5`" in text
    assert "3 test images per model, 2 corruptions (contrast, pixelate)" in text
    assert (group / "cnn" / ROBUSTNESS).is_file()
    ood.measure_ood(load_checkpoint(group / "vit"), [tiny_data / "test"], limit=3)
    capsys.readouterr()
    assert bench_robustness([*args[:-2], "--readme", "", "--table-only"]) == 0
    vit = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| vit"))
    assert vit.endswith(" / ".join(f"{s.auroc:.3f}" for s in ood.load_ood(group / "vit").scores)
                        + " |")
    assert bench_robustness([str(tmp_path / "nowhere"), "--data", "x", "--table-only"]) == 1

"""Perturb a photo: the corrupted copy (seeded, scaled, PNG), the answer changes it causes, and
the control on the Predict and Grad-CAM pages (widgets set by key, the exact lines shown)."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import test_app
from PIL import Image
from skimage import data as skdata
from streamlit.testing.v1 import AppTest

from fvcore import settings
from fvcore.app import cache
from fvcore.app import perturb as app_perturb
from fvcore.errors import FvError, ImageError
from fvcore.evaluation.perturb import (
    MAX_SIDE,
    AnswerChange,
    PredictionShift,
    answer_change,
    corrupt_photo,
)
from fvcore.inference.predict import ImagePrediction, ModelAnswer, PredictionRun

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("cnn", "efficientnet_lite0", "vit")
CLASSES = ("circle", "square", "triangle")
TIMEOUT = 120


def png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64)


CHELSEA = png(skdata.chelsea())           # 451 x 300
ASTRONAUT = png(skdata.astronaut())       # 512 x 512


# --- the library -------------------------------------------------------------------------------

def test_severity_5_of_a_strong_corruption_changes_the_pixels_and_repeats_exactly():
    clean = pixels(CHELSEA)
    mild, strong = (pixels(corrupt_photo(CHELSEA, "gaussian_noise", s)) for s in (1, 5))
    assert clean.shape == mild.shape == strong.shape
    assert 0 < np.abs(mild - clean).mean() < np.abs(strong - clean).mean()
    assert np.abs(strong - clean).mean() > 40            # a grey-level mean of 40 or more
    assert corrupt_photo(CHELSEA, "gaussian_noise", 5) == corrupt_photo(CHELSEA, "gaussian_noise",
                                                                        5)
    assert corrupt_photo(CHELSEA, "gaussian_noise", 5, seed=1) != corrupt_photo(
        CHELSEA, "gaussian_noise", 5)


def test_a_large_photo_is_scaled_to_the_working_size_before_it_is_corrupted():
    big = png(np.kron(skdata.coffee()[:200, :300], np.ones((4, 4, 1), dtype=np.uint8)))
    with Image.open(io.BytesIO(corrupt_photo(big, "contrast", 2))) as image:
        assert max(image.size) == MAX_SIDE and image.size == (MAX_SIDE, 341)


def test_corrupt_photo_refuses_a_broken_file_and_an_unknown_choice_in_one_line():
    with pytest.raises(ImageError) as bad:
        corrupt_photo(b"these are not pixels", "contrast", 3, name="notes.jpg")
    assert str(bad.value).startswith("notes.jpg") and "\n" not in str(bad.value)
    with pytest.raises(FvError, match="choose from"):
        corrupt_photo(CHELSEA, "snowstorm", 3)
    with pytest.raises(FvError, match="1-5"):
        corrupt_photo(CHELSEA, "contrast", 0)


def answer(model: str, *probs: float) -> ModelAnswer:
    return ModelAnswer(model, CLASSES, np.array(probs), 1.0)


def test_the_shift_pairs_answers_by_model_and_names_the_flipped_ones():
    before = ImagePrediction.of("cat.png", [answer("a", .9, .05, .05), answer("b", .2, .7, .1)])
    after = ImagePrediction.of("cat.png", [answer("b", .1, .8, .1), answer("a", .3, .6, .1)])
    shift = PredictionShift.of(before, after, "gaussian_noise", 5)
    assert shift.changes == (AnswerChange("a", "circle", .9, "square", .6, .3),
                             AnswerChange("b", "square", .7, "square", .8, .8))
    assert shift.flipped == ("a",) and shift.label == "gaussian noise, severity 5"
    ens = shift.ensemble
    assert (ens.model, ens.before, ens.after, ens.flipped) == ("ensemble", "circle", "square", True)
    assert (ens.before_prob, ens.after_prob, ens.kept_prob) == pytest.approx((.55, .7, .2))
    assert app_perturb.summary(shift) == ("1 of 2 models changes its answer under gaussian "
                                          "noise, severity 5.")
    assert app_perturb.change_line(shift.changes[0]) == (
        "**a**: circle 90% → **square** 60% · flipped (circle now 30%)")
    assert app_perturb.change_line(shift.changes[1]) == "**b**: square 70% → square 80% · kept"
    with pytest.raises(ValueError, match="from a"):
        PredictionShift.of(before, ImagePrediction.of("cat.png", [answer("b", 1, 0, 0)]),
                           "contrast", 1)
    with pytest.raises(ValueError, match="expected 3"):
        answer_change("a", CLASSES, np.array([.5, .5]), np.array([.2, .3, .5]))


# --- the pages ---------------------------------------------------------------------------------

navigation_mode = test_app.navigation_mode   # the same fixture as tests/test_app.py


@pytest.fixture
def app(checkpoint_root, tiny_data, tmp_path, monkeypatch) -> AppTest:
    """The app over the fixture checkpoints (PyTorch backend: no ONNX export in unit tests)."""
    root = tmp_path / "checkpoints"
    shutil.copytree(checkpoint_root / "shapes", root / "shapes")
    monkeypatch.setenv(settings.ENV_CHECKPOINTS, str(root))
    monkeypatch.setenv(settings.ENV_RUNS_DB, str(tmp_path / "runs.db"))
    monkeypatch.setenv(settings.ENV_DATA, str(tiny_data))
    monkeypatch.setenv(settings.ENV_BACKEND, "pytorch")
    monkeypatch.delenv(settings.ENV_SAMPLES, raising=False)
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()


def no_failure(app: AppTest) -> None:
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]


def lines(app: AppTest) -> list[str]:
    """The answer-change lines shown (one markdown each)."""
    return [m.value for m in app.markdown if " → " in m.value and m.value.startswith("**")]


def test_predict_with_no_perturbation_shows_no_perturbed_block(app):
    app.switch_page("pages/predict.py").run()
    app.file_uploader(key="predict_upload").set_value(("chelsea.png", CHELSEA, "image/png")).run()
    no_failure(app)
    assert app.selectbox(key="predict_corruption").value == "none"
    assert lines(app) == [] and not [m for m in app.markdown if "Perturbed" in m.value]


def fake_predict(models, files):
    """Every model: circle 90% on the original photo, square 60% (circle 30%) on any other
    (each model a thousandth apart, as two models' answers are: the pages draw one chart each)."""
    def one(name, data):
        probs = (.9, .05, .05) if data == CHELSEA else (.3, .6, .1)
        return ImagePrediction.of(name, [
            ModelAnswer(m.name, CLASSES, np.array(probs) + [0, i / 1000, -i / 1000], 1.0)
            for i, m in enumerate(models)])
    return PredictionRun(tuple(one(n, d) for n, d in files),
                         tuple(Image.new("RGB", (8, 8)) for _ in files), ())


def test_predict_shows_each_models_answer_flipping_under_the_corruption(app, monkeypatch):
    monkeypatch.setattr(cache, "predict", fake_predict)
    app.switch_page("pages/predict.py").run()
    app.selectbox(key="predict_corruption").set_value("gaussian_noise")
    app.slider(key="predict_severity").set_value(5)
    app.file_uploader(key="predict_upload").set_value(("chelsea.png", CHELSEA, "image/png")).run()
    no_failure(app)
    assert "**Perturbed: gaussian noise, severity 5**" in [m.value for m in app.markdown]
    assert [w.value for w in app.warning] == [
        "3 of 3 models change their answer under gaussian noise, severity 5."]
    assert lines(app) == [f"**{m}**: circle 90% → **square** 60% · flipped (circle now 30%)"
                          for m in MODELS]
    assert "Ensemble (soft vote): circle 90% → square 60% · flipped (circle now 30%)" in [
        c.value for c in app.caption]


def test_predict_perturbs_every_photo_with_the_real_models_and_a_bad_upload_is_one_line(app):
    app.switch_page("pages/predict.py").run()
    app.selectbox(key="predict_corruption").set_value("contrast")
    app.file_uploader(key="predict_upload").set_value([
        ("notes.jpg", b"these are not pixels", "image/jpeg"),
        ("chelsea.png", CHELSEA, "image/png"), ("astronaut.png", ASTRONAUT, "image/png")]).run()
    assert not app.exception
    assert len(app.error) == 1 and app.error[0].value.startswith("notes.jpg: ")
    shown = lines(app)
    assert len(shown) == 2 * len(MODELS)
    assert [s.split("**")[1] for s in shown] == [*MODELS, *MODELS]
    assert all(s.endswith(" · kept") or " · flipped (" in s for s in shown)
    assert sum(m.value == "**Perturbed: contrast, severity 3**" for m in app.markdown) == 2
    assert len(app.warning) + len(app.success) >= 2      # each photo's summary line


def test_gradcam_shows_the_corrupted_heatmap_next_to_the_original_per_model(app):
    app.switch_page("pages/gradcam.py").run()
    app.file_uploader(key="cam_upload").set_value(("chelsea.png", CHELSEA, "image/png"))
    app.toggle(key="cam_score").set_value(False)
    app.selectbox(key="cam_corruption").set_value("pixelate")
    app.slider(key="cam_severity").set_value(5).run()
    no_failure(app)
    assert [h.value for h in app.subheader] == ["Perturbed: pixelate, severity 5"]
    assert len(app.get("image")) == 3 * len(MODELS)     # the grid, then original | corrupted
    shown = lines(app)
    assert [s.split("**")[1] for s in shown] == list(MODELS)
    assert all(s.endswith(" · kept") or " · flipped (" in s for s in shown)


def test_gradcam_with_a_chosen_class_shows_its_probability_before_and_after(app):
    app.switch_page("pages/gradcam.py").run()
    app.file_uploader(key="cam_upload").set_value(("coffee.png", png(skdata.coffee()),
                                                   "image/png"))
    app.toggle(key="cam_score").set_value(False)
    app.selectbox(key="cam_target").set_value("triangle")
    app.selectbox(key="cam_corruption").set_value("motion_blur").run()
    no_failure(app)
    assert sum(c.value.startswith("p(triangle) ") and " → " in c.value
               for c in app.caption) == len(MODELS)


def test_gradcam_bad_upload_with_a_perturbation_adds_no_line_and_never_crashes(app):
    app.switch_page("pages/gradcam.py").run()
    app.file_uploader(key="cam_upload").set_value(("notes.jpg", b"not pixels", "image/jpeg"))
    app.selectbox(key="cam_corruption").set_value("contrast").run()
    assert not app.exception and not app.subheader and not app.get("image")
    # one line naming the file, none per model and none from the perturbation section
    assert [e.value for e in app.error] == ["notes.jpg: not an image (unrecognised file format)"]

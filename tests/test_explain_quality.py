"""Explanation quality: ROAD, deletion and insertion on a hand-built model whose answer is known
to live in one quadrant, the random-heatmap baseline, the model-randomisation sanity check on
tiny checkpoints (the ViT and an imported model included), the explain-eval command (stored,
resumed, stale on new weights), Compare's Explanations tab and the Grad-CAM page's model x method
grid."""
from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import test_app
import torch
from PIL import Image
from skimage import data as skdata
from streamlit.testing.v1 import AppTest
from torch import nn

from fvcore import settings
from fvcore.cli.parser import main
from fvcore.evaluation import explain_eval as runner
from fvcore.evaluation.explanations import QUALITY, RANDOM, SANITY, load_quality
from fvcore.explain.cam import CAM_METHODS, compute_cam
from fvcore.explain.quality import random_heatmap, ranked, score_heatmap, spearman
from fvcore.explain.sanity import parameterised, plan_stages, randomisation_check
from fvcore.inference.images import load_image
from fvcore.inference.loading import load_checkpoint

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine tiny inputs run far faster on one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Quadrant(nn.Module):
    """Class 0's logit is 4 x the mean absolute value of the top-left quadrant, class 1's is 1:
    the evidence for class 0 lies in that quadrant and nowhere else."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        evidence = x[..., :h // 2, :w // 2].abs().mean((1, 2, 3)) * 4
        return torch.stack([evidence, torch.ones_like(evidence)], 1)


def test_the_oracle_heatmap_scores_better_than_its_reverse_and_than_chance():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 32, 32) * 2
    oracle = np.zeros((32, 32), np.float32)
    oracle[:16, :16] = 1.0
    model = Quadrant().eval()
    good = score_heatmap(model, x, oracle, 0)
    bad = score_heatmap(model, x, 1.0 - oracle, 0)
    chance = score_heatmap(model, x, random_heatmap(32, np.random.default_rng(0)), 0)
    assert good.deletion < chance.deletion < bad.deletion
    assert good.insertion > bad.insertion
    assert good.road_morf > bad.road_morf and good.road > bad.road
    assert good.deletion < 0.5 < bad.deletion


def test_ranks_break_ties_so_each_percentile_splits_exactly():
    heatmap = np.zeros((10, 10), np.float32)
    heatmap[:2] = 1.0                      # 20 pixels tied at the top, 80 tied at zero
    ranks = ranked(heatmap, np.random.default_rng(0))
    assert (ranks[:2] > ranks[2:].max()).all()
    assert (ranks >= np.percentile(ranks, 50)).sum() == 50
    assert spearman(heatmap, heatmap) == 1.0 and spearman(heatmap, -heatmap) == pytest.approx(-1)
    assert spearman(heatmap, np.zeros_like(heatmap)) == 0.0
    noise = random_heatmap(64, np.random.default_rng(1))
    assert noise.shape == (64, 64) and noise.min() == 0.0 and noise.max() == 1.0


def _tensors(clf, data: Path, n: int) -> list[torch.Tensor]:
    paths = sorted((data / "test").rglob("*.png"))[::8][:n]
    return [clf.preprocess([load_image(p)]) for p in paths]


@pytest.mark.parametrize("arch", ["cnn", "vit"])
def test_randomisation_keeps_a_copy_at_one_and_drops_as_layers_are_randomised(
        arch, checkpoint_root, tiny_data):
    clf = load_checkpoint(checkpoint_root / "shapes" / arch)
    before = {k: v.clone() for k, v in clf.model.state_dict().items()}
    xs = _tensors(clf, tiny_data, 3)
    cams = [compute_cam(clf.model, clf.cam_module(), x, target=None, method="gradcam",
                        reshape=clf.cam_reshape) for x in xs]
    stages = plan_stages(clf.model)
    assert [s.randomised for s in stages][:2] == [0, 1]
    assert stages[-1].randomised == stages[-1].total == len(parameterised(clf.model))
    found = randomisation_check(clf.model, clf.cam_module, xs, [c.target for c in cams],
                                [c.heatmap for c in cams], method="gradcam",
                                reshape=clf.cam_reshape, stages=stages)
    means = [float(np.mean(rhos)) for _, rhos in found]
    assert means[0] == pytest.approx(1.0, abs=1e-6)
    assert means[-1] < 0.8 and min(means[1:]) < means[0] - 0.2
    after = clf.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)   # only the copy changed


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def cnn(checkpoint_root, tmp_path) -> Path:
    """A private copy of the fixture CNN (results are written beside it)."""
    return Path(shutil.copytree(checkpoint_root / "shapes" / "cnn", tmp_path / "cnn"))


def test_the_cli_stores_every_method_and_the_baseline_then_resumes_without_work(
        cnn, tiny_data, monkeypatch, capsys):
    args = ["explain-eval", str(cnn), "--data", str(tiny_data / "test"), "--limit", "4",
            "--methods", "gradcam,eigencam", "-q"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "updated: gradcam, eigencam, random" in out and "4 test images" in out
    stored = rows(cnn / QUALITY)
    assert [r["method"] for r in stored] == ["gradcam"] * 4 + ["eigencam"] * 4 + [RANDOM] * 4
    assert all(0 <= float(r[k]) <= 1 for r in stored for k in ("deletion", "insertion"))
    checks = rows(cnn / SANITY)
    assert {r["method"] for r in checks} == {"gradcam", "eigencam"}
    assert [float(r["spearman"]) for r in checks if r["stage"] == "0"] == [1.0, 1.0]
    result = load_quality(cnn)
    assert [m.method for m in result.methods] == ["gradcam", "eigencam", RANDOM]
    assert result.method(RANDOM).n_images == 4 and result.current(cnn)

    calls = []
    real = runner.score_heatmap
    monkeypatch.setattr(runner, "score_heatmap", lambda *a, **k: calls.append(1) or real(*a, **k))
    before = ((cnn / QUALITY).read_text(), (cnn / SANITY).read_text())
    assert main(args) == 0
    assert "unchanged (every result was stored)" in capsys.readouterr().out
    assert calls == [] and ((cnn / QUALITY).read_text(), (cnn / SANITY).read_text()) == before
    assert main([*args[:-2], "gradcam,layercam", "--no-sanity", "-q"]) == 0
    assert "updated: layercam" in capsys.readouterr().out and len(calls) == 4
    assert main(["explain-eval", str(cnn), "--data", str(tiny_data / "test"),
                 "--methods", "saliency"]) == 1


def test_new_weights_make_the_stored_results_stale(cnn, tiny_data):
    runner.explain_eval(load_checkpoint(cnn), [tiny_data / "test"], methods=["gradcam"],
                        limit=2, sanity=False)
    assert load_quality(cnn).current(cnn)
    weights = cnn / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1   # one bit of the last weight
    weights.write_bytes(bytes(data))
    assert not load_quality(cnn).current(cnn)


def test_an_imported_torchvision_model_is_scored_with_its_recorded_layer(tmp_path, tiny_data):
    import torchvision

    from fvcore.checkpoints.importer import Preprocessing
    from fvcore.inference.importing import import_state_dict
    torch.manual_seed(3)
    model = torchvision.models.resnet18(weights=None)
    model.fc = nn.Linear(512, 3)
    torch.save(model.eval().state_dict(), tmp_path / "best_model.pth")
    result = import_state_dict(tmp_path / "best_model.pth", arch="torchvision:resnet18",
                               classes=["circle", "square", "triangle"], out=tmp_path / "ckpt",
                               backend="pytorch", preprocessing=Preprocessing(32, 36))
    clf = load_checkpoint(result.path, backend="pytorch")
    got = runner.explain_eval(clf, [tiny_data / "test"], methods=["gradcam"], limit=2)
    assert [m.method for m in got.methods] == ["gradcam", RANDOM]
    assert got.sanity[0].spearman == pytest.approx(1.0) and len(got.sanity) > 2


# --- the app -----------------------------------------------------------------------------------

navigation_mode = test_app.navigation_mode   # the same fixture as tests/test_app.py


def open_app(root: Path, tiny_data: Path, tmp_path: Path, monkeypatch, page: str) -> AppTest:
    monkeypatch.setenv(settings.ENV_CHECKPOINTS, str(root))
    monkeypatch.setenv(settings.ENV_RUNS_DB, str(tmp_path / "runs.db"))
    monkeypatch.setenv("FVCORE_DATA", str(tiny_data))
    monkeypatch.setenv("FVCORE_BACKEND", "pytorch")
    monkeypatch.delenv(settings.ENV_SAMPLES, raising=False)
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    return app.switch_page(page).run()


def test_compare_explanations_tab_says_the_command_then_shows_the_stored_results(
        navigation_mode, checkpoint_root, tiny_data, tmp_path, monkeypatch):
    root = tmp_path / "checkpoints"
    shutil.copytree(checkpoint_root / "shapes", root / "shapes")
    app = open_app(root, tiny_data, tmp_path, monkeypatch, "pages/compare.py")
    assert not app.exception
    assert any("python -m fvcore explain-eval" in i.value for i in app.info)
    for arch in ("cnn", "vit"):
        runner.explain_eval(load_checkpoint(root / "shapes" / arch), [tiny_data / "test"],
                            methods=["gradcam", "eigencam"], limit=2)
    app = open_app(root, tiny_data, tmp_path, monkeypatch, "pages/compare.py")
    assert not app.exception, app.exception
    assert not any("python -m fvcore explain-eval" in i.value for i in app.info)
    [table] = [d.value for d in app.dataframe if "insertion" in d.value]
    assert sorted(set(table["model"])) == ["cnn", "vit"]
    assert list(table[table["model"] == "cnn"]["method"]) == [
        "Grad-CAM", "EigenCAM", "Random heatmap (baseline)"]
    baseline = table["method"].str.startswith("Random")
    assert (table[baseline]["beats_random"] == "baseline").all()     # not a "None" cell
    assert table[~baseline]["beats_random"].str.fullmatch("[0-3] of 3").all()
    assert any("efficientnet_lite0" in c.value and "explain-eval" in c.value
               for c in app.caption)          # the selected model without results
    assert not app.warning
    app.selectbox(key="explain_metric").set_value("deletion").run()
    assert not app.exception


def png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def test_gradcam_compare_methods_shows_a_model_by_method_grid(
        navigation_mode, checkpoint_root, tiny_data, tmp_path, monkeypatch):
    app = open_app(checkpoint_root, tiny_data, tmp_path, monkeypatch, "pages/gradcam.py")
    app.sidebar.multiselect[0].set_value(["cnn", "vit"]).run()
    app.file_uploader(key="cam_upload").set_value(
        ("chelsea.png", png(skdata.chelsea()[::4, ::4].copy()), "image/png")).run()
    assert not app.exception and len(app.get("image")) == 2
    app.toggle(key="cam_compare").set_value(True).run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert len(app.get("image")) == 2 + 2 * len(CAM_METHODS)
    captions = [c for i in app.get("image") for c in i.proto.imgs[0].caption.splitlines()]
    assert sum(any(m.label in c for c in captions) for m in CAM_METHODS.values()) == len(
        CAM_METHODS)
    assert len(app.get("download_button")) == 2

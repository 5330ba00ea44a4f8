"""The ONNX Runtime fast path (parity, cache, fallback) and Grad-CAM hygiene (one forward, no
weight gradients, nothing left behind)."""
from __future__ import annotations

import gc
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch
from PIL import Image
from skimage import data

from fvcore import settings
from fvcore.checkpoints.catalog import CARD, WEIGHTS
from fvcore.checkpoints.folder import save_weights
from fvcore.errors import FvError
from fvcore.inference import runners as fastpath
from fvcore.inference.loading import load_checkpoint
from fvcore.inference.runners import FastPathWarning

ARCHS = ("cnn", "efficientnet_lite0", "vit")


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from a second thread, and lose a lot when the CPU is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    return [Image.fromarray(f()) for f in (data.chelsea, data.coffee, data.astronaut)]


def copy_checkpoint(src: Path, dst: Path) -> Path:
    """The weights and card only: no cached export travels with the copy."""
    dst.mkdir(parents=True)
    for name in (WEIGHTS, CARD):
        shutil.copy2(src / name, dst / name)
    return dst


def exports(folder: Path) -> list[Path]:
    return sorted((folder / fastpath.CACHE_DIR).glob("*.onnx"))


@pytest.mark.parametrize("arch", ARCHS)
def test_onnx_matches_pytorch_on_real_images(checkpoint_root, photos, arch):
    clf = load_checkpoint(checkpoint_root / "shapes" / arch, backend="onnx")
    assert clf.backend == "onnx"
    batch = clf.preprocess(photos)
    fast = clf.predict_tensor(batch)
    eager = clf.with_runner(clf.torch_runner).predict_tensor(batch)
    assert fast.shape == (3, len(clf.classes))
    assert np.abs(fast - eager).max() < fastpath.PARITY_TOL


def test_second_load_reuses_the_cached_export(checkpoint_root, tmp_path, monkeypatch):
    folder = copy_checkpoint(checkpoint_root / "shapes" / "cnn", tmp_path / "cnn")
    assert load_checkpoint(folder, backend="onnx").backend == "onnx"
    (cached,) = exports(folder)
    stamp = cached.stat().st_mtime_ns

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although a cached export exists")

    monkeypatch.setattr(fastpath, "export_onnx", no_export)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FastPathWarning)
        clf = load_checkpoint(folder, backend="onnx")
    assert clf.backend == "onnx" and clf.runner.source == str(cached)
    assert cached.stat().st_mtime_ns == stamp


def test_a_cached_load_builds_the_torch_model_only_for_grad_cam(checkpoint_root, tmp_path,
                                                               photos):
    folder = copy_checkpoint(checkpoint_root / "shapes" / "efficientnet_lite0", tmp_path / "e")
    first = load_checkpoint(folder, backend="onnx")  # export + parity, then the module is dropped
    assert first.backend == "onnx" and not first.model_loaded
    clf = load_checkpoint(folder, backend="onnx")
    probs = clf.predict(photos[0])[0]
    assert clf.backend == "onnx" and not clf.model_loaded
    result, _ = clf.explain(photos[0])
    assert clf.model_loaded and result.target == int(probs.argmax())
    assert np.abs(result.probs - probs).max() < fastpath.PARITY_TOL


def test_weights_replaced_after_a_cached_load_are_not_mixed_in(checkpoint_root, tmp_path):
    folder = copy_checkpoint(checkpoint_root / "shapes" / "cnn", tmp_path / "cnn")
    load_checkpoint(folder, backend="onnx")
    clf = load_checkpoint(folder, backend="onnx")
    other = load_checkpoint(checkpoint_root / "shapes" / "cnn", backend="pytorch").model
    with torch.no_grad():
        other.head[-1].bias.add_(1.0)
    save_weights(folder / WEIGHTS, other)
    with pytest.raises(FvError, match="changed since the checkpoint was loaded"):
        _ = clf.model


def test_a_corrupt_cached_export_is_replaced(checkpoint_root, tmp_path):
    folder = copy_checkpoint(checkpoint_root / "shapes" / "cnn", tmp_path / "cnn")
    load_checkpoint(folder, backend="onnx")
    (cached,) = exports(folder)
    cached.write_bytes(b"not a protobuf")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FastPathWarning)
        assert load_checkpoint(folder, backend="onnx").backend == "onnx"
    assert exports(folder) == [cached] and cached.stat().st_size > 1000


def test_changed_weights_rebuild_the_stale_export(checkpoint_root, tmp_path, photos):
    folder = copy_checkpoint(checkpoint_root / "shapes" / "cnn", tmp_path / "cnn")
    (old,) = exports(load_checkpoint(folder, backend="onnx").path)
    clf = load_checkpoint(folder, backend="pytorch")
    with torch.no_grad():
        clf.model.head[-1].bias.add_(torch.arange(3.0))  # a different, still valid model
    save_weights(folder / WEIGHTS, clf.model)
    fresh = load_checkpoint(folder, backend="onnx")
    (new,) = exports(folder)
    assert new != old and not old.exists()
    eager = load_checkpoint(folder, backend="pytorch").predict(photos)
    assert np.abs(fresh.predict(photos) - eager).max() < fastpath.PARITY_TOL


def test_export_failure_falls_back_to_pytorch_with_a_warning(checkpoint_root, tmp_path,
                                                             monkeypatch, photos):
    folder = copy_checkpoint(checkpoint_root / "shapes" / "cnn", tmp_path / "cnn")

    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operator aten::weird")

    monkeypatch.setattr(fastpath, "export_onnx", broken)
    with pytest.warns(FastPathWarning, match="aten::weird"):
        clf = load_checkpoint(folder, backend="onnx")
    assert clf.backend == "pytorch" and exports(folder) == []
    assert clf.predict(photos).shape == (3, 3)


def test_parity_failure_falls_back_and_caches_nothing(checkpoint_root, tmp_path, monkeypatch):
    folder = copy_checkpoint(checkpoint_root / "shapes" / "cnn", tmp_path / "cnn")
    monkeypatch.setattr(fastpath, "parity_error", lambda reference, candidate, size: 0.5)
    with pytest.warns(FastPathWarning, match="differs from PyTorch"):
        assert load_checkpoint(folder, backend="onnx").backend == "pytorch"
    assert exports(folder) == []


def test_missing_onnxruntime_falls_back_to_pytorch(checkpoint_root, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import raises ImportError
    with pytest.warns(FastPathWarning, match="onnxruntime"):
        clf = load_checkpoint(checkpoint_root / "shapes" / "cnn", backend="onnx")
    assert clf.backend == "pytorch"


def test_read_only_checkpoint_caches_in_the_user_dir(checkpoint_root, tmp_path, monkeypatch):
    import fvcore.inference.runners
    folder = copy_checkpoint(checkpoint_root / "shapes" / "cnn", tmp_path / "cnn")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    real_write = fvcore.inference.runners.atomic_write

    def read_only(path, data):
        if folder in Path(path).parents:
            raise PermissionError(13, "Read-only file system", str(path))
        return real_write(path, data)

    monkeypatch.setattr(fvcore.inference.runners, "atomic_write", read_only)
    clf = load_checkpoint(folder, backend="onnx")
    assert clf.backend == "onnx" and exports(folder) == []
    assert Path(clf.runner.source).parent == tmp_path / "cache" / "fvcore" / "onnx"
    assert load_checkpoint(folder, backend="onnx").runner.source == clf.runner.source


def test_backend_and_threads_come_from_the_environment(checkpoint_root, monkeypatch):
    folder = checkpoint_root / "shapes" / "cnn"
    monkeypatch.setenv("FVCORE_BACKEND", "pytorch")
    assert load_checkpoint(folder).backend == "pytorch"
    monkeypatch.setenv("FVCORE_BACKEND", "onnx")
    monkeypatch.setenv("FVCORE_THREADS", "1")
    clf = load_checkpoint(folder)
    assert clf.backend == "onnx"
    assert clf.runner.session.get_session_options().intra_op_num_threads == 1
    monkeypatch.setenv("FVCORE_BACKEND", "tensorrt")
    with pytest.raises(FvError, match="onnx, pytorch"):
        settings.backend()


def _hooks(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               for m in model.modules())


@pytest.mark.parametrize("arch", ARCHS)
def test_cam_is_one_forward_without_weight_gradients(checkpoint_root, photos, arch):
    clf = load_checkpoint(checkpoint_root / "shapes" / arch, backend="pytorch")
    calls = []
    counter = clf.model.register_forward_hook(lambda *args: calls.append(1))
    try:
        result, _ = clf.explain(photos[0])
    finally:
        counter.remove()
    assert len(calls) == 1
    assert all(p.grad is None for p in clf.model.parameters())
    probs = clf.predict(photos[0])[0]
    assert result.target == int(probs.argmax())
    assert np.abs(result.probs - probs).max() < 1e-5


@pytest.mark.parametrize("arch", ARCHS)
def test_cam_leaves_no_hooks_graphs_or_memory_behind(checkpoint_root, photos, arch):
    from pytorch_grad_cam.activations_and_gradients import ActivationsAndGradients
    from pytorch_grad_cam.base_cam import BaseCAM
    clf = load_checkpoint(checkpoint_root / "shapes" / arch, backend="pytorch")
    for method in ("gradcam", "gradcam++"):
        clf.explain(photos[1], method=method)
    gc.collect()
    before = psutil.Process().memory_info().rss
    for i in range(8):
        clf.explain(photos[i % 3], target=i % 3)
    gc.collect()
    growth = psutil.Process().memory_info().rss - before
    assert _hooks(clf.model) == 0
    alive = [o for o in gc.get_objects()
             if issubclass(type(o), (BaseCAM, ActivationsAndGradients))]
    assert alive == []  # the CAM object held the retained graph (outputs) and the activations
    assert growth < 16 * 2**20, f"RSS grew {growth / 2**20:.1f} MB over 8 CAM calls"

"""Many users at once on one cached Classifier: Grad-CAM's hooks live on the shared module, so
concurrent CAMs (and predictions running beside them) must not mix activations between threads,
and nothing may be left hooked afterwards."""
from __future__ import annotations

import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import make_checkpoint
from PIL import Image
from skimage import data

from fvcore.inference.loading import load_checkpoint

THREADS = 8
ROUNDS = 3


def _images() -> list[Image.Image]:
    """Eight different pictures (four photos, each also mirrored)."""
    photos = [Image.fromarray(getattr(data, name)()).convert("RGB").resize((96, 80))
              for name in ("chelsea", "coffee", "astronaut", "camera")]
    return photos + [p.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for p in photos]


IMAGES = _images()


@pytest.fixture(scope="module", params=["cnn", "vit"])
def classifier(request, tmp_path_factory, tiny_data):
    folder = make_checkpoint(tmp_path_factory.mktemp("concurrency") / request.param,
                             request.param, tiny_data)
    return load_checkpoint(folder, backend="pytorch")


def _hook_count(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(getattr(m, "_backward_pre_hooks", {})) for m in model.modules())


def _in_threads(jobs) -> list:
    """Run the callables at once (released together by a barrier); return their results."""
    barrier = threading.Barrier(len(jobs))

    def run(job):
        barrier.wait()
        return job()

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(run, jobs))


def _assert_same_cam(got, want) -> None:
    assert got.target == want.target
    assert np.allclose(got.heatmap, want.heatmap, atol=1e-6, rtol=0)
    assert np.allclose(got.probs, want.probs, atol=1e-6, rtol=0)


def test_eight_threads_of_cams_give_exactly_the_serial_results(classifier):
    hooks = _hook_count(classifier.model)
    serial = [classifier.explain(image)[0] for image in IMAGES]
    assert len({r.heatmap.tobytes() for r in serial}) == THREADS   # really different inputs

    def job(i):
        return lambda: [classifier.explain(IMAGES[i])[0] for _ in range(ROUNDS)]

    for i, results in enumerate(_in_threads([job(i) for i in range(THREADS)])):
        for result in results:
            _assert_same_cam(result, serial[i])
    assert _hook_count(classifier.model) == hooks


def test_cams_and_predictions_at_once_do_not_mix(classifier):
    # the app predicts for one user while it explains for another, on the same cached model
    hooks = _hook_count(classifier.model)
    serial_cams = [classifier.explain(image)[0] for image in IMAGES[:4]]
    batch = IMAGES[4:]
    serial_probs = classifier.predict(batch)
    cam_jobs = [lambda i=i: [classifier.explain(IMAGES[i])[0] for _ in range(ROUNDS)]
                for i in range(4)]
    predict_jobs = [lambda: [classifier.predict(batch) for _ in range(ROUNDS)] for _ in range(4)]
    results = _in_threads(cam_jobs + predict_jobs)
    for i, cams in enumerate(results[:4]):
        for cam in cams:
            _assert_same_cam(cam, serial_cams[i])
    for probs_list in results[4:]:
        for probs in probs_list:
            assert np.allclose(probs, serial_probs, atol=1e-6, rtol=0)
    assert _hook_count(classifier.model) == hooks


def test_methods_and_targets_mixed_across_threads_match_serial(classifier):
    jobs = [(IMAGES[i], method, target) for i, (method, target) in enumerate(
        [("gradcam", None), ("gradcam++", 0), ("layercam", 1), ("eigencam", None),
         ("gradcam", 2), ("gradcam++", None), ("layercam", None), ("gradcam", 1)])]
    serial = [classifier.explain(image, target, method)[0] for image, method, target in jobs]
    results = _in_threads([lambda j=j: classifier.explain(j[0], j[2], j[1])[0] for j in jobs])
    for got, want in zip(results, serial, strict=True):
        _assert_same_cam(got, want)


def test_nothing_is_left_behind_after_concurrent_cams(classifier):
    filters = list(warnings.filters)
    _in_threads([lambda i=i: classifier.explain(IMAGES[i], score=i % 2 == 0)
                 for i in range(THREADS)])
    model = classifier.model
    assert _hook_count(model) == 0
    assert not model.training
    assert all(not p.requires_grad and p.grad is None for p in model.parameters())
    assert classifier.lock.acquire(blocking=False)
    classifier.lock.release()
    assert warnings.filters == filters          # no thread left a warning filter behind

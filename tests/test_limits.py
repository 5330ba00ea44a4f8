"""Bounded work per visitor: sessions over their own limit, or a server with every slot taken,
get one line saying when to retry, at once, while other visitors' work still completes."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from fvcore import settings
from fvcore.app import limits
from fvcore.app.limits import Gate, LimitError
from fvcore.inference.loading import load_checkpoint


def one_line_refusal(exc: LimitError, start: str) -> None:
    assert str(exc).startswith(start) and "retry" in str(exc) and "\n" not in str(exc)


def test_two_sessions_over_their_limits_are_refused_while_a_third_predicts(checkpoint_root):
    server = Gate(2)
    classifier = load_checkpoint(checkpoint_root / "shapes" / "cnn", backend="pytorch")
    photo = Image.fromarray(skdata.chelsea())
    refusals: dict[str, list[tuple[LimitError, float]]] = {"a": [], "b": []}
    done = {"a": 0, "b": 0}

    def greedy(name: str) -> None:
        session: dict = {}
        for _ in range(6):
            started = time.monotonic()
            try:
                with limits.action("prediction", session, server=server, per_session=2):
                    limits.charge()
                    time.sleep(0.05)
                done[name] += 1
            except LimitError as exc:
                refusals[name].append((exc, time.monotonic() - started))

    def third() -> np.ndarray:
        time.sleep(0.2)   # the greedy two have used their budget by now
        with limits.action("prediction", {}, server=server, per_session=2):
            limits.charge()
            return classifier.predict([photo])

    with ThreadPoolExecutor(3) as pool:
        greedy_runs = [pool.submit(greedy, name) for name in ("a", "b")]
        probs = pool.submit(third).result(timeout=60)
        for run in greedy_runs:
            run.result(timeout=60)
    assert probs.shape == (1, len(classifier.classes)) and np.isclose(probs.sum(), 1, atol=1e-4)
    assert done == {"a": 2, "b": 2}
    for name in ("a", "b"):
        assert len(refusals[name]) == 4
        for exc, took in refusals[name]:
            one_line_refusal(exc, "limit reached: 2 prediction runs in the last 10 min")
            assert took < 0.5                      # refused at once, never a stall
    assert server.running == 0


def test_a_full_server_refuses_at_once_and_serves_again_when_a_slot_frees():
    server = Gate(1)
    holding, release = threading.Event(), threading.Event()

    def long_job() -> None:
        with limits.action("Grad-CAM", {}, server=server, per_session=0):
            limits.charge()
            holding.set()
            release.wait(10)

    worker = threading.Thread(target=long_job)
    worker.start()
    assert holding.wait(10)
    started = time.monotonic()
    with pytest.raises(LimitError) as info:
        with limits.action("prediction", {}, server=server, per_session=0):
            limits.charge()
    assert time.monotonic() - started < limits.WAIT + 0.5
    one_line_refusal(info.value, "busy: 1 job is running on this server; retry in about")
    release.set()
    worker.join(10)
    with limits.action("prediction", {}, server=server, per_session=0):
        limits.charge()
        assert server.running == 1
    assert server.running == 0


def test_an_action_is_charged_once_and_only_when_it_computes():
    server, session = Gate(1), {}
    with limits.action("Grad-CAM", session, server=server, per_session=5):
        pass                                       # every result cached: nothing computed
    assert limits.SESSION_KEY not in session
    with limits.action("Grad-CAM", session, server=server, per_session=5):
        for _ in range(3):                         # three models, one action
            limits.charge()
    assert len(session[limits.SESSION_KEY]) == 1
    limits.charge()                                # outside any action: free (CLI, tests)
    assert server.running == 0


def test_too_many_photos_at_once_are_refused_in_one_line(monkeypatch):
    monkeypatch.setenv(settings.ENV_MAX_IMAGES, "3")
    monkeypatch.setenv(settings.ENV_MAX_EVAL_IMAGES, "10")
    limits.check_images(3)
    limits.check_images(10, "evaluation")
    with pytest.raises(LimitError, match="limit reached: 4 photos at once; this server takes "
                                         "at most 3 per prediction: remove 1 and retry"):
        limits.check_images(4)
    with pytest.raises(LimitError, match="limit reached: 11 images in the zip; this server "
                                         "takes at most 10 per evaluation"):
        limits.check_images(11, "evaluation")


def test_limits_default_to_off_locally_and_on_in_public_mode(monkeypatch):
    for name in (settings.ENV_PUBLIC, settings.ENV_MAX_JOBS, settings.ENV_SESSION_JOBS,
                 settings.ENV_MAX_IMAGES, settings.ENV_MAX_EVAL_IMAGES):
        monkeypatch.delenv(name, raising=False)

    def values():
        return (settings.max_jobs(), settings.session_jobs(), settings.max_images(),
                settings.max_eval_images())

    assert values() == (0, 0, 0, 0)
    monkeypatch.setenv(settings.ENV_PUBLIC, "1")
    assert values() == (2, 20, 16, 500)
    monkeypatch.setenv(settings.ENV_MAX_JOBS, "lots")
    with pytest.raises(Exception, match="FVCORE_MAX_JOBS='lots' is not a whole number"):
        settings.max_jobs()

"""Your own dataset, checked and trained from the browser: on a server with no dataset and no
checkpoint, Debian's headless Chromium uploads a small labelled zip on Datasets, reads its health
report, queues the Quick preset on Train, waits for the background job to finish, and finds the
new model on Predict (an answer for a test photo) and Compare -- no restart, no terminal.

The zip holds three Fruits-360 classes from ``../shared/datasets/fruits-360-mini`` when present,
else generated shapes. Set FVCORE_SKIP_E2E=1 to skip."""
from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from appserver import CHROMIUM_ARGS, SKIP_E2E, SKIP_REASON, serve_app, settle, snap, upload, visit
from conftest import shape_image

from fvcore import settings
from fvcore.datasets.zipdata import zip_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(SKIP_E2E, reason=SKIP_REASON)]

FRUITS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "fruits-360-mini"
CLASSES = ("Banana", "Kiwi", "Lemon")
PER_SPLIT = {"train": 12, "validation": 4, "test": 4}
TRAIN_WAIT_MS = 300_000


def dataset_zip() -> tuple[bytes, bytes]:
    """A zip of train/, validation/, test/ with three classes, and one test photo."""
    files: dict[str, bytes] = {}
    if all((FRUITS / "train" / c).is_dir() for c in CLASSES):
        for split, n in PER_SPLIT.items():
            for c in CLASSES:
                for path in sorted((FRUITS / split / c).iterdir())[:n]:
                    files[f"{split}/{c}/{path.name}"] = path.read_bytes()
    else:
        import io
        rng = np.random.default_rng(0)
        for split, n in PER_SPLIT.items():
            for c, shape in zip(CLASSES, ("circle", "square", "triangle"), strict=True):
                for i in range(n):
                    out = io.BytesIO()
                    shape_image(shape, rng, 96).save(out, format="PNG")
                    files[f"{split}/{c}/{c}_{i}.png"] = out.getvalue()
    photo = next(v for k, v in files.items() if k.startswith("test/"))
    return zip_bytes(files), photo


@pytest.fixture(scope="module")
def empty_server(chromium, tmp_path_factory):
    """`streamlit run app.py` over an empty data root, checkpoints folder and run registry."""
    work = tmp_path_factory.mktemp("e2e-train")
    for folder in ("data", "checkpoints"):
        (work / folder).mkdir()
    env = {settings.ENV_CHECKPOINTS: str(work / "checkpoints"),
           settings.ENV_RUNS_DB: str(work / "runs.db"), settings.ENV_DATA: str(work / "data")}
    with serve_app(env, work / "streamlit.log") as app:
        yield {"url": app.url, "work": work, "process": app.process, "log": app.log}


def test_upload_check_train_quick_and_find_the_model_everywhere(chromium, empty_server,
                                                                  tmp_path):
    from playwright.sync_api import sync_playwright
    shots = settings.screenshots_dir()
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(120_000)
        try:
            walk(page, empty_server, shots, tmp_path)
        except Exception:
            snap(page, shots / "train-failure.png")
            empty_server["process"].send_signal(signal.SIGABRT)
            time.sleep(2)
            shutil.copy(empty_server["log"], shots / "train-failure-streamlit.log")
            raise
        finally:
            browser.close()


def walk(page, server, shots: Path, tmp_path: Path) -> None:
    url = server["url"]
    archive, photo_bytes = dataset_zip()
    (tmp_path / "fruit-trio.zip").write_bytes(archive)
    photo = tmp_path / "test-photo.jpg"
    photo.write_bytes(photo_bytes)

    visit(page, f"{url}/datasets", "No datasets under the data roots yet")
    upload(page, tmp_path / "fruit-trio.zip")
    page.get_by_label("Name", exact=True).fill("fruit-trio")
    page.get_by_label("Name", exact=True).press("Enter")
    settle(page)
    page.get_by_role("button", name="Add", exact=True).click()
    page.get_by_text("ready to train: 3 classes, 60 images").first.wait_for()
    settle(page)
    snap(page, shots / "train-1-datasets.png")

    visit(page, f"{url}/train", "New training job")
    page.get_by_text("ready to train: 3 classes").first.wait_for()
    page.get_by_role("button", name="Queue 1 job(s)").click()
    page.get_by_text("Queued efficientnet_lite0 (quick) on fruit-trio.").wait_for()
    snap(page, shots / "train-2-queued.png")
    page.get_by_text("Finished: epoch").wait_for(timeout=TRAIN_WAIT_MS)
    settle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    snap(page, shots / "train-3-finished.png")

    visit(page, f"{url}/predict", "Upload one or more photos")
    upload(page, photo)
    page.locator('[data-testid="stMetricLabel"]',
                 has_text="efficientnet_lite0-quick").first.wait_for()
    settle(page)
    snap(page, shots / "train-4-predict.png")

    visit(page, f"{url}/compare", "Compare")
    page.locator(".js-plotly-plot").first.wait_for()
    assert page.get_by_text("efficientnet_lite0-quick").count() >= 1
    assert page.locator('[data-testid="stException"]').count() == 0
    snap(page, shots / "train-5-compare.png")
    card = server["work"] / "checkpoints" / "fruit-trio" / "efficientnet_lite0-quick"
    assert (card / "card.json").is_file() and (card / "model.safetensors").is_file()

"""End to end in a real browser: `streamlit run app.py` on a free port, driven by Debian's
headless Chromium through Playwright. Uploads a photo on Predict, waits for every model's result,
imports a notebook's state dict (after a wrong file) and saves a screenshot of every page to
artifacts/screenshots/ (or $FVCORE_SCREENSHOTS).

Set FVCORE_SKIP_E2E=1 to skip; otherwise a missing Chromium is a failure, not a silent skip."""
from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest
import timm
import torch
from appserver import (
    CHROMIUM_ARGS,
    COMPARE_TABS,
    SKIP_E2E,
    SKIP_REASON,
    WAIT_MS,
    serve_app,
    settle,
    snap,
    upload,
    visit,
)
from PIL import Image
from skimage import data as skdata

from fvcore import settings
from fvcore.datasets.zipdata import zip_bytes
from fvcore.training.runs import end_run, log_epoch, start_run

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(SKIP_E2E, reason=SKIP_REASON)]

MODELS = ("cnn", "efficientnet_lite0", "vit")


@pytest.fixture(scope="module")
def server(chromium, tmp_path_factory, checkpoint_root, tiny_data):
    """A running `streamlit run app.py` over a copy of the fixture checkpoints (plus one broken
    folder), a run registry with one run, and the fixture dataset as FVCORE_DATA."""
    work = tmp_path_factory.mktemp("e2e")
    root = work / "checkpoints"
    shutil.copytree(checkpoint_root / "shapes", root / "shapes")
    (root / "shapes" / "broken").mkdir()
    (root / "shapes" / "broken" / "card.json").write_text('{"arch": "cnn"}')
    db = work / "runs.db"
    run = start_run(db, arch="cnn", dataset="shapes", fingerprint="f", out=str(root),
                    args={"lr": 1e-3, "epochs": 4})
    for epoch in range(1, 5):
        log_epoch(db, run, {"epoch": epoch, "train_loss": 1.1 / epoch, "val_loss": 1.2 / epoch,
                            "train_acc": 0.2 * epoch, "val_acc": 0.18 * epoch, "lr": 1e-3,
                            "seconds": 2.0, "images_per_s": 40.0})
    end_run(db, run, "finished")
    env = {settings.ENV_CHECKPOINTS: str(root), settings.ENV_RUNS_DB: str(db),
           "FVCORE_DATA": str(tiny_data)}
    with serve_app(env, work / "streamlit.log") as app:
        yield {"url": app.url, "work": work, "tiny_data": tiny_data, "process": app.process,
               "log": app.log}


@pytest.fixture(scope="module")
def browser_page(server, chromium):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(WAIT_MS)
        yield page
        browser.close()


@pytest.fixture(scope="module")
def shots() -> Path:
    folder = settings.screenshots_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0


def test_every_page_in_a_real_browser(browser_page, server, shots, tmp_path):
    try:
        walk_every_page(browser_page, server, shots, tmp_path)
    except Exception:
        snap(browser_page, shots / "failure.png")  # what the browser showed when it failed
        server["process"].send_signal(signal.SIGABRT)  # -X faulthandler: every thread's stack
        time.sleep(2)
        shutil.copy(server["log"], shots / "failure-streamlit.log")
        raise


def walk_every_page(page, server, shots: Path, tmp_path: Path) -> None:
    photo = tmp_path / "chelsea.png"
    Image.fromarray(skdata.chelsea()).save(photo)

    # a deep link first, on the fresh server (before any st.navigation call has been seen)
    visit(page, f"{server['url']}/predict", "Upload one or more photos")
    upload(page, photo)
    for name in MODELS:
        page.locator('[data-testid="stMetricLabel"]', has_text=name).first.wait_for()
    settle(page)
    assert page.locator('[data-testid="stMetric"]').count() == len(MODELS) + 1  # + ensemble
    no_exception(page)
    snap(page, shots / "2-predict.png")

    # then the home page
    visit(page, f"{server['url']}/", "Image-classifier workbench")
    assert page.get_by_text("shapes/broken").count() >= 1
    no_exception(page)
    snap(page, shots / "1-home.png")

    visit(page, f"{server['url']}/gradcam", "Upload a photo")
    upload(page, photo)
    page.wait_for_function("n => document.querySelectorAll('[data-testid=\"stImage\"]').length"
                           " >= n", arg=len(MODELS))
    settle(page)
    no_exception(page)
    snap(page, shots / "3-gradcam.png")

    visit(page, f"{server['url']}/compare", "Compare")
    page.locator(".js-plotly-plot").first.wait_for()
    no_exception(page)
    snap(page, shots / "4-compare.png")
    for i, tab in enumerate(COMPARE_TABS):
        page.get_by_role("tab", name=tab).click()
        settle(page)
        snap(page, shots / f"4-compare-{i + 2}-{tab.split()[0].lower()}.png")

    archive = tmp_path / "shapes.zip"
    archive.write_bytes(zip_bytes({f"{p.parent.name}/{p.name}": p.read_bytes()
                                   for p in (server["tiny_data"] / "test").rglob("*.png")}))
    visit(page, f"{server['url']}/evaluate", "Evaluate on your images")
    upload(page, archive)
    page.get_by_role("button", name="Evaluate 3 model(s)").click()
    page.get_by_text("Results on 24 images").wait_for()
    settle(page)
    no_exception(page)
    snap(page, shots / "5-evaluate.png")

    visit(page, f"{server['url']}/runs", "Training runs")
    page.locator(".js-plotly-plot").first.wait_for()
    no_exception(page)
    snap(page, shots / "6-runs.png")

    # Import: a wrong file is one red line; a notebook's state dict joins a dataset's group
    wrong = tmp_path / "best_model.pth"
    wrong.write_bytes(b"not a state dict")
    visit(page, f"{server['url']}/import_model", "Import a model")
    upload(page, wrong)
    page.get_by_role("button", name="Import", exact=True).click()
    page.locator('[data-testid="stAlert"]', has_text="refused to load").wait_for()
    torch.manual_seed(0)
    notebook = timm.create_model("resnet18", pretrained=False, num_classes=3).eval()
    torch.save(notebook.state_dict(), tmp_path / "notebook.pth")
    upload(page, tmp_path / "notebook.pth")
    page.get_by_label("Or any torchvision/timm model").fill("timm:resnet18")
    page.get_by_label("Or any torchvision/timm model").press("Enter")
    settle(page)
    page.get_by_role("button", name="Import", exact=True).click()
    page.get_by_text("self-check on 3 photos").wait_for()
    settle(page)
    no_exception(page)
    snap(page, shots / "7-import.png")
    assert len(list(shots.glob("*.png"))) >= 7

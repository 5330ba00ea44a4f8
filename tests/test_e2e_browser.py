"""End to end in a real browser: `streamlit run app.py` on a free port, driven by Debian's
headless Chromium through Playwright. Uploads a photo on Predict, waits for every model's result,
imports a notebook's state dict (after a wrong file) and saves a screenshot of every page to
artifacts/screenshots/ (or $FVCORE_SCREENSHOTS).

A second server runs in public mode with the settings of docs/deploying.md's command: no
page shows a server path, the folder box is gone, operator pages refuse, Predict and Compare work.

Set FVCORE_SKIP_E2E=1 to skip; otherwise a missing Chromium is a failure, not a silent skip."""
from __future__ import annotations

import re
import shlex
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
from PIL import Image, ImageOps
from skimage import data as skdata

from fvcore import settings
from fvcore.app.shell import PAGES
from fvcore.cli import main
from fvcore.datasets.zipdata import zip_bytes
from fvcore.training.runs import end_run, log_epoch, start_run

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(SKIP_E2E, reason=SKIP_REASON)]

MODELS = ("cnn", "efficientnet_lite0", "vit")
ROOT = Path(__file__).resolve().parent.parent
TOKEN = "e2e-operator-token"


@pytest.fixture(scope="module")
def server(chromium, tmp_path_factory, checkpoint_root, tiny_data):
    """A running `streamlit run app.py` over a copy of the fixture checkpoints (plus one broken
    folder), a run registry with one run, and the fixture dataset as FVCORE_DATA."""
    work = tmp_path_factory.mktemp("e2e")
    root = work / "checkpoints"
    shutil.copytree(checkpoint_root / "shapes", root / "shapes")
    _test_on_two_domains(root / "shapes", tiny_data, work / "shapes-dark")
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


def _test_on_two_domains(group: Path, data: Path, dark: Path) -> None:
    """Every model re-tested (``fvcore evaluate --save``) on the shapes test split and on the same
    shapes in negative, a second test domain (``shapes-dark``), as a combined zoo's cards are."""
    for image in (data / "test").rglob("*.png"):
        target = dark / "test" / image.parent.name / image.name
        target.parent.mkdir(parents=True, exist_ok=True)
        ImageOps.invert(Image.open(image).convert("RGB")).save(target)
    for arch in MODELS:
        assert main(["evaluate", str(group / arch), "--data", str(data / "test"),
                     "--data", str(dark / "test"), "--save"]) == 0


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def browser_page(server, browser):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.set_default_timeout(WAIT_MS)
    return page


def deploying_settings() -> dict[str, str]:
    """The FVCORE_* settings of docs/deploying.md's command."""
    section = (ROOT / "docs" / "deploying.md").read_text()
    words = shlex.split(re.search(r"```bash\n(.+?)\n```", section, flags=re.S).group(1))
    start = next(i for i, w in enumerate(words) if w.endswith("streamlit"))
    assert words[start:start + 3][1:] == ["run", "app.py"]
    return dict(w.split("=", 1) for w in words[:start])


@pytest.fixture(scope="module")
def public_server(server):
    """`streamlit run app.py` with docs/deploying.md's settings, over the same folders."""
    env = deploying_settings()
    assert env[settings.ENV_PUBLIC] == "1" and settings.ENV_OPERATOR_TOKEN in env
    work = server["work"]
    env.update({settings.ENV_CHECKPOINTS: str(work / "checkpoints"),
                settings.ENV_RUNS_DB: str(work / "runs.db"),
                settings.ENV_DATA: str(server["tiny_data"]), settings.ENV_OPERATOR_TOKEN: TOKEN})
    with serve_app(env, work / "streamlit-public.log") as app:
        yield {**server, "url": app.url, "process": app.process, "log": app.log}


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
    # one accuracy column per test domain and the gap (the grid's accessible header cells)
    for column in ("Test accuracy: shapes-dark", "Domain gap (points)"):   # drawn on a canvas;
        page.wait_for_function(                                 # its hidden accessible table
            "t => [...document.querySelectorAll('[data-testid=\"stDataFrame\"] th')]"
            ".some(th => th.textContent.trim() === t)", arg=column)
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
    assert page.get_by_text("test accuracy: shapes-dark").count() >= 1   # the model card
    no_exception(page)
    snap(page, shots / "4-compare.png")
    for i, tab in enumerate(COMPARE_TABS):
        page.get_by_role("tab", name=tab).click()
        settle(page)
        snap(page, shots / f"4-compare-{i + 2}-{tab.split()[0].lower()}.png")
    # one test domain alone: the metrics and the gallery follow the "Test split" choice
    page.get_by_role("tab", name="Test metrics").click()
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Test split").click()
    page.get_by_role("option", name="shapes-dark").click()
    settle(page)
    page.get_by_role("tab", name="Misclassified images").click()
    page.get_by_text("Test split: shapes-dark").first.wait_for()
    no_exception(page)
    snap(page, shots / "4-compare-8-one-test-split.png")

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


def test_public_mode_in_a_real_browser(browser, public_server, shots, tmp_path):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.set_default_timeout(WAIT_MS)
    try:
        walk_public_pages(page, public_server, shots, tmp_path)
    except Exception:
        snap(page, shots / "public-failure.png")
        public_server["process"].send_signal(signal.SIGABRT)
        time.sleep(2)
        shutil.copy(public_server["log"], shots / "public-failure-streamlit.log")
        raise


def no_server_path(page, server) -> None:
    text = page.locator('[data-testid="stApp"]').inner_text()
    paths = [str(ROOT), str(server["work"]), str(server["tiny_data"]), "/tmp", "/root", "/etc"]
    assert [p for p in paths if p in text] == [], text


def walk_public_pages(page, server, shots: Path, tmp_path: Path) -> None:
    photo = tmp_path / "chelsea.png"
    Image.fromarray(skdata.chelsea()).save(photo)
    url = server["url"]

    visit(page, f"{url}/predict", "Upload one or more photos")
    assert page.get_by_label("Checkpoints folder").count() == 0    # no free path box
    upload(page, photo)
    for name in MODELS:
        page.locator('[data-testid="stMetricLabel"]', has_text=name).first.wait_for()
    settle(page)
    no_exception(page)
    no_server_path(page, server)
    snap(page, shots / "public-2-predict.png")

    visit(page, f"{url}/", "Image-classifier workbench")
    assert page.get_by_text("shapes/broken").count() >= 1
    no_server_path(page, server)

    visit(page, f"{url}/compare", "Compare")
    page.locator(".js-plotly-plot").first.wait_for()
    no_exception(page)
    no_server_path(page, server)
    snap(page, shots / "public-4-compare.png")

    visit(page, f"{url}/runs", "Training runs")
    assert page.get_by_label("Run registry").count() == 0         # the operator's registry only
    page.get_by_text("Arguments and outcome").click()
    settle(page)
    no_server_path(page, server)

    for spec in (p for p in PAGES if p.operator):                  # every operator page refuses
        visit(page, f"{url}/{Path(spec.path).stem}", spec.title)
        page.get_by_text("is for the operator of this public server").wait_for()
        no_server_path(page, server)

    visit(page, f"{url}/", "Image-classifier workbench")
    page.get_by_text("Operator sign-in").click()
    token = page.get_by_label("Operator token", exact=True)
    token.fill(TOKEN)
    token.press("Enter")
    page.get_by_text("Signed in as the operator.").wait_for()
    settle(page)
    no_exception(page)

"""The README's screenshots, regenerated from a checkpoints folder in a real browser.

    python docs/screenshots.py [CHECKPOINTS] --photo A.jpg [--photo B.jpg] [--dataset NAME]
                               [--out docs/]

Starts ``streamlit run app.py`` on a free port over CHECKPOINTS (default checkpoints/), drives
Debian's headless Chromium (FVCORE_CHROMIUM) through Playwright, uploads the photos on Predict and
the first one on Grad-CAM, and saves full-page PNGs: screenshot-home.png, screenshot-predict.png,
screenshot-gradcam.png and screenshot-compare-<tab>.png for every dashboard tab (the training tab
twice: both splits, and validation only; a third time, validation per source, when a model was
trained on several folders). ``--dataset``
picks the sidebar's dataset (default: the one with the most models, as the app does). The server
works on a copy of the folder, so its ONNX cache never lands in CHECKPOINTS.
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from appserver import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    COMPARE_TABS,
    WAIT_MS,
    serve_app,
    settle,
    snap,
    upload,
    visit,
)

WIDTH = 1440


def shoot(page, path: Path) -> None:
    """Save a full-page PNG (at most 4000 px tall) and say so."""
    snap(page, path, max_height=4000, wait_ms=1000)
    print(f"wrote {path}")


def choose_dataset(page, dataset: str) -> None:
    """Pick ``dataset`` in the sidebar's Dataset box (options read 'name (N models)')."""
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Dataset").click()
    page.get_by_role("option", name=re.compile(rf"^{re.escape(dataset)} \(")).click()
    settle(page)


def take(url: str, photos: Sequence[Path], out: Path, dataset: Optional[str]) -> None:
    """Walk Home, Predict, Grad-CAM and every dashboard tab, saving one PNG each."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": WIDTH, "height": 900})
        page.set_default_timeout(WAIT_MS)
        visit(page, url, "Image-classifier workbench")
        if dataset:
            choose_dataset(page, dataset)  # session state: kept by the in-app page links below
        shoot(page, out / "screenshot-home.png")

        page.get_by_role("link", name="Predict").first.click()
        page.get_by_text("Upload one or more photos").first.wait_for()
        if len(photos) == 1:
            upload(page, photos[0])
        else:  # all at once, as a user picking several files does
            page.locator('[data-testid="stFileUploader"] input[type="file"]').first \
                .set_input_files([str(p) for p in photos])
            page.get_by_text(photos[-1].name).first.wait_for()
        settle(page)
        page.locator('[data-testid="stMetric"]').first.wait_for()
        settle(page)
        shoot(page, out / "screenshot-predict.png")

        page.get_by_role("link", name="Grad-CAM").first.click()
        page.get_by_text("Upload a photo").first.wait_for()
        upload(page, photos[0])
        settle(page)
        shoot(page, out / "screenshot-gradcam.png")

        page.get_by_role("link", name="Compare").first.click()
        page.locator(".js-plotly-plot").first.wait_for()
        settle(page)
        shoot(page, out / "screenshot-compare-overview.png")
        for tab in COMPARE_TABS:
            page.get_by_role("tab", name=tab).click()
            settle(page)
            shoot(page, out / f"screenshot-compare-{tab.split()[0].lower()}.png")
            if tab == "Training curves":   # the README's curves: one split, one trace per model
                page.get_by_text("validation", exact=True).first.click()
                settle(page)
                shoot(page, out / "screenshot-compare-training-validation.png")
                per_source = page.get_by_text("validation per source", exact=True)
                if per_source.count():   # models trained on several folders
                    per_source.first.click()
                    settle(page)
                    shoot(page, out / "screenshot-compare-training-per-source.png")
        browser.close()


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="?", default=str(ROOT / "checkpoints"))
    parser.add_argument("--photo", action="append", type=Path, required=True,
                        help="a photo to upload (repeat for several)")
    parser.add_argument("--dataset", help="the sidebar's dataset")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fvcore-shots-") as tmp:
        root = Path(tmp) / "checkpoints"
        shutil.copytree(args.checkpoints, root, ignore=shutil.ignore_patterns(".train", "*.tmp"))
        with serve_app({"FVCORE_CHECKPOINTS": str(root)}, Path(tmp) / "streamlit.log") as app:
            take(app.url, [p.resolve() for p in args.photo], args.out, args.dataset)


if __name__ == "__main__":
    main()

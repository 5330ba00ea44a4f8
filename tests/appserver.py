"""The real app for browser tests: `streamlit run app.py` on a free loopback port, Debian's
headless Chromium, and the few page helpers every browser test needs (settle, upload).
Shared by tests/test_e2e_browser.py, tests/test_load.py, bench/load.py, bench/coldstart.py and
docs/screenshots.py."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

from fvcore import settings

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(settings.chromium())
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
WAIT_MS = 120_000
SKIP_E2E = settings.skip_browser_tests()
SKIP_REASON = f"{settings.ENV_SKIP_E2E}=1"


@dataclass
class App:
    """A running server: its address, process and log file."""

    url: str
    process: subprocess.Popen
    log: Path


def free_port() -> int:
    """A TCP port nobody listens on right now (loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 90.0,
                 poll: float = 0.5) -> None:
    """Wait until Streamlit's health endpoint answers (asking every ``poll`` seconds); fail fast
    when the server exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(poll)
    raise TimeoutError(f"streamlit did not answer on {url} within {timeout:.0f} s")


@contextmanager
def serve_app(env: Mapping[str, str], log: Path) -> Iterator[App]:
    """`streamlit run app.py` with ``env`` added to this process's environment, its output in
    ``log``; stopped (terminate, then kill) on exit. ``-X faulthandler``: SIGABRT prints every
    thread's stack into the log."""
    port = free_port()
    with Path(log).open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-X", "faulthandler", "-m", "streamlit", "run", "app.py",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
        app = App(f"http://127.0.0.1:{port}", process, Path(log))
        try:
            wait_healthy(app.url, process)
            yield app
        finally:
            stop(process)


def stop(process: subprocess.Popen, grace: float = 15.0) -> None:
    """Terminate a server; kill it when it has not exited after ``grace`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (VmRSS)."""
    import psutil
    return psutil.Process(pid).memory_info().rss / 2**20


# -- page helpers (Playwright's sync API) -------------------------------------------------------

COMPARE_TABS = ("Training curves", "Test metrics", "Per-class F1", "Calibration", "Significance",
                "Misclassified images", "Label issues", "Embedding map", "Robustness",
                "Explanations")
"""The Compare page's tabs and sub-tabs that the browser walks (the first, Overview, is open)."""

NOT_RUNNING = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
"""True once the script run is over (Streamlit shows its status widget while running)."""


def settle(page) -> None:
    """Wait until the script run is over (no 'Running...' widget) and charts have drawn."""
    page.wait_for_load_state("networkidle")
    page.wait_for_selector('[data-testid="stApp"]')
    page.wait_for_function(NOT_RUNNING, timeout=WAIT_MS)
    page.wait_for_timeout(1200)


def visit(page, url: str, marker: str) -> None:
    """Open ``url``, wait for ``marker`` text, then for the script run to settle."""
    page.goto(url)
    page.get_by_text(marker).first.wait_for()
    settle(page)


def snap(page, path: Path, *, max_height: int = 6000, wait_ms: int = 800) -> None:
    """Screenshot the whole page: Streamlit scrolls inside its main area, so the viewport is
    grown to the content's height (at most ``max_height``) first, then set back to 900 px."""
    width = page.viewport_size["width"]
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]')"
                           ".scrollHeight")
    page.set_viewport_size({"width": width, "height": max(900, min(int(height) + 40, max_height))})
    page.wait_for_timeout(wait_ms)
    page.screenshot(path=path)
    page.set_viewport_size({"width": width, "height": 900})


def upload(page, path: Path) -> None:
    """Put a file into the page's uploader and wait until it shows as uploaded. A file set
    while the page is still re-rendering (e.g. the first run of a fresh server swapping its
    menu) can be dropped by the browser widget, so it is set again, at most three times."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    uploader = page.locator('[data-testid="stFileUploader"]').first
    for _ in range(3):
        uploader.locator('input[type="file"]').set_input_files(str(path))
        try:
            uploader.get_by_text(path.name).wait_for(timeout=20_000)
            return
        except PlaywrightTimeout:
            settle(page)
    raise AssertionError(f"{path.name} never showed as uploaded")

"""Every setting that comes from the environment, in one place: the ``FVCORE_*`` variables and the
repository-relative defaults they override. The CLI and the app read them from here, so both use
the same checkpoints folder, data roots and run database."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Optional

from fvcore.errors import FvError

REPO = Path(__file__).resolve().parent.parent
"""The repository (or installed tree) root: defaults are relative to it, never to the working
directory, so a command started from another folder writes where the app reads."""

ENV_CHECKPOINTS = "FVCORE_CHECKPOINTS"
ENV_DATA = "FVCORE_DATA"
ENV_RUNS_DB = "FVCORE_RUNS_DB"
ENV_SAMPLES = "FVCORE_SAMPLES"
ENV_BACKEND = "FVCORE_BACKEND"
ENV_THREADS = "FVCORE_THREADS"
ENV_CHROMIUM = "FVCORE_CHROMIUM"
"""The headless Chromium the browser test, the screenshots and the load benchmark drive."""
ENV_SKIP_E2E = "FVCORE_SKIP_E2E"
ENV_SCREENSHOTS = "FVCORE_SCREENSHOTS"
ENV_PUBLIC = "FVCORE_PUBLIC"
ENV_OPERATOR_TOKEN = "FVCORE_OPERATOR_TOKEN"
ENV_OPERATOR_EMAILS = "FVCORE_OPERATOR_EMAILS"
ENV_MAX_JOBS = "FVCORE_MAX_JOBS"
ENV_SESSION_JOBS = "FVCORE_SESSION_JOBS"
ENV_MAX_IMAGES = "FVCORE_MAX_IMAGES"
ENV_MAX_EVAL_IMAGES = "FVCORE_MAX_EVAL_IMAGES"

VARIABLES = {
    ENV_CHECKPOINTS: "the folder scanned for checkpoints (default: checkpoints/ in the repository)",
    ENV_DATA: "folders holding the datasets, os.pathsep-separated (default: ../shared/datasets)",
    ENV_RUNS_DB: "the SQLite run registry (default: runs.db in the repository)",
    ENV_SAMPLES: "a folder of sample photos offered on the Predict page (default: none)",
    ENV_BACKEND: "onnx or pytorch for predictions (default: onnx when onnxruntime is installed)",
    ENV_THREADS: "intra-op threads of ONNX Runtime (default: 0, its own choice)",
    ENV_CHROMIUM: "the Chromium of the browser tests and screenshots (default: /usr/bin/chromium)",
    ENV_SKIP_E2E: "1 skips the browser tests (default: they run, and a missing Chromium fails)",
    ENV_SCREENSHOTS: "where the browser test saves its page screenshots (default: "
                     "artifacts/screenshots/)",
    ENV_PUBLIC: "1 runs the app in public mode: roots from the settings only, no server paths, "
                "operator-only pages refuse visitors (default: 0, the local workbench)",
    ENV_OPERATOR_TOKEN: "a secret that, typed into the sidebar, makes a public-mode visitor the "
                        "operator for that session (default: none)",
    ENV_OPERATOR_EMAILS: "comma-separated e-mails that are the operator when signed in with "
                         "st.login (secrets.toml [auth]) (default: none)",
    ENV_MAX_JOBS: "expensive actions (predict, Grad-CAM, evaluate) running at once on the server "
                  "(default: 2 in public mode, 0 = unlimited otherwise)",
    ENV_SESSION_JOBS: "expensive actions one visitor may start per 10 minutes (default: 20 in "
                      "public mode, 0 = unlimited otherwise)",
    ENV_MAX_IMAGES: "photos one prediction may take (default: 16 in public mode, 0 = unlimited "
                    "otherwise)",
    ENV_MAX_EVAL_IMAGES: "images one evaluation zip may hold (default: 500 in public mode, 0 = "
                         "the zip limits only)",
}
"""Every variable and what it sets: docs/layout.md's table is checked against this."""

BACKENDS = ("onnx", "pytorch")


def _get(name: str) -> str:
    return os.environ.get(name, "").strip()


def checkpoints_root() -> Path:
    """``$FVCORE_CHECKPOINTS``, else ``checkpoints/`` in the repository."""
    return Path(_get(ENV_CHECKPOINTS) or REPO / "checkpoints").expanduser()


def data_roots() -> list[Path]:
    """Folders searched for dataset images: ``$FVCORE_DATA`` (os.pathsep-separated), else
    ``../shared/datasets`` beside the repository."""
    value = _get(ENV_DATA)
    if value:
        return [Path(p).expanduser() for p in value.split(os.pathsep) if p]
    return [REPO.parent / "shared" / "datasets"]


def runs_db() -> Path:
    """``$FVCORE_RUNS_DB``, else ``runs.db`` in the repository: the same for the CLI and the app."""
    return Path(_get(ENV_RUNS_DB) or REPO / "runs.db").expanduser()


def samples_dir() -> Optional[Path]:
    """``$FVCORE_SAMPLES`` when set (the Predict page's sample photos), else None."""
    value = _get(ENV_SAMPLES)
    return Path(value).expanduser() if value else None


def backend() -> str:
    """``$FVCORE_BACKEND`` (onnx | pytorch), else onnx when onnxruntime is installed."""
    chosen = _get(ENV_BACKEND).lower()
    if chosen:
        if chosen not in BACKENDS:
            raise FvError(f"{ENV_BACKEND}={chosen!r} is not a backend; choose one of "
                          f"{', '.join(BACKENDS)}")
        return chosen
    return "onnx" if importlib.util.find_spec("onnxruntime") is not None else "pytorch"


def threads() -> int:
    """Intra-op threads: ``$FVCORE_THREADS``, else 0 (ONNX Runtime's default: physical cores)."""
    value = _get(ENV_THREADS)
    if not value:
        return 0
    if not value.isdigit():
        raise FvError(f"{ENV_THREADS}={value!r} is not a whole number of threads")
    return int(value)


def chromium() -> str:
    """``$FVCORE_CHROMIUM``, else ``/usr/bin/chromium`` (Debian's package)."""
    return _get(ENV_CHROMIUM) or "/usr/bin/chromium"


def skip_browser_tests() -> bool:
    """``$FVCORE_SKIP_E2E`` is ``1``: the browser tests are skipped."""
    return _get(ENV_SKIP_E2E) == "1"


def screenshots_dir() -> Path:
    """``$FVCORE_SCREENSHOTS``, else ``artifacts/screenshots/`` in the repository."""
    return Path(_get(ENV_SCREENSHOTS) or REPO / "artifacts" / "screenshots").expanduser()


def onnx_cache_dir() -> Path:
    """Where ONNX exports go when a checkpoint folder is read-only."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fvcore" / "onnx"


def _whole(name: str, default: int) -> int:
    value = _get(name)
    if not value:
        return default
    if not value.isdigit():
        raise FvError(f"{name}={value!r} is not a whole number (0 = unlimited)")
    return int(value)


def public() -> bool:
    """``$FVCORE_PUBLIC`` is 1 (or true/yes/on): the app runs in public mode."""
    return _get(ENV_PUBLIC).lower() in ("1", "true", "yes", "on")


def operator_token() -> str:
    """``$FVCORE_OPERATOR_TOKEN``: the secret that makes a visitor the operator ("" = none)."""
    return _get(ENV_OPERATOR_TOKEN)


def operator_emails() -> frozenset[str]:
    """``$FVCORE_OPERATOR_EMAILS`` (comma-separated, lower-cased): st.login users who are the
    operator."""
    return frozenset(e.strip().lower() for e in _get(ENV_OPERATOR_EMAILS).split(",") if e.strip())


def max_jobs() -> int:
    """``$FVCORE_MAX_JOBS``: expensive actions at once on the server (0 = unlimited); default 2
    in public mode, unlimited otherwise."""
    return _whole(ENV_MAX_JOBS, 2 if public() else 0)


def session_jobs() -> int:
    """``$FVCORE_SESSION_JOBS``: expensive actions per visitor per 10 minutes (0 = unlimited);
    default 20 in public mode, unlimited otherwise."""
    return _whole(ENV_SESSION_JOBS, 20 if public() else 0)


def max_images() -> int:
    """``$FVCORE_MAX_IMAGES``: photos per prediction (0 = unlimited); default 16 in public mode,
    unlimited otherwise."""
    return _whole(ENV_MAX_IMAGES, 16 if public() else 0)


def max_eval_images() -> int:
    """``$FVCORE_MAX_EVAL_IMAGES``: images per evaluation zip (0 = the zip limits only); default
    500 in public mode."""
    return _whole(ENV_MAX_EVAL_IMAGES, 500 if public() else 0)

"""Streamlit glue: the page registry, cached loading (models once per process, stored files per
change), the sidebar (checkpoints folder, dataset, models) and error display.

Models are loaded lazily through ``st.cache_resource`` keyed by checkpoint path (plus the weights'
modification time, so a retrained checkpoint is reloaded); files derived from stored data go
through ``st.cache_data``. A page that needs no model loads none.
"""
from __future__ import annotations

import io
import logging
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import pandas as pd
import streamlit as st

from fvcore.checkpoint import HISTORY, PREDICTIONS, WEIGHTS, Entry, Problem, scan
from fvcore.checkpoint import checkpoint_folders, datasets, load_checkpoint
from fvcore.classifier import Classifier
from fvcore.dashboard import REPO, read_history, short_names
from fvcore.errors import FvError
from fvcore.evaluate import Predictions, read_predictions

log = logging.getLogger("fvcore.app")

ENV_CHECKPOINTS, ENV_RUNS_DB, ENV_SAMPLES = "FVCORE_CHECKPOINTS", "FVCORE_RUNS_DB", "FVCORE_SAMPLES"
SELECTION = "_fv_selection"
_entry = threading.local()   # set while app.py runs the page (per script thread)


@dataclass(frozen=True)
class PageSpec:
    """One page of the app: its script, title and icon."""

    path: str
    title: str
    icon: str
    about: str
    default: bool = False


PAGES = (
    PageSpec("pages/home.py", "Home", ":material/home:", "the checkpoints at a glance",
             default=True),
    PageSpec("pages/predict.py", "Predict", ":material/photo_camera:",
             "upload photos; every model's top-k side by side, with the ensemble"),
    PageSpec("pages/gradcam.py", "Grad-CAM", ":material/visibility:",
             "where each model looks, and how faithful that heatmap is"),
    PageSpec("pages/compare.py", "Compare", ":material/leaderboard:",
             "metrics, efficiency, training curves, confusion, calibration, significance"),
    PageSpec("pages/evaluate.py", "Evaluate", ":material/fact_check:",
             "every model on your own zip of labelled images"),
    PageSpec("pages/runs.py", "Runs", ":material/monitoring:",
             "past and running training runs, with live curves"),
)
"""Every page, in menu order: app.py builds the navigation from it and the tests visit each."""


@dataclass
class Selection:
    """What the sidebar chose: the checkpoints, the dataset and the models pages work on."""

    root: Path
    entries: list[Entry] = field(default_factory=list)        # every valid checkpoint
    problems: list[Problem] = field(default_factory=list)     # folders that failed, and why
    dataset: Optional[str] = None
    in_dataset: list[Entry] = field(default_factory=list)     # every checkpoint of the dataset
    models: list[Entry] = field(default_factory=list)         # the ones selected


# -- errors -------------------------------------------------------------------------------------

@contextmanager
def guard(what: str = "") -> Iterator[None]:
    """Show an FvError (or any unexpected error) as one ``st.error`` line, never a traceback;
    the rest of the page still renders."""
    try:
        yield
    except FvError as exc:
        st.error(str(exc), icon=":material/error:")
    except Exception as exc:  # noqa: BLE001 - a page must never show a traceback
        log.exception("unexpected error%s", f" in {what}" if what else "")
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        st.error(f"{what + ' failed: ' if what else ''}{type(exc).__name__}: {first}",
                 icon=":material/error:")


# -- cached loading -----------------------------------------------------------------------------

def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _stamp(entry: Entry, filename: str) -> float:
    return _mtime(entry.path / filename)


def checkpoints_default() -> str:
    """``$FVCORE_CHECKPOINTS``, else ``checkpoints/`` in the repository."""
    return os.environ.get(ENV_CHECKPOINTS, "").strip() or str(REPO / "checkpoints")


@st.cache_data(show_spinner=False, max_entries=8)
def _scan(root: str, signature: tuple) -> tuple[list[Entry], list[Problem]]:
    return scan(root)


def scan_cached(root: str | Path) -> tuple[list[Entry], list[Problem]]:
    """``checkpoint.scan`` (cards and weight headers only), redone when a card or weights file
    changes."""
    folders = checkpoint_folders(root)
    signature = tuple((str(f), _mtime(f / "card.json"), _mtime(f / WEIGHTS)) for f in folders)
    return _scan(str(root), signature)


@st.cache_resource(show_spinner=False, max_entries=48)
def _load(path: str, stamp: float) -> Classifier:
    return load_checkpoint(path, name=path)  # the path: unique, whatever a page calls the model


def load_model(entry: Entry) -> Classifier:
    """The entry's classifier, loaded once per process (keyed by its folder)."""
    return _load(str(entry.path), _stamp(entry, WEIGHTS))


def load_models(entries: Sequence[Entry]) -> list[Entry]:
    """Load (or fetch from the cache) every entry; returns the entries that loaded (a failure
    is shown as one line and that model skipped)."""
    loaded = []
    with st.spinner(f"Loading {len(entries)} model(s)..."):
        for entry in entries:
            with guard(f"loading {entry.name}"):
                load_model(entry)
                loaded.append(entry)
    return loaded


@st.cache_data(show_spinner=False, max_entries=128)
def _predictions(path: str, classes: tuple[str, ...], stamp: float) -> Optional[Predictions]:
    return read_predictions(path, classes)


def stored_predictions(entries: Sequence[Entry]) -> tuple[dict[str, Predictions], list[str]]:
    """Each entry's ``predictions.csv``: ({name: Predictions}, one-line notes on the missing)."""
    found, notes = {}, []
    for entry in entries:
        try:
            preds = _predictions(str(entry.path), tuple(entry.card.classes),
                                 _stamp(entry, PREDICTIONS))
        except FvError as exc:
            notes.append(f"{entry.name}: {exc.reason}")
            continue
        if preds is None:
            notes.append(f"{entry.name}: no {PREDICTIONS} yet (still training?)")
        else:
            found[entry.name] = preds
    return found, notes


@st.cache_data(show_spinner=False, max_entries=128)
def _history(path: str, stamp: float) -> Optional[pd.DataFrame]:
    return read_history(path)


def histories(entries: Sequence[Entry]) -> dict[str, pd.DataFrame]:
    """Each entry's ``history.csv`` (entries without one are left out)."""
    frames = {e.name: _history(str(e.path), _stamp(e, HISTORY)) for e in entries}
    return {name: frame for name, frame in frames.items() if frame is not None}


@st.cache_resource(show_spinner=False)
def _latency_store() -> dict[tuple[str, float], float]:
    return {}


def latencies(entries: Sequence[Entry]) -> dict[str, float]:
    """Known single-image CPU latencies (ms): measured in this process, else from the card."""
    store = _latency_store()
    known = {}
    for e in entries:
        value = store.get((str(e.path), _stamp(e, WEIGHTS)), e.card.metrics.get("latency_ms"))
        if value is not None:
            known[e.name] = float(value)
    return known


def measure_latencies(entries: Sequence[Entry]) -> None:
    """Load each model and time one-image forward passes (median of 5)."""
    store = _latency_store()
    bar = st.progress(0.0, text="Measuring latency...")
    for i, entry in enumerate(entries):
        with guard(f"timing {entry.name}"):
            store[(str(entry.path), _stamp(entry, WEIGHTS))] = load_model(entry).latency_ms()
        bar.progress((i + 1) / len(entries), text=f"Measured {entry.name}")
    bar.empty()


@st.cache_data(show_spinner=False, max_entries=16)
def predict_files(paths: tuple[str, ...], names: tuple[str, ...], stamps: tuple[float, ...],
                  files: tuple[tuple[str, bytes], ...]) -> dict:
    """Every model on every file: {"images": [(name, thumbnail)], "errors": [{image, error}],
    "probs": {model: (N x C, ms per image)}}. Cached on the files' bytes."""
    from fvcore.inference import batch_probs, load_images
    sources = []
    for name, data in files:
        handle = io.BytesIO(data)
        handle.name = name
        sources.append(handle)
    good, errors = load_images(sources)
    models = [_load(p, s) for p, s in zip(paths, stamps)]
    found = batch_probs(models, [img for _, img in good]) if good else {}
    probs = {name: found[m.name] for name, m in zip(names, models) if m.name in found}
    thumbs = []
    for name, image in good:
        image = image.copy()
        image.thumbnail((512, 512))
        thumbs.append((name, image))
    return {"images": thumbs, "errors": errors, "probs": probs}


def predict(entries: Sequence[Entry], files: Sequence[tuple[str, bytes]]) -> dict:
    """:func:`predict_files` for sidebar entries (models load once, results cached)."""
    return predict_files(tuple(str(e.path) for e in entries), tuple(e.name for e in entries),
                         tuple(_stamp(e, WEIGHTS) for e in entries), tuple(files))


@st.cache_data(show_spinner=False, max_entries=64)
def _explain(path: str, stamp: float, data: bytes, target: Optional[str], method: str,
             score: bool) -> dict:
    from fvcore.images import load_image
    clf = _load(path, stamp)
    image = load_image(data, name="image")
    target = target if target is None or target in clf.classes else None
    result, faith = clf.explain(image, target, method, score=score)
    return {"crop": clf.preset.crop(image), "heatmap": result.heatmap,
            "probs": np.asarray(result.probs), "target": clf.classes[result.target],
            "pred": clf.classes[int(np.argmax(result.probs))],
            "pred_prob": float(np.max(result.probs)), "faithfulness": faith,
            "ms": result.ms}


def explain(entry: Entry, data: bytes, target: Optional[str], method: str, score: bool) -> dict:
    """One model's CAM of an image, cached on (model, image bytes, target, method)."""
    return _explain(str(entry.path), _stamp(entry, WEIGHTS), data, target, method, score)


@st.cache_data(show_spinner=False, max_entries=512)
def thumbnail(path: str, size: int = 320):
    """A small upright RGB copy of an image file, for galleries."""
    from fvcore.images import load_image
    image = load_image(path)
    image.thumbnail((size, size))
    return image


def configure() -> None:
    """Wide layout, title, and less empty space above the page title."""
    st.set_page_config(page_title="fvcore workbench", page_icon=":material/compare:",
                       layout="wide")
    st.html("<style>[data-testid='stMainBlockContainer']{padding-top:2.5rem}</style>")


def navigation():
    """The app's navigation, built from :data:`PAGES`; returns the page to run."""
    return st.navigation([st.Page(p.path, title=p.title, icon=p.icon, default=p.default,
                                  help=p.about) for p in PAGES])


@contextmanager
def entrypoint() -> Iterator[None]:
    """app.py runs the page inside this: the sidebar it rendered belongs to this run."""
    _entry.active = True
    try:
        yield
    finally:
        _entry.active = False


# -- the sidebar --------------------------------------------------------------------------------

def sidebar() -> Selection:
    """Render the sidebar (folder, dataset, models) and remember the choice for the pages."""
    with st.sidebar:
        st.text_input("Checkpoints folder", value=checkpoints_default(), key="checkpoints_dir",
                      help=f"Scanned recursively for checkpoint folders (default from "
                           f"${ENV_CHECKPOINTS}).")
        root = Path(st.session_state["checkpoints_dir"]).expanduser()
        selection = Selection(root)
        if not root.is_dir():
            st.error(f"{root}: folder not found")
        else:
            selection.entries, selection.problems = scan_cached(root)
        groups = datasets(selection.entries)
        if groups:
            names = sorted(groups, key=lambda d: (-len(groups[d]), d))
            selection.dataset = st.selectbox(
                "Dataset", names, key="dataset",
                format_func=lambda d: f"{d} ({len(groups[d])} model{'s' * (len(groups[d]) != 1)})",
                help="Every page works on the checkpoints of this dataset.")
            selection.in_dataset = short_names(groups[selection.dataset], selection.dataset)
            options = [e.name for e in selection.in_dataset]
            chosen = st.multiselect("Models", options, default=options,
                                    key=f"models::{root}::{selection.dataset}",
                                    help="The models the pages show, side by side.")
            selection.models = [e for e in selection.in_dataset if e.name in chosen]
        st.caption(f"{len(selection.entries)} checkpoint(s) found, {len(selection.problems)} "
                   "skipped (see Home)")
    st.session_state[SELECTION] = selection
    return selection


def selection() -> Selection:
    """The sidebar's current choice, rendered by app.py before the page.

    Streamlit runs a page without app.py while it still thinks this is a ``pages/``-folder app
    (a fresh server's first run on a deep link, every AppTest rerun). Such a run registers the
    real navigation and reruns at once, so the page always runs the normal way, through app.py.
    """
    if not getattr(_entry, "active", False):
        navigation()
        st.rerun()
    return st.session_state[SELECTION]


def require_models(sel: Selection) -> None:
    """Stop the page with a hint when no model is selected."""
    if sel.models:
        return
    if not sel.entries:
        st.info(f"No checkpoints found in `{sel.root}`. Train some (`python -m fvcore zoo ...`) "
                "or point the sidebar's *Checkpoints folder* elsewhere.")
    else:
        st.info("No model selected: pick at least one in the sidebar.")
    st.stop()


def sample_images() -> list[Path]:
    """Images of the ``$FVCORE_SAMPLES`` folder (none when unset or missing)."""
    from fvcore.data import list_images
    folder = os.environ.get(ENV_SAMPLES, "").strip()
    return list_images(Path(folder)) if folder and Path(folder).is_dir() else []


def runs_db_default() -> str:
    """``$FVCORE_RUNS_DB``, else ``runs.db`` in the repository."""
    return os.environ.get(ENV_RUNS_DB, "").strip() or str(REPO / "runs.db")

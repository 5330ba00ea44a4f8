"""Streamlit glue: the page registry, the navigation, the shared sidebar (checkpoints folder,
dataset, models) and error display. Cached loading lives in :mod:`fvcore.app.cache`; a page that
needs no model loads none."""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

import streamlit as st

from fvcore import settings
from fvcore.app import access, limits
from fvcore.app.access import require_operator as require_operator  # pages: operator-only parts
from fvcore.app.cache import LoadedModel, load_model, measure_latency, scan_cached
from fvcore.app.frames import short_names
from fvcore.checkpoints.catalog import Entry, Problem, datasets, status_tag
from fvcore.datasets.folders import find_images
from fvcore.errors import FvError, ImageError
from fvcore.inference.images import load_image

log = logging.getLogger("fvcore.app")

SELECTION = "_fv_selection"
SHOW = "_fv_show_dataset"
_entry = threading.local()   # set while app.py runs the page (per script thread)


@dataclass(frozen=True)
class PageSpec:
    """One page of the app: its script, title and icon; an ``operator`` page refuses public-mode
    visitors in one line (see :mod:`fvcore.app.access`)."""

    path: str
    title: str
    icon: str
    about: str
    default: bool = False
    operator: bool = False


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
    PageSpec("pages/datasets.py", "Datasets", ":material/dataset:",
             "your datasets, each one's health report before training, and adding one"),
    PageSpec("pages/import_model.py", "Import", ":material/upload_file:",
             "a notebook's best_model.pth, checked and added to a dataset's group",
             operator=True),
    PageSpec("pages/train.py", "Train", ":material/model_training:",
             "queue training jobs on a dataset (Quick, Fine-tune, From scratch) and follow them"),
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
    truncated: Optional[str] = None                           # why the scan stopped early


# -- errors -------------------------------------------------------------------------------------

@contextmanager
def guard(what: str = "") -> Iterator[None]:
    """Show an FvError (or any unexpected error) as one ``st.error`` line, never a traceback,
    with server paths as :func:`fvcore.app.access.shown` allows; the rest of the page still
    renders. A visitor's limit (:class:`fvcore.app.limits.LimitError`) ends the outermost guard:
    one line for the whole action, not one per model."""
    depth = getattr(_entry, "guards", 0)
    _entry.guards = depth + 1
    root = getattr(st.session_state.get(SELECTION), "root", None)
    try:
        yield
    except limits.LimitError as exc:
        if depth:
            raise
        st.error(str(exc), icon=":material/hourglass:")
    except FvError as exc:
        st.error(access.shown(str(exc), root), icon=":material/error:")
    except Exception as exc:  # noqa: BLE001 - a page must never show a traceback
        log.exception("unexpected error%s", f" in {what}" if what else "")
        first = access.shown((str(exc).strip().splitlines() or [""])[0][:200], root)
        st.error(f"{what + ' failed: ' if what else ''}{type(exc).__name__}: {first}",
                 icon=":material/error:")
    finally:
        _entry.guards = depth


def readable_image(name: str, data: bytes) -> bool:
    """Whether an upload decodes as an image; when it does not, one ``name: reason`` error line
    for it (a page then skips it instead of failing once per model)."""
    try:
        load_image(data, name=name)
    except ImageError as exc:
        st.error(str(exc), icon=":material/broken_image:")
        return False
    return True


# -- loading with feedback ----------------------------------------------------------------------

def checkpoints_default() -> str:
    """The sidebar's starting folder: :func:`fvcore.settings.checkpoints_root`."""
    return str(settings.checkpoints_root())


def load_models(entries: Sequence[Entry]) -> list[LoadedModel]:
    """Load (or fetch from the cache) every entry, once per page run: the models that loaded,
    for the page to hand on (a failure is shown as one line and that model skipped)."""
    loaded = []
    with st.spinner(f"Loading {len(entries)} model(s)..."):
        for entry in entries:
            with guard(f"loading {entry.name}"):
                loaded.append(load_model(entry))
    return loaded


def measure_latencies(entries: Sequence[Entry]) -> bool:
    """Time every model's one-image forward pass, with a progress bar (one limited action);
    False when a visitor's limit refused it (the page shows why)."""
    with guard("timing"), limits.action("timing") as act:
        act.charge()
        bar = st.progress(0.0, text="Measuring latency...")
        for i, entry in enumerate(entries):
            with guard(f"timing {entry.name}"):
                measure_latency(entry)
            bar.progress((i + 1) / len(entries), text=f"Measured {entry.name}")
        bar.empty()
        return True
    return False


def configure() -> None:
    """Wide layout, title, and less empty space above the page title."""
    st.set_page_config(page_title="fvcore workbench", page_icon=":material/compare:",
                       layout="wide")
    st.html("<style>[data-testid='stMainBlockContainer']{padding-top:2.5rem}</style>")


def navigation():
    """The app's navigation, built from :data:`PAGES`; returns the page to run."""
    page = st.navigation([st.Page(p.path, title=p.title, icon=p.icon, default=p.default,
                                  help=p.about) for p in PAGES])
    _entry.page = page.title
    return page


@contextmanager
def entrypoint() -> Iterator[None]:
    """app.py runs the page inside this: the sidebar it rendered belongs to this run. An
    operator page (``PageSpec.operator``) is not run for a public-mode visitor: its title and one
    line instead."""
    spec = next((p for p in PAGES if p.title == getattr(_entry, "page", None)), None)
    if spec is not None and spec.operator and not access.is_operator():
        st.title(spec.title)
        access.require_operator(f"The {spec.title} page")
    _entry.active = True
    try:
        yield
    finally:
        _entry.active = False


# -- the sidebar --------------------------------------------------------------------------------

def sidebar() -> Selection:
    """Render the sidebar (folder, dataset, models) and remember the choice for the pages. In
    public mode the folder is the operator's (the settings'), with no box to change it."""
    with st.sidebar:
        if access.public():
            root = settings.checkpoints_root()
        else:
            st.text_input("Checkpoints folder", value=checkpoints_default(),
                          key="checkpoints_dir", help=f"Scanned recursively for checkpoint "
                          f"folders (default from ${settings.ENV_CHECKPOINTS}).")
            root = Path(st.session_state["checkpoints_dir"]).expanduser()
        selection = Selection(root)
        if not root.is_dir():
            st.error(f"{access.shown(str(root), keep_local=True)}: folder not found")
        else:
            found = scan_cached(root)
            selection.entries, selection.problems = found.entries, found.problems
            selection.truncated = found.truncated
        groups = datasets(selection.entries)
        shown = st.session_state.pop(SHOW, None)
        if shown in groups:   # a checkpoint was just added: its group, every model selected
            st.session_state["dataset"] = shown
            st.session_state.pop(f"models::{root}::{shown}", None)
        if groups:
            names = sorted(groups, key=lambda d: (-len(groups[d]), d))
            selection.dataset = st.selectbox(
                "Dataset", names, key="dataset",
                format_func=lambda d: f"{d} ({len(groups[d])} model{'s' * (len(groups[d]) != 1)})",
                help="Every page works on the checkpoints of this dataset.")
            selection.in_dataset = short_names(groups[selection.dataset], selection.dataset)
            options = [e.name for e in selection.in_dataset]
            tags = {e.name: status_tag(e) for e in selection.in_dataset}
            chosen = st.multiselect("Models", options, default=options,
                                    key=f"models::{root}::{selection.dataset}",
                                    format_func=lambda n: f"{n} ({tags[n]})" if tags[n] else n,
                                    help="The models the pages show, side by side (a model "
                                         "still training shows its best weights so far).")
            selection.models = [e for e in selection.in_dataset if e.name in chosen]
        st.caption(f"{len(selection.entries)} checkpoint(s) found, {len(selection.problems)} "
                   "skipped (see Home)")
        if selection.truncated:
            st.warning(selection.truncated, icon=":material/warning:")
        access.sign_in_box()
    st.session_state[SELECTION] = selection
    return selection


def show_dataset(dataset: str) -> None:
    """Make the next run's sidebar switch to ``dataset`` with all its models selected (after a
    checkpoint was added to it)."""
    st.session_state[SHOW] = dataset


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
        st.info(f"No checkpoints found in `{access.shown(str(sel.root), keep_local=True)}`. "
                "Train some (`python -m fvcore zoo ...`) or point the sidebar's *Checkpoints "
                "folder* elsewhere.")
    else:
        st.info("No model selected: pick at least one in the sidebar.")
    st.stop()


def sample_images() -> list[Path]:
    """Images of the ``$FVCORE_SAMPLES`` folder (none when unset or missing; a bounded walk)."""
    folder = settings.samples_dir()
    return find_images(folder).files if folder and folder.is_dir() else []


def runs_db_default() -> str:
    """The run registry the app reads: :func:`fvcore.settings.runs_db`, as the CLI writes."""
    return str(settings.runs_db())

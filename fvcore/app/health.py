"""The Datasets page's work: the datasets under the data roots (cached briefly), each one's
health report (cached on its folders' modification times; a limited action in public mode, see
:mod:`fvcore.app.limits`), the report's sections, and adding a dataset (a zip or a server
folder), after which every list is read again."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd
import streamlit as st

from fvcore import settings
from fvcore.app import access, cache, limits
from fvcore.datasets.health import HealthReport, dataset_health, find_splits
from fvcore.datasets.store import Added, DatasetInfo, add_from_folder, add_from_zip, list_datasets
from fvcore.datasets.zipdata import describe_skipped

SHOWN_LINES = 20
"""Problem lines shown before the rest is folded into an expander."""
GRID_CLASSES = 12
"""Classes whose samples the grid shows at once (the rest behind a class picker)."""


@st.cache_data(show_spinner=False, ttl=30, max_entries=4)
def _known(roots: tuple[str, ...]) -> list[DatasetInfo]:
    return list_datasets([Path(r) for r in roots])


def known() -> list[DatasetInfo]:
    """Every dataset under the data roots, with its counts (re-read every 30 s or after an
    add)."""
    return _known(tuple(str(r) for r in settings.data_roots()))


def listing(datasets: list[DatasetInfo]) -> pd.DataFrame:
    """The datasets table: name, where, classes, images per split folder."""
    rows = []
    for info in datasets:
        rows.append({"dataset": info.name, "classes": len(info.classes), "images": info.n_images,
                     **{f"{k}/": v for k, v in info.counts.items()},
                     "where": access.shown(str(info.path), keep_local=True)
                     + (" (link)" if info.linked else "")})
    return pd.DataFrame(rows)


def signature(path: Path) -> tuple:
    """Modification times of the dataset's split and class folders: files added or removed
    anywhere in it change one."""
    stamps = [(str(path), path.stat().st_mtime_ns)]
    for folder in find_splits(path).values():
        stamps += [(str(d), d.stat().st_mtime_ns) for d in sorted(folder.iterdir()) if d.is_dir()]
    return tuple(stamps)


@st.cache_data(show_spinner=False, max_entries=8)
def _report(path: str, stamp: tuple) -> HealthReport:
    limits.charge()   # a cache miss: every image is read, a real job for the visitor
    return dataset_health(path)


def report(info: DatasetInfo) -> HealthReport:
    """The dataset's health report (cached until a file is added or removed)."""
    with limits.action("health check"), st.spinner(f"Checking {info.n_images} images..."):
        return _report(str(info.path), signature(info.path))


def _lines(lines: list[str], kind: str) -> None:
    if not lines:
        return
    text = "\n".join(f"- {line}" for line in lines[:SHOWN_LINES])
    (st.warning if kind == "warning" else st.info)(f"{len(lines)} problem(s):\n{text}",
                                                   icon=":material/warning:")
    if len(lines) > SHOWN_LINES:
        with st.expander(f"All {len(lines)} problems"):
            st.text("\n".join(lines))


def show_report(rep: HealthReport) -> None:
    """The report: the verdict in one line, counts per class and split, every problem one line
    each, and a sample grid per class."""
    if rep.blocking:
        st.error(rep.verdict(), icon=":material/block:")
    else:
        st.success(rep.verdict(), icon=":material/check_circle:")
    for note in rep.notes:
        st.caption(note)
    ratio = rep.imbalance
    with st.container(horizontal=True):
        st.metric("Images", rep.n_images)
        st.metric("Classes", len(rep.classes))
        st.metric("Imbalance (largest/smallest)", f"{ratio:.1f}x" if ratio else "-")
        st.metric("Duplicates across splits", len(rep.leaks))
        st.metric("Unreadable files", len(rep.unreadable))
        st.metric("Very small images", len(rep.small))
    st.dataframe(pd.DataFrame(rep.table()), hide_index=True, key="health_table")
    _lines(rep.warnings(), "warning")
    st.caption(f"Checked in {rep.seconds:.1f} s: every file read, hashed (content and pHash) "
               "and decoded once.")
    sample_grid(rep)


def sample_grid(rep: HealthReport) -> None:
    """A few train images of each class (the first :data:`GRID_CLASSES`, or one chosen)."""
    classes = [c for c in rep.classes if rep.samples.get(c)]
    if not classes:
        return
    st.subheader("Samples per class")
    if len(classes) > GRID_CLASSES:
        classes = [st.selectbox("Class", classes, key="health_grid_class")]
    for name in classes:
        paths = rep.samples[name]
        st.image([cache.thumbnail(str(p), 160) for p in paths], width=96,
                 caption=[f"{name}: {p.name}" for p in paths])


def added_message(added: Added) -> tuple[str, Optional[str]]:
    """The success line after adding, and the files left out (one line each) when any."""
    if not added.skipped:
        return f"{added}.", None
    lines = describe_skipped(added.skipped)
    return (f"{added}; {len(added.skipped)} file(s) left out.",
            "\n".join(f"- {line}" for line in lines))


def add(*, name: str, replace: bool, data: Optional[bytes] = None,
        folder: Optional[str] = None, copy: bool = True) -> Added:
    """Add an uploaded zip (``data``) or a server ``folder`` as dataset ``name``; every cached
    list is read again."""
    added = (add_from_zip(data, name, replace=replace) if data is not None
             else add_from_folder(folder or "", name, copy=copy, replace=replace))
    _known.clear()
    _report.clear()
    return added

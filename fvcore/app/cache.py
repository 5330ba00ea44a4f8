"""Cached loading for the app: models once per process (``st.cache_resource`` keyed by the
checkpoint folder plus the weights' modification time, so a retrained checkpoint is reloaded),
and everything derived from stored files or uploads through ``st.cache_data``. A page loads its
models once (:func:`load_model`) and hands the :class:`LoadedModel` s to the cached prediction
and explanation, which hash their keys (folder, name, weights stamp), not the models. Importing
it does not import torch: that happens when the first model loads."""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import pandas as pd
import streamlit as st

from fvcore.app import limits
from fvcore.checkpoints.catalog import (
    CARD,
    HISTORY,
    PREDICTIONS,
    WEIGHTS,
    Entry,
    Scan,
    checkpoint_folders,
    scan,
)
from fvcore.checkpoints.history import read_history
from fvcore.errors import FvError
from fvcore.evaluation.evaluate import Predictions, read_predictions
from fvcore.inference.images import load_image

if TYPE_CHECKING:
    from fvcore.explain.cam import CamView
    from fvcore.inference.classifier import Classifier
    from fvcore.inference.predict import PredictionRun


def mtime(path: Path) -> float:
    """A file's modification time, 0.0 when it is missing: the cache stamp of stored results."""
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _stamp(entry: Entry, filename: str) -> float:
    return mtime(entry.path / filename)


@st.cache_data(show_spinner=False, max_entries=8)
def _scan(root: str, signature: tuple) -> Scan:
    return scan(root)


def scan_cached(root: str | Path) -> Scan:
    """``checkpoint.scan`` (cards and weight headers only), redone when a card or weights file
    changes (the walk that finds the folders is bounded, see :mod:`fvcore.walk`)."""
    folders, truncated = checkpoint_folders(root)
    signature = (truncated, *((str(f), mtime(f / CARD), mtime(f / WEIGHTS)) for f in folders))
    return _scan(str(root), signature)


def forget_scans() -> None:
    """Drop the cached scans: a checkpoint written by this process is listed at once."""
    _scan.clear()


def onnx_file(path: str | Path) -> bytes:
    """A checkpoint's parity-checked ONNX export (exported and cached on first use): what its
    download button serves."""
    from fvcore.inference.loading import onnx_export
    return onnx_export(path)


@st.cache_resource(show_spinner=False, max_entries=48)
def _load(path: str, stamp: float) -> Classifier:
    from fvcore.inference.loading import load_checkpoint
    return load_checkpoint(path, name=path)  # the path: unique, whatever a page calls the model


@dataclass(frozen=True)
class LoadedModel:
    """A sidebar entry and its classifier, loaded from the weights of modification time
    ``stamp``."""

    entry: Entry
    classifier: Classifier
    stamp: float

    @property
    def name(self) -> str:
        """The name the pages show."""
        return self.entry.name

    @property
    def key(self) -> tuple[str, str, float]:
        """What cached results are keyed on in place of the model: folder, name, weights stamp."""
        return str(self.entry.path), self.entry.name, self.stamp


def load_model(entry: Entry) -> LoadedModel:
    """The entry's classifier, loaded once per process (keyed by its folder and weights)."""
    stamp = _stamp(entry, WEIGHTS)
    return LoadedModel(entry, _load(str(entry.path), stamp), stamp)


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


def measure_latency(entry: Entry) -> float:
    """Load the model and time one-image forward passes (median of 5); remembered per process."""
    model = load_model(entry)
    ms = model.classifier.latency_ms()
    _latency_store()[(str(entry.path), model.stamp)] = ms
    return ms


def latencies(entries: Sequence[Entry]) -> dict[str, float]:
    """Known single-image CPU latencies (ms): measured in this process, else from the card."""
    store = _latency_store()
    known = {}
    for e in entries:
        value = store.get((str(e.path), _stamp(e, WEIGHTS)), e.card.metrics.get("latency_ms"))
        if value is not None:
            known[e.name] = float(value)
    return known


@st.cache_data(show_spinner=False, max_entries=16)
def predict_files(key: tuple[tuple[str, str, float], ...], _models: tuple[Classifier, ...],
                  files: tuple[tuple[str, bytes], ...]) -> PredictionRun:
    """Every model on every file, with 512-pixel thumbnails; cached on the models' ``key`` (one
    :attr:`LoadedModel.key` each) and the files' bytes."""
    from fvcore.inference.predict import predict_images
    limits.charge()   # a cache miss: real work for the visitor's action
    sources = []
    for name, data in files:
        handle = io.BytesIO(data)
        handle.name = name
        sources.append(handle)
    return predict_images(_models, sources, names=[name for _, name, _ in key], thumbnail=512)


def predict(models: Sequence[LoadedModel], files: Sequence[tuple[str, bytes]]) -> PredictionRun:
    """:func:`predict_files` for the page's loaded models (results cached)."""
    return predict_files(tuple(m.key for m in models), tuple(m.classifier for m in models),
                         tuple(files))


@st.cache_data(show_spinner=False, max_entries=64)
def _explain(key: tuple[str, str, float], _clf: Classifier, data: bytes, target: Optional[str],
             method: str, score: bool) -> CamView:
    limits.charge()
    image = load_image(data, name="image")
    target = target if target is None or target in _clf.classes else None
    return _clf.explain_view(image, target, method, score=score)


def explain(model: LoadedModel, data: bytes, target: Optional[str], method: str,
            score: bool) -> CamView:
    """One model's CAM of an image, cached on (model key, image bytes, target, method)."""
    return _explain(model.key, model.classifier, data, target, method, score)


@st.cache_data(show_spinner=False, max_entries=512)
def thumbnail(path: str, size: int = 320):
    """A small upright RGB copy of an image file, for galleries."""
    image = load_image(path)
    image.thumbnail((size, size))
    return image

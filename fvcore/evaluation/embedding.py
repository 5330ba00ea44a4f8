"""``embedding.csv``, a checkpoint's 2-D map of its test images: each image's path, test domain,
given label, the model's prediction and its (x, y) position, computed by
:mod:`fvcore.evaluation.features` from the model's penultimate features and stored beside the
checkpoint with ``embedding.json`` (the projection and the hash of the weights it came from: new
weights make the map stale). Torch-free: the app reads maps without loading a model."""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from fvcore.checkpoints.catalog import weights_sha256
from fvcore.checkpoints.folder import atomic_write
from fvcore.errors import FvError

EMBEDDING, EMBEDDING_META = "embedding.csv", "embedding.json"
COLUMNS = ["path", "domain", "label", "pred", "x", "y"]


def weights_digest(folder: str | Path) -> Optional[str]:
    """First 16 hex digits of the SHA-256 of the checkpoint's weights (None without weights);
    remembered per file size and modification time within a process."""
    try:
        return weights_sha256(folder)[:16]
    except OSError:
        return None


@dataclass(frozen=True)
class EmbeddingMap:
    """A stored map: one row per test image (:data:`COLUMNS`, plus ``correct``) and how it was
    made (``meta``: method, features, weights hash, ...; empty when ``embedding.json`` is
    missing)."""

    frame: pd.DataFrame
    meta: dict[str, Any]

    @property
    def method(self) -> str:
        """The projection: ``umap``, ``tsne`` or ``pca`` (``unknown`` without meta)."""
        return str(self.meta.get("method", "unknown"))

    def current(self, folder: str | Path) -> bool:
        """Whether the map was made from the checkpoint's present weights (True when the meta
        does not say which weights)."""
        made_from = self.meta.get("weights")
        return made_from is None or made_from == weights_digest(folder)


def embedding_frame(paths: Sequence[str], domains: Sequence[str], labels: Sequence[str],
                    preds: Sequence[str], xy: np.ndarray) -> pd.DataFrame:
    """The rows of a map, in the order of ``paths``."""
    xy = np.asarray(xy, dtype=float).reshape(len(paths), 2)
    frame = pd.DataFrame({"path": list(paths), "domain": list(domains), "label": list(labels),
                          "pred": list(preds), "x": xy[:, 0], "y": xy[:, 1]}, columns=COLUMNS)
    frame["correct"] = frame["label"] == frame["pred"]
    return frame


def save_embedding(folder: str | Path, frame: pd.DataFrame, meta: dict[str, Any]) -> Path:
    """Write ``embedding.csv`` and then ``embedding.json`` atomically (a crash in between leaves
    a map whose meta names other weights or another size: stale, never half a file)."""
    folder = Path(folder)
    out = io.StringIO()
    frame[COLUMNS].to_csv(out, index=False, float_format="%.6g", lineterminator="\n")
    atomic_write(folder / EMBEDDING, out.getvalue())
    atomic_write(folder / EMBEDDING_META,
                 json.dumps({**meta, "n_images": len(frame)}, indent=2, sort_keys=True) + "\n")
    return folder / EMBEDDING


def read_embedding(folder: str | Path) -> Optional[EmbeddingMap]:
    """A checkpoint's stored map (None when there is none); a malformed file is an FvError."""
    folder = Path(folder)
    path = folder / EMBEDDING
    if not path.is_file():
        return None
    try:
        frame = pd.read_csv(path, dtype={"path": str, "domain": str, "label": str,
                                         "pred": str}, keep_default_na=False)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise FvError(f"malformed {EMBEDDING} ({exc})", source=str(folder)) from None
    if list(frame.columns) != COLUMNS:
        raise FvError(f"{EMBEDDING} columns are {', '.join(map(str, frame.columns))}; expected "
                      f"{', '.join(COLUMNS)}", source=str(folder))
    try:
        xy = frame[["x", "y"]].to_numpy(dtype=float)
    except ValueError:
        raise FvError(f"{EMBEDDING}: x and y must be numbers", source=str(folder)) from None
    if not np.isfinite(xy).all():
        raise FvError(f"{EMBEDDING}: x and y must be finite numbers", source=str(folder))
    frame["correct"] = frame["label"] == frame["pred"]
    meta: dict[str, Any] = {}
    meta_path = folder / EMBEDDING_META
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            meta = {}
        if not isinstance(meta, dict) or meta.get("n_images", len(frame)) != len(frame):
            meta = {"weights": "unknown"}   # not the meta of this file: treat the map as stale
    return EmbeddingMap(frame, meta)


def selected_rows(frame: pd.DataFrame, points: Sequence[dict]) -> pd.DataFrame:
    """The rows of a map a chart selection picked: by each point's ``customdata`` (the row's
    path), else by its (x, y)."""
    paths, coords = set(), set()
    for point in points or ():
        custom = point.get("customdata")
        if isinstance(custom, (list, tuple)) and custom:
            custom = custom[0]
        if isinstance(custom, str):
            paths.add(custom)
        elif point.get("x") is not None and point.get("y") is not None:
            coords.add((round(float(point["x"]), 4), round(float(point["y"]), 4)))
    keep = frame["path"].isin(paths).to_numpy().copy()
    if coords:
        keep |= np.array([(round(x, 4), round(y, 4)) in coords
                          for x, y in zip(frame["x"], frame["y"], strict=True)], dtype=bool)
    return frame[keep].reset_index(drop=True)

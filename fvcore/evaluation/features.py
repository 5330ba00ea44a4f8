"""The embedding map's computation: a model's penultimate features (the input of its head, as
``--finetune head`` caches them) on its test images, projected to 2-D by UMAP (umap-learn),
t-SNE or PCA (scikit-learn), and stored beside the checkpoint (:mod:`fvcore.evaluation.embedding`).
The test images are those of ``predictions.csv``, found under the data roots, or labelled folders
(``DIR/test``) named as ``fvcore evaluate`` names them."""
from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Sequence

import numpy as np

from fvcore.datasets.folders import labelled_samples, resolve_image
from fvcore.errors import FvError
from fvcore.evaluation.embedding import (
    EmbeddingMap,
    embedding_frame,
    save_embedding,
    weights_digest,
)
from fvcore.evaluation.evaluate import _batches
from fvcore.evaluation.predictions import read_predictions
from fvcore.models.registry import get_submodule

if TYPE_CHECKING:
    from fvcore.inference.classifier import Classifier

METHODS = ("auto", "umap", "tsne", "pca")
Progress = Optional[Callable[[int, int], None]]


def head_inputs(classifier: Classifier, samples: Sequence[tuple[Path, int]], *,
                batch_size: int = 32, progress: Progress = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """The penultimate features (N x D, the input of the head ``ArchSpec.head_prefix``) and the
    predicted class indices of every sample, in one forward pass per batch."""
    import torch
    model = classifier.model
    head = get_submodule(model, classifier.spec.head_prefix)
    feats: list[np.ndarray] = []
    preds: list[np.ndarray] = []
    with classifier.lock:   # the hook lives on the shared module, as Grad-CAM's do
        hook = head.register_forward_pre_hook(
            lambda m, args: feats.append(args[0].detach().float().flatten(1).cpu().numpy()))
        try:
            with torch.no_grad():
                for batch in _batches(classifier, samples, batch_size, progress):
                    preds.append(model(batch).argmax(1).cpu().numpy())
        finally:
            hook.remove()
    if not feats:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return np.concatenate(feats), np.concatenate(preds)


def resolve_method(method: str = "auto") -> str:
    """``auto``: UMAP when umap-learn is installed, else t-SNE."""
    if method not in METHODS:
        raise FvError(f"unknown projection {method!r}; choose one of {', '.join(METHODS)}")
    if method == "auto":
        return "umap" if importlib.util.find_spec("umap") else "tsne"
    return method


def project(features: np.ndarray, method: str = "auto", *, seed: int = 0) -> np.ndarray:
    """N x D features -> N x 2 positions (standardised features; fixed seed). Fewer than 6 images
    are placed by PCA whatever ``method`` says (UMAP and t-SNE need neighbours)."""
    method = resolve_method(method)
    x = np.asarray(features, dtype=np.float64)
    n = len(x)
    if n == 0:
        return np.zeros((0, 2))
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    if n < 6 or method == "pca":
        from sklearn.decomposition import PCA
        k = min(2, n, x.shape[1])
        out = np.zeros((n, 2))
        if k and n > 1:
            out[:, :k] = PCA(k, random_state=seed).fit_transform(x)
        return out
    if x.shape[1] > 50 and n > 50:   # the usual PCA step first: faster, less noise
        from sklearn.decomposition import PCA
        x = PCA(50, random_state=seed).fit_transform(x)
    if method == "umap":
        import umap
        return umap.UMAP(n_neighbors=min(15, n - 1), random_state=seed,
                         n_jobs=1).fit_transform(x).astype(float)
    from sklearn.manifold import TSNE
    return TSNE(2, perplexity=min(30.0, (n - 1) / 3), init="pca",
                random_state=seed).fit_transform(x)


def folder_samples(classes: Sequence[str], folders: Sequence[str | Path], *,
                   prefixed: bool = False) -> tuple[list[tuple[Path, int]], list[str], list[str]]:
    """Labelled folders (``DIR/test``) as (samples, paths, domains), named as
    :func:`fvcore.evaluation.evaluate.predict_folders` names them in ``predictions.csv``."""
    folders = [Path(f) for f in folders]
    prefixed = prefixed or len(folders) > 1
    samples, paths, domains = [], [], []
    for folder in folders:
        root = folder.parent
        name = Path(os.path.abspath(folder)).parent.name
        for path, label in labelled_samples(folder, classes):
            rel = path.relative_to(root).as_posix()
            samples.append((path, label))
            paths.append(f"{name}/{rel}" if prefixed else rel)
            domains.append(name)
    return samples, paths, domains


def stored_samples(folder: str | Path, classifier: Classifier, roots: Sequence[Path]
                   ) -> tuple[list[tuple[Path, int]], list[str], list[str], int]:
    """The test images of the checkpoint's ``predictions.csv`` found under ``roots``: (samples,
    paths, domains, how many were not found)."""
    preds = read_predictions(folder, classifier.classes)
    if preds is None:
        raise FvError("no predictions.csv: pass the test folders (--data DIR/test) or evaluate "
                      "the checkpoint first", source=str(folder))
    samples, paths, domains = [], [], []
    for path, label, domain in zip(preds.paths, preds.labels, preds.domains, strict=True):
        found = resolve_image(path, classifier.card.dataset, roots)
        if found is not None:
            samples.append((found, int(label)))
            paths.append(path)
            domains.append(domain)
    if not samples and preds.paths:
        raise FvError(f"none of the {len(preds.paths)} test images of predictions.csv was found "
                      f"under {', '.join(map(str, roots))}: set FVCORE_DATA to the folder "
                      f"holding {classifier.card.dataset}/, or pass --data DIR/test",
                      source=str(folder))
    return samples, paths, domains, len(preds.paths) - len(samples)


def embed(classifier: Classifier, folder: str | Path, *, roots: Sequence[Path] = (),
          data: Sequence[str | Path] = (), method: str = "auto",
          progress: Progress = None) -> tuple[EmbeddingMap, int]:
    """Compute and store the checkpoint's map over its test images (``data`` folders, else
    ``predictions.csv``'s images under ``roots``): (the map, images not found)."""
    start = time.perf_counter()
    method = resolve_method(method)
    if data:
        sources = classifier.card.splits.get("sources")
        samples, paths, domains = folder_samples(
            classifier.classes, data, prefixed=isinstance(sources, dict) and len(sources) > 1)
        missing = 0
    else:
        samples, paths, domains, missing = stored_samples(folder, classifier, roots)
    if not samples:
        raise FvError("no test images to map", source=str(folder))
    feats, preds = head_inputs(classifier, samples, progress=progress)
    xy = project(feats, method)
    classes = classifier.classes
    frame = embedding_frame(paths, domains, [classes[label] for _, label in samples],
                            [classes[int(i)] for i in preds], xy)
    meta = {"method": method if len(samples) >= 6 else "pca", "weights": weights_digest(folder),
            "features": f"input of {classifier.spec.head_prefix} ({feats.shape[1]} values)",
            "seconds": round(time.perf_counter() - start, 1)}
    save_embedding(folder, frame, meta)
    return EmbeddingMap(frame, meta), missing

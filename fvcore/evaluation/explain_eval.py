"""Run an explanation-quality evaluation: over a fixed sample of labelled test images, every CAM
method (and a random heatmap) scored by :mod:`fvcore.explain.quality`, and every CAM method put
through the randomisation check of :mod:`fvcore.explain.sanity`; saved beside the checkpoint
(:mod:`fvcore.evaluation.explanations`) after each method, so an interrupted run resumes where it
stopped: a method already stored for the same weights, images and seed is not computed again.

Each image is explained for the class the model predicts, on the crop it sees. The random
heatmap, ROAD's imputation noise and the randomised weights are all seeded by ``seed``."""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Sequence

import numpy as np
import torch

from fvcore.errors import FvError
from fvcore.evaluation.explanations import (
    QUALITY,
    QUALITY_COLUMNS,
    RANDOM,
    SANITY,
    SANITY_COLUMNS,
    ExplainQuality,
    explain_key,
    keyed,
    method_means,
    read_rows,
    sanity_points,
    write_rows,
)
from fvcore.evaluation.robustness import data_key, pick_samples
from fvcore.explain.cam import CAM_METHODS, compute_cam
from fvcore.explain.quality import PERCENTILES, STEPS, random_heatmap, score_heatmap
from fvcore.explain.sanity import plan_stages, randomisation_check
from fvcore.inference.images import load_image

if TYPE_CHECKING:
    from fvcore.inference.classifier import Classifier

LIMIT = 50
"""Test images scored by default: spread evenly over the sorted list, so every class has some."""


def check_methods(methods: Optional[Sequence[str]]) -> list[str]:
    """The CAM methods to evaluate (None: every one), each checked against ``CAM_METHODS``."""
    names = [m.lower() for m in methods] if methods else list(CAM_METHODS)
    unknown = [m for m in names if m not in CAM_METHODS]
    if unknown:
        raise FvError(f"unknown CAM method {', '.join(unknown)}; choose from "
                      f"{', '.join(CAM_METHODS)}")
    return list(dict.fromkeys(names))


def _heatmap(classifier: Classifier, x: torch.Tensor, method: str, rng: np.random.Generator
             ) -> tuple[np.ndarray, int, float]:
    """(heatmap, explained class, ms) of one image: a CAM of the predicted class, or for
    ``random`` a random heatmap and the predicted class."""
    model = classifier.model
    if method == RANDOM:
        start = time.perf_counter()
        heatmap = random_heatmap(x.shape[-1], rng)
        ms = (time.perf_counter() - start) * 1000.0
        with torch.no_grad():
            return heatmap, int(model(x).argmax(1)), ms
    cam = compute_cam(model, classifier.cam_module(), x, target=None, method=method,
                      reshape=classifier.cam_reshape, temperature=classifier.card.temperature)
    return cam.heatmap, cam.target, cam.ms


def _quality_rows(classifier: Classifier, method: str, tensors: Sequence[torch.Tensor],
                  samples: Sequence, keys: dict, *, percentiles: Sequence[int], steps: int,
                  seed: int, tick: Callable[[int], None]) -> list[dict]:
    rows = []
    for i, (x, (path, label)) in enumerate(zip(tensors, samples, strict=True)):
        rng = np.random.default_rng([seed, i])
        with classifier.lock:
            heatmap, target, ms = _heatmap(classifier, x, method, rng)
            scores = score_heatmap(classifier.model, x, heatmap, target,
                                   temperature=classifier.card.temperature,
                                   percentiles=percentiles, steps=steps, seed=seed + i)
        rows.append({**keys, "method": method, "image": f"{Path(path).parent.name}/"
                     f"{Path(path).name}", "label": label, "target": target,
                     **{k: f"{getattr(scores, k):.6f}" for k in
                        ("road_morf", "road_lerf", "deletion", "insertion")},
                     "ms": f"{ms:.3f}"})
        tick(1)
    return rows


def _sanity_rows(classifier: Classifier, method: str, tensors: Sequence[torch.Tensor],
                 keys: dict, *, seed: int, tick: Callable[[int], None]) -> list[dict]:
    originals = []
    with classifier.lock:
        for x in tensors:
            cam = compute_cam(classifier.model, classifier.cam_module(), x, target=None,
                              method=method, reshape=classifier.cam_reshape,
                              temperature=classifier.card.temperature)
            originals.append((cam.target, cam.heatmap))
            tick(1)
        found = randomisation_check(
            classifier.model, classifier.cam_module, tensors, [t for t, _ in originals],
            [h for _, h in originals], method=method, reshape=classifier.cam_reshape,
            temperature=classifier.card.temperature, seed=seed, progress=tick)
    return [{**keys, "method": method, "stage": stage.index, "randomised": stage.randomised,
             "total": stage.total, "lowest": stage.lowest, "n_images": len(rhos),
             "spearman": f"{np.mean(rhos):.6f}", "spearman_std": f"{np.std(rhos):.6f}"}
            for stage, rhos in found]


def explain_eval(classifier: Classifier, folders: Sequence[str | Path], *,
                 methods: Optional[Sequence[str]] = None, limit: Optional[int] = LIMIT,
                 seed: int = 0, percentiles: Sequence[int] = PERCENTILES, steps: int = STEPS,
                 sanity: bool = True,
                 progress: Optional[Callable[[int, int], None]] = None) -> ExplainQuality:
    """Score every method of ``methods`` (default: all of ``CAM_METHODS``) and a random heatmap
    on ``limit`` test images of ``folders``, and run the randomisation check of each method
    (unless ``sanity`` is False), saving ``explain_quality.csv`` and ``explain_sanity.csv``
    beside the checkpoint after each method; what is stored for the same weights, images and
    seed is skipped. ``progress(done, total)`` counts heatmaps scored or compared."""
    if classifier.path is None:
        raise FvError("this classifier was not loaded from a folder; nothing to save to")
    names = check_methods(methods)
    classifier.cam_module()   # no Grad-CAM layer: one line before any work
    samples = pick_samples(folders, classifier.classes, limit)
    folder = classifier.path
    keys = {"model_key": explain_key(folder, classifier.card.temperature),
            "data_key": data_key(samples), "seed": str(seed)}
    key = (keys["model_key"], keys["data_key"], keys["seed"])
    quality = read_rows(folder, QUALITY, QUALITY_COLUMNS)
    checks = read_rows(folder, SANITY, SANITY_COLUMNS)
    todo_q = [m for m in [*names, RANDOM] if m not in {r["method"] for r in keyed(quality, key)}]
    todo_s = [m for m in names if sanity and m not in {r["method"] for r in keyed(checks, key)}]
    stages = len(plan_stages(classifier.model)) if todo_s else 0
    total = len(samples) * (len(todo_q) + len(todo_s) * (1 + stages))
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if progress:
            progress(done[0], total)

    tensors = ([classifier.preprocess([load_image(p)]) for p, _ in samples]
               if todo_q or todo_s else [])
    for method in todo_q:
        quality += _quality_rows(classifier, method, tensors, samples, keys,
                                 percentiles=percentiles, steps=steps, seed=seed, tick=tick)
        write_rows(folder, QUALITY, QUALITY_COLUMNS, quality)
    for method in todo_s:
        checks += _sanity_rows(classifier, method, tensors, keys, seed=seed, tick=tick)
        write_rows(folder, SANITY, SANITY_COLUMNS, checks)
    wanted = {*names, RANDOM}
    return ExplainQuality(
        classifier.name, *key[:2], seed,
        method_means([r for r in keyed(quality, key) if r["method"] in wanted]),
        sanity_points([r for r in keyed(checks, key) if r["method"] in names]),
        tuple(dict.fromkeys([*todo_q, *todo_s])))

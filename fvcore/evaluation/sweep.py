"""Run a corruption sweep: a checkpoint's accuracy and ECE on labelled test images clean and
under each corruption of :mod:`fvcore.evaluation.corruptions` at each severity, saved into
``robustness.csv`` (:mod:`fvcore.evaluation.robustness`) after every corruption, so an interrupted
sweep resumes where it stopped: a (corruption, severity) already stored for the same weights,
images and seed is not computed again.

Corruptions are applied, as in ImageNet-C, to the crop the model sees (after its resize and
centre crop), then normalised as usual; the clean accuracy is measured the same way.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Sequence

import numpy as np
from PIL import Image

from fvcore.errors import FvError
from fvcore.evaluation.corruptions import check_corruption, corrupt, corruption_names, seed_for
from fvcore.evaluation.metrics import calibration
from fvcore.evaluation.robustness import (
    CLEAN,
    Robustness,
    data_key,
    pick_samples,
    read_rows,
    sweep_row,
    weights_key,
    write_rows,
)
from fvcore.inference.images import load_image

if TYPE_CHECKING:
    from fvcore.inference.classifier import Classifier


def _score(classifier: Classifier, crops: Sequence[np.ndarray], labels: np.ndarray, *,
           batch_size: int) -> tuple[float, float]:
    import torch
    probs = [classifier.predict_tensor(torch.stack([classifier.preset.tensor(Image.fromarray(c))
                                                    for c in crops[i:i + batch_size]]),
                                       batch_size=batch_size)
             for i in range(0, len(crops), batch_size)]
    matrix = np.concatenate(probs)
    return float((matrix.argmax(1) == labels).mean()), calibration(matrix, labels)["ece"]


def sweep(classifier: Classifier, folders: Sequence[str | Path], *,
          corruptions: Optional[Sequence[str]] = None, severities: Sequence[int] = (1, 2, 3, 4, 5),
          limit: Optional[int] = None, seed: int = 0, batch_size: int = 32,
          progress: Optional[Callable[[int, int], None]] = None) -> Robustness:
    """Measure ``classifier`` (loaded from a folder) on the images of ``folders`` clean and under
    each corruption at each severity, saving ``robustness.csv`` after every corruption; the
    (corruption, severity) pairs already stored for the same weights, images and seed are
    skipped. ``progress(done, total)`` is called with image counts."""
    if classifier.path is None:
        raise FvError("this classifier was not loaded from a folder; nothing to save to")
    names = list(corruptions) if corruptions else corruption_names()
    for name in names:
        for severity in severities:
            check_corruption(name, severity)
    samples = pick_samples(folders, classifier.classes, limit)
    labels = np.array([label for _, label in samples], dtype=np.int64)
    mkey = weights_key(classifier.path, classifier.card.temperature)
    dkey = data_key(samples)
    stored = read_rows(classifier.path)
    done = {(r["corruption"], int(r["severity"])) for r in stored
            if (r["model_key"], r["data_key"], r["seed"]) == (mkey, dkey, str(seed))}
    plan = [(CLEAN, [0])] + [(n, list(severities)) for n in names]
    todo = [(n, [s for s in sev if (n, s) not in done]) for n, sev in plan]
    todo = [(n, sev) for n, sev in todo if sev]
    total, count = sum(len(s) for _, s in todo) * len(samples), 0
    crops = [np.asarray(classifier.preset.crop(load_image(p))) for p, _ in samples] if todo else []
    for name, sev in todo:
        for severity in sev:
            images = crops if name == CLEAN else [
                corrupt(c, name, severity, rng=seed_for(name, severity, seed, i))
                for i, c in enumerate(crops)]
            accuracy, ece = _score(classifier, images, labels, batch_size=batch_size)
            stored.append({"model_key": mkey, "data_key": dkey, "seed": seed, "corruption": name,
                           "severity": severity, "n_images": len(samples),
                           "accuracy": f"{accuracy:.6f}", "ece": f"{ece:.6f}"})
            count += len(samples)
            if progress:
                progress(count, total)
        write_rows(classifier.path, stored)
    mine = [sweep_row(r) for r in stored
            if (r["model_key"], r["data_key"], str(r["seed"])) == (mkey, dkey, str(seed))
            and (r["corruption"] == CLEAN or
                 (r["corruption"] in names and int(r["severity"]) in severities))]
    return Robustness(classifier.name, mkey, dkey, next(r for r in mine if r.corruption == CLEAN),
                      tuple(r for r in mine if r.corruption != CLEAN),
                      tuple(dict.fromkeys(n for n, _ in todo if n != CLEAN)))

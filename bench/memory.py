"""Resident memory of a fresh process holding every given checkpoint, as the app holds them.

    python bench/memory.py CHECKPOINT... [--threads N] [--backend onnx|pytorch]

Prints JSON: RSS before loading, after loading, after one predict-all on one image, after one on
a batch of 16 and after one Grad-CAM per model (which builds each torch module, skipped by a load
that finds a cached export), the float32 bytes of the weights, and each model's load time
(exports cached by an earlier load are reused, so this also shows what a warm cache costs).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    import psutil
    return psutil.Process().memory_info().rss / 2**20


def sample_images(n: int) -> list[bytes]:
    """``n`` JPEG files made from scikit-image's bundled photos (decoded per call, like uploads)."""
    from PIL import Image
    from skimage import data
    photos = [data.chelsea(), data.coffee(), data.astronaut()]
    out = []
    for i in range(n):
        buffer = io.BytesIO()
        Image.fromarray(photos[i % len(photos)]).save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def weight_bytes(model) -> int:
    """Bytes of the model's floating-point parameters and buffers at float32."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * 4 for t in tensors if t.is_floating_point())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--backend", default="onnx")
    args = parser.parse_args()
    import torch

    from fvcore.inference.loading import load_checkpoint
    from fvcore.inference.predict import predict_all
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["FVCORE_THREADS"] = str(args.threads)
    images = sample_images(16)
    before = rss_mb()
    classifiers, load_s = [], {}
    for path in args.checkpoints:
        start = time.perf_counter()
        clf = load_checkpoint(path, name=Path(path).name, backend=args.backend)
        load_s[clf.name] = time.perf_counter() - start
        classifiers.append(clf)
    loaded = rss_mb()
    predict_all(classifiers, images[:1])
    one = rss_mb()
    predict_all(classifiers, images)
    sixteen = rss_mb()
    for clf in classifiers:  # Grad-CAM needs each torch module too
        clf.explain(images[0])
    cams = rss_mb()
    print(json.dumps({"rss_start_mb": before, "rss_loaded_mb": loaded, "rss_1_image_mb": one,
                      "rss_16_images_mb": sixteen, "rss_after_cams_mb": cams, "load_s": load_s,
                      "backends": {c.name: c.backend for c in classifiers},
                      "weights_f32_mb": sum(weight_bytes(c.model) for c in classifiers) / 2**20}))


if __name__ == "__main__":
    main()

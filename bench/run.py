"""Benchmark every model: eager PyTorch vs the ONNX Runtime fast path vs the FLOP floor,
predict-all latency, Grad-CAM cost, cold start of the app and resident memory.

    python bench/run.py [--checkpoints checkpoints] [--dataset NAME] [--archs all|NAME,...]
                        [--threads N]
    python -m fvcore bench ...

Shipped checkpoints under ``--checkpoints`` are used when present (those of ``--dataset``, by
default the dataset with the most checkpoints); ``--archs`` names
architectures to include, and any without a shipped checkpoint is built with random weights at
its default input size (34 classes) in a temporary folder. Writes a markdown table between
``<!-- bench:start -->`` and ``<!-- bench:end -->`` in the README and a JSON copy in
``bench/results.json``. Ratios are what matter: all numbers come from one run on one machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402
from report import markdown  # noqa: E402

from fvcore.checkpoints.card import ModelCard  # noqa: E402
from fvcore.checkpoints.catalog import scan  # noqa: E402
from fvcore.checkpoints.folder import save_checkpoint  # noqa: E402
from fvcore.errors import FvError  # noqa: E402
from fvcore.inference.classifier import Classifier  # noqa: E402
from fvcore.inference.loading import load_checkpoint  # noqa: E402
from fvcore.models.cost import count_flops  # noqa: E402
from fvcore.models.registry import create_model, get_spec, list_archs  # noqa: E402


def matmul_rate(*, n: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of the best of ``repeats`` float32 n x n matrix products (2 n^3 FLOPs each)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = interleaved({"mm": lambda: torch.mm(a, b)}, repeats)["mm"]["best"]
    return 2 * n ** 3 / (best / 1000.0)


def interleaved(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, dict]:
    """Time several functions in alternating rounds (so a busy neighbour slows all alike):
    name -> {"best": ms, "median": ms}. One untimed warm-up call each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1000.0)
    return {name: {"best": min(v), "median": statistics.median(v)} for name, v in times.items()}


def fresh_checkpoint(arch: str, folder: Path) -> Path:
    """A random-init checkpoint of ``arch`` at its default size with 34 classes."""
    spec = get_spec(arch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, init = create_model(arch, 34)
    card = ModelCard(arch=arch, classes=[f"class_{i:02d}" for i in range(34)],
                     image_size=spec.input_size, mean=list(spec.mean), std=list(spec.std),
                     dataset="bench", init=init)
    return save_checkpoint(folder / "zoo" / "bench" / arch, model, card)


def zoo_folder(chosen: Sequence[tuple[Path, str]], tmp: Path) -> Path:
    """One checkpoints folder holding every chosen model (shipped ones copied, weights and card
    only), for the app's cold start "with the whole zoo present"."""
    import shutil
    zoo = tmp / "zoo"
    for path, source in chosen:
        if source == "shipped":
            target = zoo / path.parent.name / path.name
            target.mkdir(parents=True, exist_ok=True)
            for name in ("card.json", "model.safetensors", "history.csv", "predictions.csv"):
                if (path / name).is_file():
                    shutil.copy2(path / name, target / name)
    return zoo


def shipped_models(checkpoints: Path, dataset: Optional[str] = None) -> dict[str, Path]:
    """Architecture -> checkpoint folder of the shipped models of one dataset: ``dataset``, or
    the one with the most checkpoints (the flagship zoo, not whichever folder scans first)."""
    by_dataset: dict[str, dict[str, Path]] = {}
    for entry in sorted(scan(checkpoints).entries, key=lambda e: str(e.path)):
        by_dataset.setdefault(entry.card.dataset, {}).setdefault(entry.card.arch, entry.path)
    if dataset is not None and dataset not in by_dataset:
        raise FvError(f"no shipped checkpoints of dataset {dataset!r} under {checkpoints}; "
                      f"there are: {', '.join(sorted(by_dataset)) or 'none'}")
    if not by_dataset:
        return {}
    return by_dataset[dataset or max(by_dataset, key=lambda d: (len(by_dataset[d]), d))]


def choose_models(checkpoints: Path, archs: Optional[str], tmp: Path,
                  dataset: Optional[str] = None) -> list[tuple[Path, str]]:
    """(checkpoint folder, source) per model: shipped ones first, fresh builds for the rest."""
    shipped = shipped_models(checkpoints, dataset)
    if archs is None and shipped:
        names = sorted(shipped)
    elif archs in (None, "all"):
        names = list_archs()
    else:
        names = [a.strip() for a in archs.split(",") if a.strip()]
        for name in names:
            get_spec(name)  # an unknown name lists the known ones
    return [(shipped[n], "shipped") if n in shipped else (fresh_checkpoint(n, tmp), "random init")
            for n in names]


def stock_cam_ms(clf: Classifier, x: torch.Tensor, rounds: int) -> float:
    """grad-cam as-is (every weight gradient computed), best of ``rounds``, for comparison."""
    from pytorch_grad_cam import GradCAM

    from fvcore.models.registry import get_submodule
    layer = get_submodule(clf.model, clf.cam_layer)
    clf.model.requires_grad_(True)
    try:
        with GradCAM(model=clf.model, target_layers=[layer], reshape_transform=clf.cam_reshape) \
                as cam:
            ms = interleaved({"cam": lambda: cam(input_tensor=x, targets=None)}, rounds)
            cam.outputs = None
    finally:
        clf.model.requires_grad_(False)
        clf.model.zero_grad(set_to_none=True)
    return ms["cam"]["best"]


def model_row(clf: Classifier, rate: float, *, rounds: int, stock: bool) -> dict:
    """Per-model timings at batch 1 on a real photo: eager, fast path and Grad-CAM interleaved."""
    from memory import sample_images

    from fvcore.explain.cam import compute_cam
    from fvcore.inference.images import load_image
    from fvcore.models.registry import get_submodule
    x = clf.preprocess([load_image(sample_images(1)[0])])
    flops = count_flops(clf.model, clf.card.image_size)
    layer = get_submodule(clf.model, clf.cam_layer)
    t = interleaved({"eager": lambda: clf.torch_runner(x), "fast": lambda: clf.runner(x),
                     "cam": lambda: compute_cam(clf.model, layer, x, target=None,
                                                reshape=clf.cam_reshape)}, rounds)
    eager, fast, cam = (t[k]["best"] for k in ("eager", "fast", "cam"))
    floor = flops / rate * 1000.0
    return {"model": clf.name, "arch": clf.card.arch, "backend": clf.backend,
            "image_size": clf.card.image_size, "gflop": flops / 1e9, "eager_ms": eager,
            "fast_ms": fast, "speedup": eager / fast, "floor_ms": floor,
            "fast_over_floor": fast / floor, "cam_ms": cam, "cam_over_eager": cam / eager,
            "median_ms": {k: v["median"] for k, v in t.items()},
            "stock_cam_ms": stock_cam_ms(clf, x, 3) if stock else None}


def predict_all_times(classifiers: Sequence[Classifier], images: list[bytes], *,
                      rounds: int, eager: bool) -> dict[str, dict]:
    """fvcore.inference.predict.predict_all (decode, preprocess once per preset, one batch per
    model)
    on the fast path and, with ``eager``, with every runner switched to PyTorch."""
    from fvcore.inference.predict import predict_all

    eager_twins = [c.with_runner(c.torch_runner) for c in classifiers]

    def on_pytorch() -> None:
        predict_all(eager_twins, images)

    fns = {"fast": lambda: predict_all(classifiers, images)}
    if eager:
        fns["eager"] = on_pytorch
    return interleaved(fns, rounds)


def memory(paths: Sequence[Path], threads: int) -> dict:
    """RSS of a fresh process holding all models (bench/memory.py)."""
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "memory.py"), *map(str, paths),
                          "--threads", str(threads)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cold_start_row(app: Path, checkpoints: Path) -> dict:
    """bench/coldstart.py against the app, or a note when there is no app yet."""
    if not app.is_file():
        return {"note": f"skipped: {app.name} does not exist yet"}
    from coldstart import cold_start
    try:
        return cold_start(app, env={"FVCORE_CHECKPOINTS": str(checkpoints)})
    except (OSError, RuntimeError, TimeoutError) as exc:
        return {"note": f"failed: {exc}"}


def environment(threads: int, rate: float, load: float) -> dict:
    """The machine and libraries, and the load average when the run started."""
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    import onnxruntime
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": threads,
            "load_average": load, "matmul_gflops": rate / 1e9,
            "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M")}


def run(args: argparse.Namespace) -> dict:
    """Measure everything; return the results dict."""
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    os.environ["FVCORE_THREADS"] = str(threads)
    load = os.getloadavg()[0]
    from memory import sample_images
    with tempfile.TemporaryDirectory(prefix="fvcore-bench-") as tmp:
        chosen = choose_models(Path(args.checkpoints), args.archs, Path(tmp), args.dataset)
        classifiers, first_load = [], {}
        for path, source in chosen:
            start = time.perf_counter()
            clf = load_checkpoint(path, name=path.name)
            first_load[clf.name] = time.perf_counter() - start
            clf.source = source
            classifiers.append(clf)
        rate = matmul_rate()
        rows = []
        for clf in classifiers:
            print(f"measuring {clf.name} ...", file=sys.stderr, flush=True)
            rows.append({**model_row(clf, rate, rounds=args.repeats,
                                     stock=not args.no_stock_cam), "source": clf.source,
                         "first_load_s": first_load[clf.name]})
        print("measuring predict-all ...", file=sys.stderr, flush=True)
        images = sample_images(16)
        one = predict_all_times(classifiers, images[:1], rounds=args.repeats, eager=True)
        many = predict_all_times(classifiers, images, rounds=max(2, args.repeats // 3), eager=False)
        rate = max(rate, matmul_rate())  # the quietest moment of the run sets the floor
        for row in rows:
            row["floor_ms"] = row["gflop"] * 1e9 / rate * 1000.0
            row["fast_over_floor"] = row["fast_ms"] / row["floor_ms"]
        floor = sum(r["floor_ms"] for r in rows)
        fast1, eager1, fast16 = one["fast"]["best"], one["eager"]["best"], many["fast"]["best"]
        print("measuring memory and cold start ...", file=sys.stderr, flush=True)
        mem = memory([p for p, _ in chosen], threads)
        cold = cold_start_row(Path(args.app), zoo_folder(chosen, Path(tmp)))
    return {"environment": {**environment(threads, rate, load), "rounds": args.repeats},
            "models": rows,
            "predict_all": {"fast_1_ms": fast1, "eager_1_ms": eager1, "fast_16_ms": fast16,
                            "floor_1_ms": floor, "fast_1_over_floor": fast1 / floor,
                            "fast_16_over_floor": fast16 / (16 * floor)},
            "memory": mem, "cold_start": cold}


def get_parser() -> argparse.ArgumentParser:
    """Arguments of bench/run.py (also ``python -m fvcore bench``)."""
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoints", default=str(ROOT / "checkpoints"))
    parser.add_argument("--archs", help="all, or comma-separated names (default: the shipped ones)")
    parser.add_argument("--dataset", help="the shipped checkpoints of this dataset (default: the "
                        "dataset with the most checkpoints)")
    parser.add_argument("--threads", type=int, help="threads for PyTorch and ONNX Runtime")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--no-stock-cam", action="store_true",
                        help="skip timing grad-cam as-is (with every weight gradient)")
    parser.add_argument("--app", default=str(ROOT / "app.py"))
    parser.add_argument("--readme", default=str(ROOT / "README.md"))
    parser.add_argument("--json", default=str(ROOT / "bench" / "results.json"))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark, print the table, update the README and the JSON copy."""
    args = get_parser().parse_args(argv)
    return bench(args)


def bench(args: argparse.Namespace) -> int:
    from fvcore.training.zoo import update_readme
    try:
        results = run(args)
    except FvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    table = markdown(results)
    print(table)
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.readme:
        update_readme(args.readme, "bench", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

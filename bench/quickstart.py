"""Time from an uploaded zip to a first usable model with the Train page's Quick preset: the zip
stored as a dataset (the Datasets page's safe extraction), its health report, the job queued and
run by the background worker to a finished checkpoint -- the same calls the pages make.

    python bench/quickstart.py [--data ../shared/datasets/fruits-360-mini] [--readme README.md]

Writes ``bench/quickstart.json`` and, with ``--readme``, the block between
``<!-- quickstart:start -->`` and ``<!-- quickstart:end -->``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from fvcore.checkpoints.card import ModelCard  # noqa: E402 - needs the path above
from fvcore.datasets.health import dataset_health  # noqa: E402
from fvcore.datasets.store import add_from_zip  # noqa: E402
from fvcore.datasets.zipdata import zip_bytes  # noqa: E402
from fvcore.training import jobs  # noqa: E402
from fvcore.training.plans import estimate, plan_job  # noqa: E402
from fvcore.training.worker import ensure_worker  # noqa: E402
from fvcore.training.zoo import update_readme  # noqa: E402


def run(data: Path, arch: str, timeout: float) -> dict:
    """The timed steps, in seconds, and the finished model's test accuracy."""
    files = {str(p.relative_to(data)): p.read_bytes() for p in sorted(data.rglob("*"))
             if p.is_file() and p.parent != data}
    archive = zip_bytes(files)
    work = Path(tempfile.mkdtemp(prefix="fvcore-quickstart-"))
    db = work / "runs.db"
    times: dict[str, float] = {}
    start = time.perf_counter()
    name = f"{data.name}-upload"   # a dataset's name is unique across the data roots
    added = add_from_zip(archive, name, root=work / "data")
    times["store_zip_s"] = time.perf_counter() - start
    begin = time.perf_counter()
    report = dataset_health(added.path)
    times["health_s"] = time.perf_counter() - begin
    job = plan_job("quick", arch, added.path, work / "checkpoints", dataset=name)
    guess = estimate(job, report.split_sizes, len(report.classes))
    begin = time.perf_counter()
    queued = jobs.submit(db, dataset=job.dataset, arch=job.arch, preset=job.preset, out=job.out,
                         argv=job.argv, epochs=job.epochs)
    ensure_worker(db)
    while jobs.get_job(db, queued.id).active:
        if time.perf_counter() - begin > timeout:
            jobs.cancel(db, queued.id)
            raise SystemExit(f"the job did not finish within {timeout:.0f} s")
        time.sleep(0.5)
    times["train_s"] = time.perf_counter() - begin
    times["total_s"] = time.perf_counter() - start
    ended = jobs.get_job(db, queued.id)
    if ended.status != "finished":
        raise SystemExit(f"the job {ended.status}: {ended.message}")
    card = ModelCard.read(job.out)
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "dataset": data.name, "arch": arch,
            "cores": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
            "load_average": os.getloadavg()[0], "images": report.n_images,
            "classes": len(report.classes), "zip_mb": len(archive) / 2**20,
            "estimate_s": guess.seconds, **times,
            "test_accuracy": card.metrics["accuracy"], "best_epoch": card.best_epoch}


def markdown(r: dict) -> str:
    """The README block."""
    return (f"Measured by `python bench/quickstart.py` on {r['date']} ({r['cpu']}, {r['cores']} "
            f"cores, load average {r['load_average']:.1f} at the start): {r['dataset']} "
            f"({r['images']} images, {r['classes']} classes, a {r['zip_mb']:.0f} MB zip) from "
            f"upload to a finished Quick model in **{r['total_s']:.0f} s** -- storing the zip "
            f"{r['store_zip_s']:.1f} s, health report {r['health_s']:.1f} s, the background job "
            f"(worker start, ImageNet Lite0 features of every image, the head's epochs, test "
            f"evaluation) {r['train_s']:.0f} s against an estimate of {r['estimate_s']:.0f} s. "
            f"Test accuracy {r['test_accuracy']:.1%} (best epoch {r['best_epoch']}).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=ROOT.parent / "shared" / "datasets" / "fruits-360-mini")
    parser.add_argument("--arch", default="efficientnet_lite0")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--readme", type=Path)
    args = parser.parse_args()
    result = run(args.data, args.arch, args.timeout)
    (ROOT / "bench" / "quickstart.json").write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(result))
    if args.readme:
        update_readme(args.readme, "quickstart", markdown(result))


if __name__ == "__main__":
    main()

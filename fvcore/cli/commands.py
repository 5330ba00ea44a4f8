"""The subcommands of ``python -m fvcore``: one small ``cmd_*`` function each, calling the
library; argparse stays in :mod:`fvcore.cli.parser`."""
from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import sys
import time
from pathlib import Path

from fvcore import settings
from fvcore.checkpoints.card import ModelCard
from fvcore.checkpoints.importer import Preprocessing, classes_from_folder, read_classes
from fvcore.datasets.combine import load_datasets
from fvcore.errors import FvError
from fvcore.evaluation.calibration import summary
from fvcore.evaluation.embedding import EMBEDDING, read_embedding
from fvcore.evaluation.evaluate import (
    calibrate_and_test,
    compare,
    evaluate_predictions,
    metrics_by_split,
    predict_folders,
    read_predictions,
    save_evaluation,
)
from fvcore.evaluation.features import embed
from fvcore.explain.cam import overlay
from fvcore.inference.images import load_image
from fvcore.inference.importing import import_state_dict
from fvcore.inference.loading import discover, load_checkpoint
from fvcore.inference.predict import predict_all
from fvcore.models.cost import count_flops, count_params, human
from fvcore.models.registry import create_model, get_spec, list_archs
from fvcore.training.recipe import TrainConfig
from fvcore.training.runs import list_runs
from fvcore.training.trainer import train
from fvcore.training.zoo import results_table, train_zoo, update_readme


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, sort_keys=False))


def cmd_archs(args: argparse.Namespace) -> int:
    """One line per architecture: name, params, FLOPs at its input size, ImageNet sources."""
    rows = []
    for name in list_archs():
        spec = get_spec(name)
        model, _ = create_model(name, args.num_classes)
        sources = ", ".join(f"{s.label}{' (offline)' if s.offline else ''}" for s in spec.imagenet)
        rows.append({"name": name, "params": count_params(model), "input_size": spec.input_size,
                     "flops": count_flops(model, spec.input_size), "cam_layer": spec.cam_layer,
                     "imagenet": sources or "none (from scratch only)"})
    if args.json:
        _print_json(rows)
        return 0
    for r in rows:
        print(f"{r['name']:<20} {human(r['params']):>8} params  {human(r['flops'], 'FLOP'):>10} "
              f"@{r['input_size']}px  imagenet: {r['imagenet']}")
    return 0


def _one_or_many(folders: list[str]) -> str | list[str]:
    """A repeated ``--data``: one folder as a string (as older cards and configs have it)."""
    return folders[0] if len(folders) == 1 else folders


def _data_args(folders: list[str]) -> list[str]:
    """``--data F`` for every folder, for a recorded command line."""
    return [arg for folder in folders for arg in ("--data", str(folder))]


def _accuracy_line(what: str, m: dict) -> str:
    low, high = m["accuracy_ci95"]
    return (f"{what}: accuracy {m['accuracy']:.4f} (95% CI {low:.4f}-{high:.4f}) "
            f"on {m['n_images']} images, loss {m['loss']:.4f}")


def cmd_train(args: argparse.Namespace) -> int:
    """Train one architecture on an image-folder dataset, or on several combined."""
    fields = {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__
              and v is not None}
    command = shlex.join(["python", "-m", "fvcore", *getattr(args, "argv", sys.argv[1:])])
    card = train(TrainConfig(**{**fields, "data": _one_or_many(args.data), "command": command}))
    if card is not None and card.metrics:
        domains = card.metrics_by_split if len(card.metrics_by_split) > 1 else {}
        for domain, m in domains.items():
            print(f"{args.out}: test accuracy {m['accuracy']:.4f} on {m['n_images']} images "
                  f"of {domain}")
        print(f"{args.out}: test accuracy {card.metrics['accuracy']:.4f} "
              f"on {card.metrics['n_images']} images")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a checkpoint on labelled folders of class sub-folders, one test domain each."""
    classifier = load_checkpoint(args.checkpoint)
    sources = classifier.card.splits.get("sources")
    preds = predict_folders(classifier, args.data,
                            prefixed=isinstance(sources, dict) and len(sources) > 1)
    full = evaluate_predictions(preds, classifier.card.groups)
    if args.save:
        save_evaluation(classifier, preds, full, dataset=classifier.card.dataset)
        by_split = classifier.card.metrics_by_split   # computed once, as saved
    else:
        by_split = metrics_by_split(preds, classifier.card.groups)
    if args.json:
        _print_json({**full, "metrics_by_split": by_split})
        return 0
    if len(by_split) > 1:
        for domain, m in by_split.items():
            print(_accuracy_line(f"{classifier.name} on {domain}", m))
    print(_accuracy_line(classifier.name + (" on all" if len(by_split) > 1 else ""), full))
    print(f"macro F1 {full['macro_f1']:.4f}  weighted F1 {full['weighted_f1']:.4f}  "
          f"ECE {full['ece']:.4f}  top-3 {full['top3_accuracy']:.4f}"
          + (f"  group accuracy {full['group_accuracy']:.4f}" if "group_accuracy" in full else ""))
    print(f"{'class':<24}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}")
    for name, r in full["per_class"].items():
        print(f"{name:<24}{r['precision']:>10.3f}{r['recall']:>10.3f}{r['f1']:>10.3f}"
              f"{int(r['support']):>9}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit each checkpoint's temperature on its own validation split (temperature scaling), then
    re-test it: card and predictions.csv are rewritten, the weights are not touched."""
    for folder in args.checkpoints:
        classifier = load_checkpoint(folder)
        recipe = classifier.card.recipe
        data = load_datasets(args.data, name=classifier.card.dataset,
                             val_fraction=float(recipe.get("val_fraction", 0.15)),
                             seed=int(recipe.get("seed", 0)))
        expected = recipe.get("dataset_fingerprint")
        if data.classes != classifier.classes or (expected and data.fingerprint() != expected):
            raise FvError(f"not the dataset {classifier.name} was trained on (classes or "
                          "dataset fingerprint differ)", source=", ".join(args.data))
        ece_before = classifier.card.metrics.get("ece")
        fit, full = calibrate_and_test(classifier, data, command=shlex.join(
            ["python", "-m", "fvcore", "calibrate", str(folder), *_data_args(args.data)]))
        print(f"{folder}: {summary(fit)}; test ECE "
              + (f"{ece_before:.3f} -> " if ece_before is not None else "")
              + f"{full['ece']:.3f}, test loss {full['loss']:.4f}, accuracy "
              f"{full['accuracy']:.4f} (unchanged by design)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """McNemar tests and a soft-voting ensemble over checkpoints' stored predictions."""
    stored = {}
    for folder in args.checkpoints:
        card = ModelCard.read(folder)
        preds = read_predictions(folder, card.classes)
        if preds is None:
            raise FvError("no predictions.csv; run evaluate --save first", source=str(folder))
        stored[Path(folder).as_posix()] = preds
    result = compare(stored)
    if args.json:
        _print_json(result)
        return 0
    for name, m in result["models"].items():
        print(f"{name:<48} accuracy {m['accuracy']:.4f}")
    ens = result["ensemble"]
    print(f"{'soft-voting ensemble':<48} accuracy {ens['accuracy']:.4f}")
    for pair in result["mcnemar"]:
        mark = "significant" if pair["significant"] else "not significant"
        print(f"{pair['a']} vs {pair['b']}: p={pair['p_value']:.4g} ({mark})")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    """Map each checkpoint's test images by its penultimate features (UMAP, t-SNE or PCA) into
    embedding.csv beside it; a map of the present weights is kept unless --force."""
    for folder in args.checkpoints:
        stored = read_embedding(folder)
        if stored is not None and stored.current(folder) and stored.meta and not args.force:
            print(f"{folder}: {EMBEDDING} is up to date ({len(stored.frame)} images, "
                  f"{stored.method}); --force recomputes it")
            continue
        classifier = load_checkpoint(folder)
        emb, missing = embed(classifier, folder, roots=settings.data_roots(),
                             data=args.data or (), method=args.method)
        print(f"{folder}: {len(emb.frame)} test images mapped by {emb.method} "
              f"({emb.meta['features']}, {emb.meta['seconds']} s) into {EMBEDDING}"
              + (f"; {missing} not found" if missing else ""))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Every checkpoint's top-k on every image; exit 2 when any image could not be read."""
    classifiers, problems = discover(args.checkpoints)
    for problem in problems:
        print(f"warning: skipped checkpoint {problem}", file=sys.stderr)
    if args.dataset:
        classifiers = [c for c in classifiers if c.card.dataset == args.dataset]
    if not classifiers:
        raise FvError(f"no loadable checkpoints under {args.checkpoints}"
                      + (f" for dataset {args.dataset}" if args.dataset else ""))
    results, errors = predict_all(classifiers, args.images, top_k=args.top_k)
    if args.json:
        _print_json({"results": results, "errors": errors})
    else:
        for result in results:
            print(result["image"])
            for model, pred in result["predictions"].items():
                top = ", ".join(f"{t['label']} {t['prob']:.3f}" for t in pred["top"])
                print(f"  {model:<40} {top}  ({pred['latency_ms']:.0f} ms)")
        for error in errors:
            print(f"error: {error['error']}", file=sys.stderr)
    return 2 if errors else 0


def cmd_cam(args: argparse.Namespace) -> int:
    """Write a Grad-CAM overlay PNG for one image and one checkpoint."""
    classifier = load_checkpoint(args.checkpoint)
    cam = classifier.explain_view(load_image(args.image), args.target, args.method,
                                  score=args.faithfulness)
    out = Path(args.out or Path(args.image).with_suffix(f".{args.method}.png").name)
    overlay(cam.crop, cam.heatmap, alpha=args.alpha).save(out)
    extra = f", faithfulness (ROAD) {cam.faithfulness:.3f}" if cam.faithfulness is not None else ""
    print(f"{out}: {args.method} for {cam.target} (p={cam.target_prob:.3f}){extra}")
    return 0


def cmd_import_pth(args: argparse.Namespace) -> int:
    """Turn a notebook's ``best_model.pth`` state dict into a checkpoint folder (self-checked)."""
    classes = read_classes(args.classes) if args.classes else classes_from_folder(args.classes_from)
    resize = args.resize or (256 if args.image_size == 224 else None)
    result = import_state_dict(args.weights, arch=args.arch, classes=classes, out=args.out,
                               preprocessing=Preprocessing(args.image_size, resize,
                                                           tuple(args.mean), tuple(args.std)),
                               activation=args.activation, half=args.half,
                               dataset=args.dataset, overwrite=args.force)
    print(result)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    """List the runs in the SQLite run registry."""
    rows = list_runs(args.db)
    if args.json:
        _print_json(rows)
        return 0
    for r in rows:
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["started"]))
        best = f"{r['best_val_acc']:.3f}" if r["best_val_acc"] is not None else "-"
        print(f"{r['id']}  {r['status']:<11} {r['arch']:<20} {r['dataset']:<18} {started}  "
              f"epochs {r['epochs']:>3}  best val acc {best}")
    return 0


def cmd_zoo(args: argparse.Namespace) -> int:
    """Train a whole zoo (resuming or skipping finished models), then refresh the README table."""
    if not args.table_only:
        if not args.data or not args.out:
            raise FvError("zoo needs --data and --out (or --table-only)")
        train_zoo(_one_or_many(args.data), args.out, recipe=args.recipe, seed=args.seed,
                  runs_db=args.runs_db, archs=args.archs.split(",") if args.archs else None)
    if args.readme:
        update_readme(args.readme, "zoo", results_table(args.checkpoints))
        print(f"updated the results table in {args.readme}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Benchmark every model: fast path vs eager vs FLOP floor, predict-all, Grad-CAM, cold
    start, memory (bench/run.py; its options follow, see ``bench -h``)."""
    path = settings.REPO / "bench" / "run.py"
    if not path.is_file():
        raise FvError("the benchmark needs a source checkout (bench/run.py)", source=str(path))
    spec = importlib.util.spec_from_file_location("fvcore_bench_run", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(args.bench_args)

"""Data preparation for the app's pages: tables and frames derived from checkpoint cards,
``history.csv``, ``predictions.csv`` and predictions made in the app. Pure pandas/numpy; no
streamlit and no plotting here (figures live in :mod:`fvcore.charts`)."""
from __future__ import annotations

import dataclasses
import os
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from fvcore.card import ModelCard
from fvcore.catalog import HISTORY, TRAIN_STATE, Entry
from fvcore.evaluate import Predictions, align, compare, evaluate_predictions
from fvcore.metrics import calibration

ENV_DATA = "FVCORE_DATA"
REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "datasets"


# -- where test images live ---------------------------------------------------------------------

def data_roots() -> list[Path]:
    """Folders searched for dataset images: ``$FVCORE_DATA`` (os.pathsep-separated), else
    ``../shared/datasets`` beside the repository."""
    value = os.environ.get(ENV_DATA, "").strip()
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p] if value else [DEFAULT_DATA]


def resolve_image(relative: str, dataset: str, roots: Sequence[Path]) -> Optional[Path]:
    """A stored prediction's image path (relative to its dataset root) on this machine, or None.
    Each root may hold ``<dataset>/`` folders or be a dataset root itself."""
    rel = Path(relative)
    if rel.is_absolute():
        return rel if rel.is_file() else None
    for root in roots:
        for candidate in (root / dataset / rel, root / rel):
            if candidate.is_file():
                return candidate
    return None


def short_names(entries: Sequence[Entry], dataset: str) -> list[Entry]:
    """Entries named without their leading ``<dataset>/`` folder (``grocery-produce/resnet50``
    shows as ``resnet50``), unless that would make two names equal."""
    prefix = f"{dataset}/"
    short = [e.name[len(prefix):] if e.name.startswith(prefix) else e.name for e in entries]
    if len(set(short)) != len(short):
        return list(entries)
    return [dataclasses.replace(e, name=name) for e, name in zip(entries, short, strict=True)]


# -- the model table ----------------------------------------------------------------------------

def init_label(init: str) -> str:
    """A short initialisation label: ``ImageNet`` or ``scratch`` or the source's first word."""
    if init.startswith("imagenet"):
        return "ImageNet"
    if init.startswith("none"):
        return "scratch"
    return init.split(" (")[0]


def models_table(entries: Sequence[Entry], latencies: Optional[Mapping[str, float]] = None
                 ) -> pd.DataFrame:
    """One row per checkpoint: what it is, how good, how costly (numbers stay numeric so the
    table sorts; the page formats them)."""
    latencies = latencies or {}
    rows = []
    for entry in entries:
        card, m = entry.card, entry.card.metrics
        ci = m.get("accuracy_ci95") or [None, None]
        rows.append({
            "model": entry.name, "arch": card.arch, "init": init_label(card.init),
            "accuracy": m.get("accuracy"), "ci_low": ci[0], "ci_high": ci[1],
            "macro_f1": m.get("macro_f1"), "group_accuracy": m.get("group_accuracy"),
            "ece": m.get("ece"), "temperature": card.temperature,
            "test_images": m.get("n_images"),
            "params_m": card.params / 1e6 if card.params else None,
            "gflops": card.flops / 1e9 if card.flops else None,
            "latency_ms": latencies.get(entry.name),
            "image_size": card.size_label,
            "epochs": f"{card.best_epoch}/{card.epochs_run}" if card.epochs_run else None,
            "training_min": card.training_seconds / 60 if card.training_seconds else None,
        })
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def card_facts(card: ModelCard) -> pd.DataFrame:
    """How a checkpoint was made, as (what, value) rows people can read: initialisation, data,
    image size, the training recipe, epochs, time, hardware, calibration, test result. Fields the
    card lacks are left out; every value is a string (cards come from users: nothing trusted)."""
    def as_dict(value: Any) -> dict:
        return value if isinstance(value, dict) else {}

    r = as_dict(card.recipe)
    splits = as_dict(card.splits)
    counts, origin = as_dict(splits.get("counts")), as_dict(splits.get("provenance"))
    rows: list[tuple[str, Any]] = [("architecture", card.arch), ("initialisation", card.init),
                                   ("dataset", card.dataset)]
    for split in ("train", "validation", "test"):
        if split in counts:
            n = counts[split]
            rows.append((f"{split} images", (f"{n:,}" if isinstance(n, int) else str(n))
                         + (f" · {origin[split]}" if origin.get(split) else "")))
    rows.append(("image size", card.size_label
                 + (f", resized to {card.resize_size} first" if card.resize_size else "")))
    if r.get("finetune"):
        rows.append(("fine-tuning", " ".join(str(x) for x in (
            r.get("finetune", ""),
            f"(backbone lr x{r['backbone_lr_scale']})" if r.get("backbone_lr_scale") else ""))
            .strip()))
    optim = [f"{k.replace('_', ' ')} {r[k]}" for k in ("lr", "weight_decay", "batch_size")
             if k in r]
    if r.get("optimizer") or optim:
        rows.append(("optimiser", ", ".join([str(r.get("optimizer", "")), *optim]).strip(", ")))
    if r.get("schedule"):
        rows.append(("schedule", f"{r['schedule']}, {r.get('epochs', '?')} epochs"
                                 + (f", early stopping after epoch {r['min_epochs']} with "
                                    f"patience {r.get('patience', '?')}"
                                    if r.get("min_epochs") else "")))
    augment = [str(r["augment_policy"])] if r.get("augment") and r.get("augment_policy") else []
    if r.get("mix"):
        augment.append(f"CutMix/MixUp alpha {r['mix']}")
    if r.get("label_smoothing"):
        augment.append(f"label smoothing {r['label_smoothing']}")
    if augment:
        rows.append(("regularisation", ", ".join(augment)))
    if card.epochs_run:
        how = ("stopped early" if card.stopped_early else "ran to the epoch limit"
               if card.stopped_early is not None else "")
        rows.append(("epochs", f"{card.epochs_run} run, best {card.best_epoch}"
                               + (f", {how}" if how else "")))
    if card.training_seconds:
        rows.append(("training time", f"{card.training_seconds / 60:.0f} min"
                     + (f" on {card.hardware}" if card.hardware else "")))
    cal = as_dict(card.calibration)
    if cal.get("skipped"):
        rows.append(("calibration", f"none: {cal['skipped']}"))
    elif card.temperature != 1.0 or cal:
        line = f"temperature {card.temperature:.3g}"
        before, after = cal.get("val_ece_before"), cal.get("val_ece_after")
        if isinstance(before, (int, float)) and isinstance(after, (int, float)):
            line += f" (validation ECE {before:.3f} -> {after:.3f})"
        rows.append(("calibration", line))
    m = as_dict(card.metrics)
    if isinstance(m.get("accuracy"), (int, float)):
        rows.append(("test accuracy", f"{m['accuracy']:.1%}"
                     + (f" on {m['n_images']:,} images" if isinstance(m.get("n_images"), int)
                        else "")))
    if card.notes:
        rows.append(("notes", card.notes))
    return pd.DataFrame([(k, str(v)) for k, v in rows], columns=["what", "value"])


def facts_markdown(facts: pd.DataFrame) -> str:
    """:func:`card_facts` as a two-column markdown table (wraps long values, never scrolls);
    characters that would break the table or start markup are escaped."""
    def cell(text: str) -> str:
        text = " ".join(str(text).split())
        for char in "\\|*_`[]<>#$~":
            text = text.replace(char, "\\" + char)
        return text
    rows = [f"| **{cell(what)}** | {cell(value)} |"
            for what, value in zip(facts["what"], facts["value"], strict=True)]
    return "\n".join(["| | |", "|---|---|", *rows])


def best_first(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`models_table` by test accuracy, best first (unscored ones last), the
    order of the README's results table."""
    return table.sort_values("accuracy", ascending=False, na_position="last",
                             kind="stable").reset_index(drop=True)


def status_tag(entry: Entry) -> str:
    """``""`` for a checkpoint with test metrics, else ``"training"`` (a resumable ``.train/``
    state beside it) or ``"not evaluated"``. Cheap: the card and one directory check."""
    if entry.card.metrics:
        return ""
    return "training" if (entry.path / TRAIN_STATE).is_dir() else "not evaluated"


def unevaluated_note(entry: Entry) -> Optional[str]:
    """One line on a checkpoint whose card has no test metrics yet, or None when it has them:
    training not finished (a resumable ``.train/`` state beside it: running, or stopped and
    continued by the card's command with ``--resume``; epochs so far and the best validation
    accuracy from ``history.csv``), or trained but never evaluated (the command that evaluates
    it)."""
    tag = status_tag(entry)
    if not tag:
        return None
    history = read_history(entry.path)
    so_far = ""
    if history is not None and "val_acc" in history:
        best = history.loc[history["val_acc"].idxmax()]
        planned = entry.card.recipe.get("epochs")
        of = f" of {planned}" if planned else ""
        so_far = (f"{len(history)} epochs{of} so far, best validation accuracy "
                  f"{best['val_acc']:.1%} (epoch {int(best['epoch'])})")
    if tag == "training":
        return (f"training not finished: {so_far or 'no epoch finished yet'} (if it stopped, "
                "its card.json's command plus `--resume` continues it)")
    done = f" ({so_far})" if so_far else ""
    return (f"no test metrics yet{done}: `python -m fvcore evaluate {entry.path} --data "
            f"DATASET_DIR/test --save` adds them")


TABLE_COLUMNS = {
    "model": "Model", "arch": "Architecture", "init": "Init", "accuracy": "Test accuracy",
    "ci_low": "95% CI low", "ci_high": "95% CI high", "macro_f1": "Macro F1",
    "group_accuracy": "Group accuracy", "ece": "ECE", "temperature": "Temperature",
    "test_images": "Test images",
    "params_m": "Params (M)", "gflops": "GFLOPs", "latency_ms": "CPU latency (ms)",
    "image_size": "Input px", "epochs": "Best/run epochs", "training_min": "Training (min)",
}
"""Column -> human title, in display order."""


def pareto_front(table: pd.DataFrame, cost: str, value: str = "accuracy") -> pd.DataFrame:
    """The efficiency frontier: rows no other row beats on both lower ``cost`` and higher
    ``value``, sorted by cost."""
    rows = table.dropna(subset=[cost, value]).sort_values([cost, value], ascending=[True, False])
    front, best = [], -np.inf
    for _, row in rows.iterrows():
        if row[value] > best:
            front.append(row)
            best = row[value]
    return pd.DataFrame(front, columns=table.columns)


# -- training curves ----------------------------------------------------------------------------

def read_history(folder: str | Path) -> Optional[pd.DataFrame]:
    """A checkpoint's ``history.csv`` as a frame, or None when absent or unreadable."""
    path = Path(folder) / HISTORY
    if not path.is_file():
        return None
    try:
        frame = pd.read_csv(path)
    except (ValueError, OSError, pd.errors.ParserError):
        return None
    return frame if "epoch" in frame.columns and len(frame) else None


def curves_long(histories: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Per-epoch frames -> long rows (model, epoch, split, metric, value) for overlaid curves."""
    parts = []
    for name, frame in histories.items():
        for split, prefix in (("train", "train_"), ("validation", "val_")):
            for metric in ("loss", "acc"):
                column = prefix + metric
                if column in frame.columns:
                    part = frame[["epoch", column]].rename(columns={column: "value"})
                    parts.append(part.assign(model=name, split=split,
                                             metric="accuracy" if metric == "acc" else "loss"))
    if not parts:
        return pd.DataFrame(columns=["epoch", "value", "model", "split", "metric"])
    return pd.concat(parts, ignore_index=True).dropna(subset=["value"])


def epochs_long(name: str, rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """A run registry's epoch rows -> the long frame of :func:`curves_long`."""
    return curves_long({name: pd.DataFrame(list(rows))})


def runs_frame(runs: Sequence[Mapping[str, Any]], now: float) -> pd.DataFrame:
    """The run registry as a table: newest first, times as datetimes and minutes."""
    rows = [{"id": r["id"], "status": r["status"], "arch": r["arch"], "dataset": r["dataset"],
             "epochs": r["epochs"], "best_val_acc": r["best_val_acc"],
             "started": pd.to_datetime(r["started"], unit="s"),
             "minutes": ((r["ended"] or (now if r["status"] == "running" else r["updated"]))
                         - r["started"]) / 60,
             "out": r["out"], "message": r["message"]} for r in runs]
    return pd.DataFrame(rows, columns=["id", "status", "arch", "dataset", "epochs",
                                       "best_val_acc", "started", "minutes", "out", "message"])


# -- metrics from stored predictions ------------------------------------------------------------

def reports(preds: Mapping[str, Predictions], groups: Optional[dict[str, str]] = None
            ) -> dict[str, dict[str, Any]]:
    """The full metrics report of each model's predictions."""
    return {name: evaluate_predictions(p, groups) for name, p in preds.items()}


def ranked(full: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The models of :func:`reports` by accuracy, best first (ties keep their order)."""
    return sorted(full, key=lambda name: -full[name]["accuracy"])


def ranked_predictions(preds: Mapping[str, Predictions]) -> list[str]:
    """The models of stored predictions by test accuracy, best first (ties keep their order);
    cheaper than :func:`ranked` over full reports."""
    return sorted(preds, key=lambda name: -float(np.mean(preds[name].preds == preds[name].labels)))


def report_table(full: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Headline metrics of each report, one row per model (for tables and CSV downloads)."""
    keys = ("accuracy", "macro_f1", "weighted_f1", "top3_accuracy", "group_accuracy", "ece",
            "loss", "n_images")
    rows = [{"model": name, **{k: r.get(k) for k in keys},
             "ci_low": r["accuracy_ci95"][0], "ci_high": r["accuracy_ci95"][1]}
            for name, r in full.items()]
    return pd.DataFrame(rows, columns=["model", *keys, "ci_low", "ci_high"])


def per_class_f1(full: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Classes x models F1 scores."""
    return pd.DataFrame({name: {c: v["f1"] for c, v in r["per_class"].items()}
                         for name, r in full.items()})


def confusion_frame(report: Mapping[str, Any], classes: Sequence[str], *,
                    normalise: bool = False) -> pd.DataFrame:
    """True x predicted counts, or row-normalised rates (each true class sums to 1)."""
    matrix = np.asarray(report["confusion"], dtype=float)
    if normalise:
        totals = matrix.sum(1, keepdims=True)
        matrix = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    return pd.DataFrame(matrix, index=list(classes), columns=list(classes))


def top_confusions(report: Mapping[str, Any], classes: Sequence[str], n: int = 10
                   ) -> pd.DataFrame:
    """The ``n`` most frequent mistakes (true -> predicted class pairs), largest count first, with
    the share of the true class they take; with 34 classes the matrix alone hides them."""
    matrix = np.asarray(report["confusion"], dtype=float)
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    totals = matrix.sum(1)
    order = np.argsort(-off, axis=None, kind="stable")[:n]
    rows = [{"true": classes[t], "predicted": classes[q], "images": int(off[t, q]),
             "share": off[t, q] / totals[t]}
            for t, q in zip(*np.unravel_index(order, off.shape), strict=True) if off[t, q] > 0]
    return pd.DataFrame(rows, columns=["true", "predicted", "images", "share"])


def confusion_difference(a: Mapping[str, Any], b: Mapping[str, Any], classes: Sequence[str], *,
                         normalise: bool = False) -> pd.DataFrame:
    """Confusion of model a minus model b: positive cells are where a puts more images."""
    return (confusion_frame(a, classes, normalise=normalise)
            - confusion_frame(b, classes, normalise=normalise))


def reliability(preds: Mapping[str, Predictions], bins: int = 10
                ) -> tuple[pd.DataFrame, dict[str, float]]:
    """Reliability-diagram rows (model, confidence, accuracy, count) and each model's ECE."""
    rows, eces = [], {}
    for name, p in preds.items():
        result = calibration(p.probs, p.labels, bins=bins)
        eces[name] = result["ece"]
        rows += [{"model": name, **b} for b in result["bins"]]
    return pd.DataFrame(rows, columns=["model", "bin", "lower", "upper", "count", "accuracy",
                                       "confidence"]), eces


@dataclasses.dataclass
class Significance:
    """Pairwise McNemar tests as matrices, rows and columns best model first.

    ``pvals``: exact p-values (symmetric, NaN diagonal); ``diffs``: row minus column accuracy in
    percentage points on the shared images (antisymmetric); ``text``: hover text per cell;
    ``result``: :func:`fvcore.evaluate.compare`'s output (shared images, accuracies, ensemble)."""

    pvals: pd.DataFrame
    diffs: pd.DataFrame
    text: pd.DataFrame
    result: dict


def format_p(p: float) -> str:
    """A p-value as people read it: ``p=0.255``, ``p=0.003``, ``p<0.001``."""
    return f"p={p:.3f}" if p >= 0.001 else "p<0.001"


def mcnemar_matrix(preds: Mapping[str, Predictions]) -> Significance:
    """Every pair of models tested with McNemar's exact test on their shared test images."""
    result = compare(dict(preds))
    n = result["n_images"]
    names = ranked(result["models"])
    pvals = pd.DataFrame(np.nan, index=names, columns=names)
    diffs = pd.DataFrame(np.nan, index=names, columns=names)
    text = pd.DataFrame("", index=names, columns=names)
    for pair in result["mcnemar"]:
        a, b, p = pair["a"], pair["b"], pair["p_value"]
        pvals.loc[a, b] = pvals.loc[b, a] = p
        for x, y, only_x, only_y in ((a, b, pair["only_a"], pair["only_b"]),
                                     (b, a, pair["only_b"], pair["only_a"])):
            diffs.loc[x, y] = 100.0 * (only_x - only_y) / n
            text.loc[x, y] = (f"{x} minus {y}: {diffs.loc[x, y]:+.1f} points, p={p:.3g}<br>"
                              f"only {x} right: {only_x}, only {y} right: {only_y}")
    return Significance(pvals, diffs, text, result)


MISTAKES = {"model": "all its mistakes",
            "only": "mistakes only it makes (every other selected model is right)",
            "all": "mistakes every selected model makes"}


def misclassified(p: Predictions, limit: int = 24, *,
                  others: Optional[Mapping[str, Predictions]] = None,
                  which: str = "model") -> pd.DataFrame:
    """The model's wrong test predictions, most confident first.

    ``which`` (a key of :data:`MISTAKES`) narrows them using ``others``, the other models'
    predictions (not this one's), on the images every model shares: ``"only"`` keeps the images
    every other model gets right (the model's own blind spots), ``"all"`` those every other model
    gets wrong too (hard or mislabelled photos). ``wrong_by`` counts the models, this one
    included, that are wrong on each image."""
    if which not in MISTAKES:
        raise ValueError(f"which must be one of {sorted(MISTAKES)}, not {which!r}")
    columns = ["path", "true", "pred", "prob", "true_prob", "wrong_by"]
    others = dict(others or {})
    if others:
        _, aligned = align({"": p, **others})
        p = aligned.pop("")
        wrong_by = sum((o.preds != o.labels).astype(int) for o in aligned.values())
    else:
        wrong_by = np.zeros(len(p.paths), dtype=int)
    wrong = p.preds != p.labels
    if which == "only":
        wrong &= wrong_by == 0
    elif which == "all":
        wrong &= wrong_by == len(others)
    rows = [{"path": p.paths[i], "true": p.classes[p.labels[i]], "pred": p.classes[p.preds[i]],
             "prob": float(p.probs[i, p.preds[i]]), "true_prob": float(p.probs[i, p.labels[i]]),
             "wrong_by": int(wrong_by[i]) + 1}
            for i in np.flatnonzero(wrong)]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("prob", ascending=False, kind="stable").head(limit) \
        .reset_index(drop=True)


def predictions_long(preds: Mapping[str, Predictions]) -> pd.DataFrame:
    """Every model's prediction of every image, one row each (for a CSV download)."""
    rows = [{"model": name, "path": path, "label": p.classes[label], "pred": p.classes[pred],
             "prob": float(row[pred]), "correct": bool(label == pred)}
            for name, p in preds.items()
            for path, label, pred, row in zip(p.paths, p.labels, p.preds, p.probs, strict=True)]
    return pd.DataFrame(rows, columns=["model", "path", "label", "pred", "prob", "correct"])


# -- live predictions (Predict page) ------------------------------------------------------------

def top_k(classes: Sequence[str], probs: np.ndarray, k: int) -> pd.DataFrame:
    """The ``k`` most probable classes of one probability vector (label, prob), best first."""
    order = np.argsort(-np.asarray(probs))[:k]
    return pd.DataFrame({"label": [classes[i] for i in order],
                         "prob": [float(probs[i]) for i in order]})


def agreement(top1: Mapping[str, str]) -> tuple[Optional[str], list[str]]:
    """The majority top-1 label across models (None on a tie) and the models that differ from
    it (every model, when there is no majority)."""
    if not top1:
        return None, []
    counts = Counter(top1.values()).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return None, sorted(top1)
    majority = counts[0][0]
    return majority, sorted(name for name, label in top1.items() if label != majority)

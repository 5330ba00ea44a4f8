"""Table frames for the pages: the model table, a card as readable facts, training curves as
long rows, the run registry as a table and one model's top-k. Pure pandas; the pages format and
draw them."""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from fvcore.app import domains
from fvcore.checkpoints.card import ModelCard
from fvcore.checkpoints.catalog import DOMAIN_ACC, Entry, status_tag
from fvcore.checkpoints.history import read_history

if TYPE_CHECKING:
    from fvcore.inference.predict import ModelAnswer


def short_names(entries: Sequence[Entry], dataset: str) -> list[Entry]:
    """Entries named without their leading ``<dataset>/`` folder (``grocery-produce/resnet50``
    shows as ``resnet50``), unless that would make two names equal."""
    prefix = f"{dataset}/"
    short = [e.name[len(prefix):] if e.name.startswith(prefix) else e.name for e in entries]
    if len(set(short)) != len(short):
        return list(entries)
    return [dataclasses.replace(e, name=name) for e, name in zip(entries, short, strict=True)]



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
    table sorts; the page formats them). When a card has two or more test domains, each domain's
    accuracy and the gap between them (points) follow the overall accuracy."""
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
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    by_domain = domains.domain_table([entry.card for entry in entries])
    at = table.columns.get_loc("ci_high") + 1
    for i, column in enumerate(by_domain.columns):
        table.insert(at + i, column, by_domain[column].to_numpy())
    return table


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
    rows += domains.source_rows(splits)
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
    rows += domains.accuracy_rows(card)
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




def curves_long(histories: Mapping[str, pd.DataFrame], *,
                domains: bool = False) -> pd.DataFrame:
    """Per-epoch frames -> long rows (model, epoch, split, metric, value) for overlaid curves;
    with ``domains`` also the validation accuracy on each source of a run trained on several
    folders (``val_acc:<source>`` columns) as split ``validation: <source>``."""
    parts = []
    for name, frame in histories.items():
        columns = [(split, prefix + short, metric) for split, prefix in
                   (("train", "train_"), ("validation", "val_"))
                   for short, metric in (("loss", "loss"), ("acc", "accuracy"))]
        if domains:
            columns += [(f"validation: {c[len(DOMAIN_ACC):]}", c, "accuracy")
                        for c in frame.columns if str(c).startswith(DOMAIN_ACC)]
        for split, column, metric in columns:
            if column in frame.columns:
                part = frame[["epoch", column]].rename(columns={column: "value"})
                parts.append(part.assign(model=name, split=split, metric=metric))
    if not parts:
        return pd.DataFrame(columns=["epoch", "value", "model", "split", "metric"])
    return pd.concat(parts, ignore_index=True).dropna(subset=["value"])


def has_domain_curves(histories: Mapping[str, pd.DataFrame]) -> bool:
    """Whether any history has validation accuracy per source (a run on several folders)."""
    return any(str(c).startswith(DOMAIN_ACC) for f in histories.values() for c in f.columns)


def epochs_long(name: str, rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """A run registry's epoch rows -> the long frame of :func:`curves_long` (with the
    validation accuracy per source of a run on several folders)."""
    return curves_long({name: pd.DataFrame(list(rows))}, domains=True)


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





def top_k(classes: Sequence[str], probs: np.ndarray, k: int) -> pd.DataFrame:
    """The ``k`` most probable classes of one probability vector (label, prob), best first."""
    order = np.argsort(-np.asarray(probs))[:k]
    return pd.DataFrame({"label": [classes[i] for i in order],
                         "prob": [float(probs[i]) for i in order]})


def answer_top_k(answer: ModelAnswer, k: int) -> pd.DataFrame:
    """:func:`top_k` of one model's answer."""
    return pd.DataFrame(answer.top(k), columns=["label", "prob"])

"""Test domains in the app (the dataset folders a model's test images came from): per-domain
accuracy columns for the model table, a card's sources and per-domain results as readable rows,
and stored predictions restricted to one domain. Pure pandas; cards come from users, so every
field is checked before use (wrong types are skipped)."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import pandas as pd

from fvcore.checkpoints.card import ModelCard
from fvcore.evaluation.predictions import Predictions

PREFIX = "test_accuracy:"
"""A per-domain accuracy column of the model table: ``test_accuracy:<domain>``."""
GAP = "domain_gap"
"""The model table's column: largest minus smallest domain accuracy, in percentage points."""
SPLITS = ("train", "validation", "test")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_domain_column(column: str) -> bool:
    """True for a per-domain accuracy column of the model table."""
    return str(column).startswith(PREFIX)


def column_title(column: str) -> str:
    """``Test accuracy: produce-wild`` for ``test_accuracy:produce-wild``."""
    return f"Test accuracy: {column[len(PREFIX):]}"


def domain_table(cards: Sequence[ModelCard]) -> pd.DataFrame:
    """One row per card: its accuracy in each test domain and the gap between its best and worst
    domain (points). No columns unless some card has two or more domains."""
    accs = [card.split_accuracies() for card in cards]
    if not any(len(a) >= 2 for a in accs):
        return pd.DataFrame(index=range(len(cards)))
    domains = list(dict.fromkeys(d for a in accs for d in a))
    columns = [PREFIX + d for d in domains] + [GAP]
    rows = [{**{PREFIX + d: a.get(d) for d in domains},
             GAP: (max(a.values()) - min(a.values())) * 100 if len(a) >= 2 else None}
            for a in accs]
    return pd.DataFrame(rows, columns=columns, dtype=float)


def source_rows(splits: Any) -> list[tuple[str, str]]:
    """The card's sources (``splits["sources"]``) as rows: ``source grocery-produce`` ->
    ``1,760 train · 212 validation · 1,704 test``."""
    sources = splits.get("sources") if isinstance(splits, dict) else None
    rows = []
    for name, source in (sources.items() if isinstance(sources, dict) else ()):
        if not isinstance(source, dict):
            continue
        counts = source.get("counts") if isinstance(source.get("counts"), dict) else {}
        origin = source.get("provenance") if isinstance(source.get("provenance"), dict) else {}
        parts = [f"{counts[s]:,} {s}" + (f" ({origin[s]})" if isinstance(origin.get(s), str)
                                        and origin[s] else "")
                 for s in SPLITS if _count(counts.get(s))]
        if parts:
            rows.append((f"source {name}", " · ".join(parts)))
    return rows


def accuracy_rows(card: ModelCard) -> list[tuple[str, str]]:
    """The card's test accuracy per domain as rows, when it has two or more domains."""
    by_split = card.metrics_by_split if isinstance(card.metrics_by_split, dict) else {}
    if len(card.split_accuracies()) < 2:
        return []
    rows = []
    for domain, m in by_split.items():
        if isinstance(m, dict) and _number(m.get("accuracy")):
            n = m.get("n_images")
            rows.append((f"test accuracy: {domain}", f"{m['accuracy']:.1%}" + (
                f" on {n:,} images" if _count(n) else "")))
    return rows


def test_domains(preds: Mapping[str, Predictions]) -> list[str]:
    """The test domains of a set of models' predictions, in the order they first appear."""
    return list(dict.fromkeys(d for p in preds.values() for d in p.domain_names))


def in_domain(preds: Mapping[str, Predictions], domain: Optional[str]
              ) -> tuple[dict[str, Predictions], list[str]]:
    """Every model's predictions on one test domain (all of them for None), and the names of the
    models without images in it (left out)."""
    if domain is None:
        return dict(preds), []
    kept = {name: p.subset(domain) for name, p in preds.items() if domain in p.domain_names}
    return kept, [name for name in preds if name not in kept]

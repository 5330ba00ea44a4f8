"""The speed benchmark times one zoo: one shipped checkpoint per architecture, all of one dataset
(the flagship zoo by default), never a mix of datasets that happen to scan first."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from fvcore.checkpoints.card import ModelCard
from fvcore.errors import FvError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
_spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
bench_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_run)


def _datasets(models: dict[str, Path]) -> set[str]:
    return {ModelCard.read(path).dataset for path in models.values()}


def test_by_default_the_bench_times_the_dataset_with_the_most_shipped_checkpoints():
    models = bench_run.shipped_models(ROOT / "checkpoints")
    assert len(models) == 9 and _datasets(models) == {"produce"}


def test_the_bench_times_the_chosen_dataset_s_checkpoints_only():
    models = bench_run.shipped_models(ROOT / "checkpoints", "hymenoptera")
    assert sorted(models) == ["cnn", "efficientnet_lite0", "mobilenet_v3_large"]
    assert _datasets(models) == {"hymenoptera"}
    with pytest.raises(FvError, match="no shipped checkpoints of dataset 'fruit'.*hymenoptera"):
        bench_run.shipped_models(ROOT / "checkpoints", "fruit")

"""The per-epoch steps of training: one pass over the training data, one over the validation
data, and the device, precision and distributed plumbing they share (``torchrun`` with
DistributedDataParallel)."""
from __future__ import annotations

import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from fvcore.checkpoints.catalog import DOMAIN_ACC, domain_accuracies
from fvcore.datasets.folders import DataSplits
from fvcore.errors import FvError


def world() -> tuple[int, int]:
    """This process's rank and the number of processes (``torchrun`` sets both)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum values across ranks (no-op when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()):
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def pick_device(name: str) -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise FvError("--device cuda asked for, but no CUDA GPU is available")
    return torch.device(name)


def autocast(device: torch.device, precision: str):
    """AMP on CUDA (bf16 where supported, else fp16); bf16 on CPU only when asked for."""
    if precision == "fp32" or (precision == "auto" and device.type == "cpu"):
        return nullcontext()
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast("cpu", dtype=torch.bfloat16)


def train_one_epoch(model: nn.Module, loader: DataLoader, optimizer, scheduler, criterion,
                    device: torch.device, *, precision: str, epoch: int,
                    frozen_bn: Sequence[nn.Module] = (), progress: bool = True,
                    mix: Optional[Callable] = None) -> dict[str, float]:
    """One pass over the training data; returns loss, accuracy and images per second.
    The BatchNorm layers ``frozen_bn`` (see :func:`fvcore.training.recipe.frozen_batchnorms`)
    normalise with their running statistics and leave them as they are.
    With ``mix`` (see :func:`batch_mixer`) accuracy counts the dominant label of a mixed image."""
    from tqdm import tqdm
    model.train()
    for module in frozen_bn:
        module.eval()
    totals = [0.0, 0.0, 0.0]  # loss sum, correct, count
    start = time.perf_counter()
    bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, unit="batch",
               disable=not (progress and sys.stderr.isatty()))
    for images, labels in bar:
        images = images.to(device, non_blocking=True)
        if images.ndim == 4:
            images = images.contiguous(memory_format=torch.channels_last)
        labels = labels.to(device, non_blocking=True)
        if mix is not None:
            images, labels = mix(images, labels)
        with autocast(device, precision):
            logits = model(images)
            loss = criterion(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        totals[0] += float(loss.detach()) * len(labels)
        hard = labels.argmax(1) if labels.ndim == 2 else labels
        totals[1] += float((logits.argmax(1) == hard).sum())
        totals[2] += len(labels)
        bar.set_postfix(loss=f"{totals[0] / totals[2]:.3f}", acc=f"{totals[1] / totals[2]:.3f}")
    seconds = time.perf_counter() - start
    loss_sum, correct, count = reduce_sum(totals, device)
    return {"train_loss": loss_sum / count, "train_acc": correct / count,
            "images_per_s": count / max(seconds, 1e-9)}


@dataclass(frozen=True)
class Domains:
    """Which source (dataset folder) each validation item came from, in loader order: ``names``
    in one fixed order (the same on every rank), ``of_item[i]`` an index into ``names``."""

    names: tuple[str, ...]
    of_item: tuple[int, ...]


def validation_domains(splits: DataSplits, rank: int = 0, world: int = 1) -> Optional[Domains]:
    """The source of each of this rank's validation images when several folders were combined
    (their validation images are concatenated in folder order; a rank takes every
    ``world``-th from ``rank``); None for one folder."""
    names = tuple(s.name for s in splits.sources)
    counts = [s.counts.get("validation", 0) for s in splits.sources]
    if len(names) < 2 or sum(counts) != len(splits.splits["validation"]):
        return None
    of_item = [i for i, n in enumerate(counts) for _ in range(n)]
    return Domains(names, tuple(of_item[rank::world]))


def mean_source_accuracy(row: dict[str, Any]) -> float:
    """The mean of a row's per-source validation accuracies, each source weighing the same
    whatever its size (the row's ``val_acc`` when it has none: one folder)."""
    per_source = domain_accuracies(row)
    return sum(per_source.values()) / len(per_source) if per_source else row["val_acc"]


def domain_note(row: dict[str, Any]) -> str:
    """`` (val_acc grocery 0.8123, wild 0.7012)`` for a row with per-source accuracy, else
    ``""``."""
    parts = [f"{name} {acc:.4f}" for name, acc in domain_accuracies(row).items()]
    return f" (val_acc {', '.join(parts)})" if parts else ""


@torch.no_grad()
def evaluate_loader(model: nn.Module, loader: DataLoader, criterion,
                    device: torch.device, *, precision: str,
                    domains: Optional[Domains] = None) -> dict[str, float]:
    """Loss and accuracy over a loader (summed across ranks when distributed); with ``domains``
    also the accuracy on each source, as ``val_acc:<name>`` (:data:`DOMAIN_ACC`)."""
    model.eval()
    totals = [0.0, 0.0, 0.0]
    per = [0.0] * (2 * len(domains.names)) if domains else []   # correct, count per domain
    seen = 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        with autocast(device, precision):
            logits = model(images)
        hits = (logits.argmax(1) == labels).tolist()
        totals[0] += float(criterion(logits.float(), labels)) * len(labels)
        totals[1] += sum(hits)
        totals[2] += len(labels)
        if domains:
            for hit, d in zip(hits, domains.of_item[seen:seen + len(hits)], strict=True):
                per[2 * d] += hit
                per[2 * d + 1] += 1
        seen += len(hits)
    loss_sum, correct, count, *per = reduce_sum(totals + per, device)
    row = {"val_loss": loss_sum / max(count, 1), "val_acc": correct / max(count, 1)}
    for i, name in enumerate(domains.names if domains else ()):
        if per[2 * i + 1]:
            row[DOMAIN_ACC + name] = per[2 * i] / per[2 * i + 1]
    return row

"""Training: the transfer-learning recipe (AdamW, warm-up + cosine, label smoothing, augmentation,
early stopping, best-by-validation weights), resumable every epoch, recorded in the run registry,
and runnable under ``torchrun`` with DistributedDataParallel."""
from __future__ import annotations

import math
import os
import shlex
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from fvcore import runs
from fvcore.architectures import get_spec
from fvcore.errors import FvError

FINETUNE_MODES = ("head", "partial", "full")


@dataclass
class TrainConfig:
    """Every knob of a training run (the CLI's arguments)."""

    arch: str
    data: str
    out: str
    pretrained: str = "auto"
    finetune: str = "full"
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05
    image_size: Optional[int] = None
    patience: int = 6
    min_epochs: int = 0
    seed: int = 0
    device: str = "auto"
    workers: int = 0
    resume: bool = False
    label_smoothing: float = 0.1
    warmup_epochs: float = 1.0
    val_fraction: float = 0.15
    backbone_lr_scale: float = 0.1
    augment: bool = True
    augment_policy: str = "basic"
    mix: float = 0.0
    eval_size: Optional[int] = None
    eval_resize: Optional[int] = None
    precision: str = "auto"
    runs_db: str = runs.DEFAULT_DB
    min_delta: float = 1e-4
    command: str = field(
        default_factory=lambda: shlex.join(["python", "-m", "fvcore", *sys.argv[1:]]))

    def recipe(self) -> dict[str, Any]:
        """The training recipe as stored in the card (no paths, no run-control flags)."""
        skip = {"data", "out", "resume", "runs_db", "command", "device", "workers"}
        return {"optimizer": "AdamW", "schedule": "linear warm-up + cosine decay",
                **{k: v for k, v in asdict(self).items() if k not in skip}}


# --- distributed helpers ---------------------------------------------------------------------

def _world() -> tuple[int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _reduce(values: list[float], device: torch.device) -> list[float]:
    """Sum values across ranks (no-op when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()):
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def _pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise FvError("--device cuda asked for, but no CUDA GPU is available")
    return torch.device(name)


def _autocast(device: torch.device, precision: str):
    """AMP on CUDA (bf16 where supported, else fp16); bf16 on CPU only when asked for."""
    if precision == "fp32" or (precision == "auto" and device.type == "cpu"):
        return nullcontext()
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast("cpu", dtype=torch.bfloat16)


# --- model and optimiser ---------------------------------------------------------------------

def configure_finetuning(model: nn.Module, arch: str, mode: str) -> None:
    """Freeze what ``mode`` says: ``head`` trains the head only, ``partial`` also the last stage."""
    if mode not in FINETUNE_MODES:
        raise FvError(f"unknown --finetune {mode!r}; choose one of {', '.join(FINETUNE_MODES)}")
    spec = get_spec(arch)
    trainable = {"head": (spec.head_prefix,), "partial": (spec.head_prefix, *spec.last_stage),
                 "full": ("",)}[mode]
    for name, param in model.named_parameters():
        param.requires_grad_(any(name == p or name.startswith(p + ".") or p == ""
                                 for p in trainable))


def param_groups(model: nn.Module, arch: str, config: TrainConfig, pretrained: bool) -> list[dict]:
    """AdamW groups: head vs backbone (lower lr when pretrained), no decay on biases and norms."""
    head = get_spec(arch).head_prefix + "."
    scale = config.backbone_lr_scale if pretrained else 1.0
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            groups.setdefault((name.startswith(head), param.ndim <= 1), []).append(param)
    return [{"params": params, "lr": config.lr * (1.0 if is_head else scale),
             "weight_decay": 0.0 if no_decay else config.weight_decay}
            for (is_head, no_decay), params in sorted(groups.items())]


def warmup_cosine(warmup_steps: int, total_steps: int):
    """LR factor per step: linear warm-up, then cosine decay to 1% of the peak."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


# --- phases ----------------------------------------------------------------------------------

def batch_mixer(num_classes: int, alpha: float) -> Optional[Callable]:
    """CutMix or MixUp (one of the two, at random, per batch) with Beta(alpha, alpha) mixing;
    None when ``alpha`` is 0. Labels become soft targets of shape (batch, classes)."""
    if alpha <= 0:
        return None
    from torchvision.transforms import v2
    return v2.RandomChoice([v2.CutMix(num_classes=num_classes, alpha=alpha),
                            v2.MixUp(num_classes=num_classes, alpha=alpha)])


def train_one_epoch(model: nn.Module, loader: DataLoader, optimizer, scheduler, criterion,
                    device: torch.device, *, precision: str, frozen_backbone: bool,
                    epoch: int, progress: bool = True,
                    mix: Optional[Callable] = None) -> dict[str, float]:
    """One pass over the training data; returns loss, accuracy and images per second.
    With ``mix`` (see :func:`batch_mixer`) accuracy counts the dominant label of a mixed image."""
    from tqdm import tqdm
    model.train()
    if frozen_backbone:  # BatchNorm statistics of a frozen backbone stay as they are
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(
                    p.requires_grad for p in module.parameters()):
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
        with _autocast(device, precision):
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
    loss_sum, correct, count = _reduce(totals, device)
    return {"train_loss": loss_sum / count, "train_acc": correct / count,
            "images_per_s": count / max(seconds, 1e-9)}


@torch.no_grad()
def evaluate_loader(model: nn.Module, loader: DataLoader, criterion,
                    device: torch.device, *, precision: str) -> dict[str, float]:
    """Loss and accuracy over a loader (summed across ranks when distributed)."""
    model.eval()
    totals = [0.0, 0.0, 0.0]
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        with _autocast(device, precision):
            logits = model(images)
        totals[0] += float(criterion(logits.float(), labels)) * len(labels)
        totals[1] += float((logits.argmax(1) == labels).sum())
        totals[2] += len(labels)
    loss_sum, correct, count = _reduce(totals, device)
    return {"val_loss": loss_sum / max(count, 1), "val_acc": correct / max(count, 1)}

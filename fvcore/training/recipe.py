"""The training recipe: every knob of a run (:class:`TrainConfig`, stored in the card), which
parameters train, the AdamW parameter groups and the warm-up + cosine schedule."""
from __future__ import annotations

import math
import shlex
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

from torch import nn

from fvcore import settings
from fvcore.errors import FvError
from fvcore.models.registry import get_spec

FINETUNE_MODES = ("head", "partial", "full")


@dataclass
class TrainConfig:
    """Every knob of a training run (the CLI's arguments)."""

    arch: str
    data: Union[str, list[str]]   # one dataset folder, or several combined (test domains apart)
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
    runs_db: str = field(default_factory=lambda: str(settings.runs_db()))
    min_delta: float = 1e-4
    dataset_name: Optional[str] = None   # the card's dataset (default: folder names joined by +)
    init_from: Optional[str] = None      # a finished checkpoint folder to warm-start from
    probe_epochs: int = 0                # LP-FT: first fit the head on frozen features
    freeze_bn: bool = False              # backbone BatchNorm keeps its running statistics
    wise: bool = False                   # WiSE-FT: mix the tuned weights with the probe's
    select_by: str = "val_loss"          # best epoch and early stopping: val_loss | source_accuracy
    command: str = field(
        default_factory=lambda: shlex.join(["python", "-m", "fvcore", *sys.argv[1:]]))

    @property
    def folders(self) -> list[str]:
        """The dataset folders, one or several."""
        many = not isinstance(self.data, (str, Path))
        return [str(d) for d in self.data] if many else [str(self.data)]

    def recipe(self) -> dict[str, Any]:
        """The training recipe as stored in the card (no paths, no run-control flags)."""
        skip = {"data", "out", "resume", "runs_db", "command", "device", "workers",
                "dataset_name", "init_from"}   # a warm start is in the card's init
        return {"optimizer": "AdamW", "schedule": "linear warm-up + cosine decay",
                **{k: v for k, v in asdict(self).items() if k not in skip}}


def knob_args(knobs: dict[str, Any]) -> list[str]:
    """``fvcore train`` arguments for TrainConfig fields: ``--name value``, a switch alone when
    true (``--freeze-bn``), ``--no-augment`` for ``augment=False``, in sorted order."""
    args: list[str] = []
    for key, value in sorted(knobs.items()):
        if isinstance(value, bool):
            args += [f"--{key.replace('_', '-')}"] if value else (
                ["--no-augment"] if key == "augment" else [])
        else:
            args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def within(name: str, prefix: str) -> bool:
    """Whether the parameter or module ``name`` is ``prefix`` or inside it (``""``: everything)."""
    return prefix == "" or name == prefix or name.startswith(prefix + ".")


def configure_finetuning(model: nn.Module, arch: str, mode: str) -> None:
    """Freeze what ``mode`` says: ``head`` trains the head only, ``partial`` also the last stage."""
    if mode not in FINETUNE_MODES:
        raise FvError(f"unknown --finetune {mode!r}; choose one of {', '.join(FINETUNE_MODES)}")
    spec = get_spec(arch)
    trainable = {"head": (spec.head_prefix,), "partial": (spec.head_prefix, *spec.last_stage),
                 "full": ("",)}[mode]
    for name, param in model.named_parameters():
        param.requires_grad_(any(within(name, p) for p in trainable))


def frozen_batchnorms(model: nn.Module, arch: str, config: TrainConfig) -> list[nn.Module]:
    """The BatchNorm layers whose running statistics must not move while training: those with no
    trainable parameters (a frozen backbone's), and with ``freeze_bn`` every one outside the head.
    Strong augmentation and CutMix/MixUp otherwise replace a pretrained backbone's statistics of
    real photos with those of augmented ones within an epoch (momentum 0.1), which shifts every
    feature the head (or an LP-FT probe) was fitted on."""
    head = get_spec(arch).head_prefix
    return [module for name, module in model.named_modules()
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and (
                not any(p.requires_grad for p in module.parameters())
                or (config.freeze_bn and not within(name, head)))]


def param_groups(model: nn.Module, arch: str, config: TrainConfig, pretrained: bool) -> list[dict]:
    """AdamW groups: head vs backbone (lower lr when pretrained), no decay on biases and norms."""
    head = get_spec(arch).head_prefix
    scale = config.backbone_lr_scale if pretrained else 1.0
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            groups.setdefault((within(name, head), param.ndim <= 1), []).append(param)
    return [{"params": params, "lr": config.lr * (1.0 if is_head else scale),
             "weight_decay": 0.0 if no_decay else config.weight_decay}
            for (is_head, no_decay), params in sorted(groups.items())]


def warmup_cosine(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """LR factor per step: linear warm-up, then cosine decay to 1% of the peak."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))
    return factor

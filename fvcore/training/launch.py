"""Starting a training process (:func:`launch`): the options checked before any work, the
``torchrun`` process group joined, the output folder and its log opened, every generator seeded.
:class:`Run` holds what the later phases of :func:`fvcore.training.trainer.train` share."""
from __future__ import annotations

import logging
import os
import platform
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from fvcore.checkpoints.card import ModelCard
from fvcore.checkpoints.catalog import CARD, TRAIN_STATE
from fvcore.checkpoints.folder import remove_temp_files
from fvcore.errors import FvError
from fvcore.models.registry import ArchSpec, get_spec
from fvcore.training.augment import check_augmentation
from fvcore.training.recipe import TrainConfig
from fvcore.training.state import check_select_by
from fvcore.training.steps import pick_device
from fvcore.training.steps import world as process_world


@dataclass(frozen=True)
class Run:
    """This process's part in a run: rank and world size, device, output folder and its log, the
    architecture's facts, and the training and test image sizes."""

    rank: int
    world: int
    device: torch.device
    out: Path
    log: logging.Logger
    spec: ArchSpec
    size: int
    eval_size: int

    @property
    def hardware(self) -> str:
        """What trains the model, for the card: the GPU's name, or the CPU and its threads."""
        if self.device.type == "cuda":
            return f"{torch.cuda.get_device_name(self.device)} (CUDA)"
        threads = torch.get_num_threads()
        return (f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                f"{threads} torch thread{'' if threads == 1 else 's'}")


def launch(config: TrainConfig) -> Run:
    """Check the options, join the process group under torchrun, open the output folder and its
    log (clearing temporary files of a killed run) and seed every generator."""
    check_augmentation(config.augment_policy, config.mix)
    check_select_by(config.select_by)
    spec = get_spec(config.arch)
    size = config.image_size or spec.input_size
    eval_size = eval_crop(config, size)
    rank, world = process_world()
    device = pick_device(config.device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
    out = Path(config.out)
    check_resume(config, out)
    out.mkdir(parents=True, exist_ok=True)
    log = _logger(out, rank)
    if rank == 0 and (stale := remove_temp_files(out)):
        log.info(f"removed {len(stale)} temporary file(s) left by an interrupted run")
    _seed_everything(config.seed)
    return Run(rank, world, device, out, log, spec, size, eval_size)


def check_resume(config: TrainConfig, out: Path) -> None:
    """A clear one-line error when ``--resume`` would continue a run under a different
    ``--select-by`` than it started with: the saved best score (a loss, or a negated accuracy)
    would be compared with the other kind, and the best checkpoint on disk was chosen by the other
    criterion. The started run's choice is read from its card (written at its first best epoch; a
    card without one selected by the validation loss)."""
    if not (config.resume and (out / TRAIN_STATE).is_dir() and (out / CARD).is_file()):
        return
    try:
        started = ModelCard.read(out).recipe.get("select_by", "val_loss")
    except FvError:
        return   # a broken card is reported by the resume itself, which reads it too
    if started != config.select_by:
        raise FvError(f"{out} started with --select-by {started}; resume it with the same, or "
                      f"train into a new --out")


def eval_crop(config: TrainConfig, size: int) -> int:
    """The test-time crop: the training size unless ``eval_size`` asks for a larger one (a CNN
    trained on random crops sees objects bigger than a centre crop shows them; testing at a
    higher resolution matches them again -- Touvron et al., "Fixing the train-test resolution
    discrepancy", 2019). Transformers keep their training size (fixed position embeddings)."""
    eval_size = config.eval_size or size
    if eval_size != size and get_spec(config.arch).reshape is not None:
        raise FvError(f"{config.arch} is evaluated at its training size ({size} px); drop "
                      "--eval-size")
    if config.eval_resize is not None and config.eval_resize < eval_size:
        raise FvError(f"--eval-resize {config.eval_resize} is smaller than the crop {eval_size}")
    return eval_size


def _logger(out: Path, rank: int) -> logging.Logger:
    """The run's logger: ``train.log`` and the console on rank 0, silent elsewhere."""
    log = logging.getLogger(f"fvcore.training.{out}")
    log.setLevel(logging.INFO)
    log.propagate = False
    if rank == 0 and not log.handlers:
        handler = logging.FileHandler(out / "train.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        log.addHandler(handler)
        console = logging.StreamHandler()
        console.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(console)
    return log


def _seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)

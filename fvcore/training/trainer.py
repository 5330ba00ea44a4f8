"""``train(config)``: one whole training run from data folder to finished checkpoint folder.

The run writes, under ``out/``: the best-by-validation checkpoint (every time validation improves,
atomically, so a kill never leaves a broken one), ``train.log``, and ``.train/last.pt`` (the resume
state, deleted when the run finishes). Only rank 0 writes when run under ``torchrun``.
"""
from __future__ import annotations

import logging
import os
import platform
import random
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Subset, TensorDataset
from torch.utils.data.distributed import DistributedSampler

from fvcore.checkpoints.card import ModelCard
from fvcore.checkpoints.catalog import HISTORY, TRAIN_STATE
from fvcore.checkpoints.folder import atomic_write, remove_temp_files, rows_to_csv, save_checkpoint
from fvcore.checkpoints.history import HISTORY_COLUMNS
from fvcore.datasets.folders import DataSplits, load_splits
from fvcore.errors import FvError
from fvcore.evaluation.calibration import summary
from fvcore.evaluation.evaluate import calibrate_and_test
from fvcore.inference.loading import load_checkpoint
from fvcore.inference.presets import EvalPreset
from fvcore.models.cost import count_flops, count_params
from fvcore.models.registry import create_model, get_spec, get_submodule
from fvcore.training import runs
from fvcore.training.augment import TrainPreset, batch_mixer, check_augmentation
from fvcore.training.data import ImageListDataset
from fvcore.training.recipe import TrainConfig, configure_finetuning, param_groups, warmup_cosine
from fvcore.training.steps import evaluate_loader, pick_device, train_one_epoch
from fvcore.training.steps import world as process_world

STATE = Path(TRAIN_STATE) / "last.pt"


def _logger(out: Path, rank: int) -> logging.Logger:
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


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    threads = torch.get_num_threads()
    return (f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"{threads} torch thread{'' if threads == 1 else 's'}")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _head_features(model: nn.Module, arch: str, dataset, device, batch_size: int) -> TensorDataset:
    """Inputs of the head for every image, computed once (head-only training without
    augmentation: the frozen backbone then never runs again)."""
    head = get_submodule(model, get_spec(arch).head_prefix)
    feats: list[torch.Tensor] = []
    hook = head.register_forward_pre_hook(lambda m, args: feats.append(args[0].detach().cpu()))
    labels = []
    model.eval()
    try:
        with torch.no_grad():
            for images, y in DataLoader(dataset, batch_size=batch_size):
                model(images.to(device))
                labels.append(y)
    finally:
        hook.remove()
    return TensorDataset(torch.cat(feats), torch.cat(labels))


def _eval_size(config: TrainConfig, size: int) -> int:
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


def _state(model, optimizer, scheduler, epoch, best, bad, history, run_id, elapsed) -> dict:
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "epoch": torch.tensor(epoch),
            "best_loss": torch.tensor(best), "bad_epochs": torch.tensor(bad),
            "history": history, "run_id": run_id, "elapsed": torch.tensor(elapsed),
            "rng_torch": torch.get_rng_state(), "rng_numpy": np.random.get_state()[1].tolist(),
            "rng_python": list(random.getstate()[1])}


def _save_state(out: Path, state: dict) -> None:
    import io
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(out / STATE, buffer.getvalue())


def train(config: TrainConfig) -> Optional[ModelCard]:
    """Run the whole recipe; returns the finished card on rank 0 (None on other ranks)."""
    check_augmentation(config.augment_policy, config.mix)
    spec = get_spec(config.arch)
    size = config.image_size or spec.input_size
    eval_size = _eval_size(config, size)
    rank, world = process_world()
    device = pick_device(config.device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    log = _logger(out, rank)
    if rank == 0 and (stale := remove_temp_files(out)):
        log.info(f"removed {len(stale)} temporary file(s) left by an interrupted run")
    _seed_everything(config.seed)
    data = load_splits(config.data, val_fraction=config.val_fraction, seed=config.seed)
    resume = config.resume and (out / STATE).is_file()
    if config.resume and not resume and (out / "card.json").is_file():
        finished = ModelCard.read(out)
        if finished.metrics:
            print(f"{out} already finished (best epoch {finished.best_epoch}); nothing to resume")
            return finished if rank == 0 else None
    model, init = create_model(config.arch, len(data.classes), image_size=size,
                               pretrained="none" if resume else config.pretrained)
    if resume:  # the initialisation label survives in the best checkpoint's card
        init = ModelCard.read(out).init if (out / "card.json").is_file() else init
    pretrained = not init.startswith("none")
    configure_finetuning(model, config.arch, config.finetune)
    model = model.to(device).to(memory_format=torch.channels_last)
    eval_preset = EvalPreset(crop_size=eval_size, resize_size=config.eval_resize,
                             mean=spec.mean, std=spec.std)
    train_tf = TrainPreset(crop_size=size, mean=spec.mean, std=spec.std,
                           policy=config.augment_policy) if config.augment else eval_preset
    keep = round(size / 0.875) if size < 200 else None  # from-scratch small sizes: shrink once
    train_ds = ImageListDataset(data.splits["train"], train_tf, keep_size=keep)
    val_ds = ImageListDataset(data.splits["validation"], eval_preset, keep_size=keep)
    cached = config.finetune == "head" and not config.augment
    trained: nn.Module = model
    if cached:
        train_ds = _head_features(model, config.arch, train_ds, device, config.batch_size)
        val_ds = _head_features(model, config.arch, val_ds, device, config.batch_size)
        trained = get_submodule(model, spec.head_prefix)
    net = DistributedDataParallel(trained) if world > 1 else trained
    sampler = DistributedSampler(train_ds, world, rank, shuffle=True, seed=config.seed) \
        if world > 1 else None
    generator = torch.Generator()
    loader_args = {"batch_size": config.batch_size, "num_workers": config.workers,
                   "pin_memory": device.type == "cuda", "persistent_workers": config.workers > 0}
    train_loader = DataLoader(train_ds, shuffle=sampler is None, sampler=sampler,
                              generator=generator,
                              drop_last=len(train_ds) > config.batch_size * world,
                              **loader_args)
    val_loader = DataLoader(Subset(val_ds, range(rank, len(val_ds), world)), **loader_args)
    optimizer = torch.optim.AdamW(param_groups(model, config.arch, config, pretrained))
    steps = max(1, len(train_loader)) * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(round(config.warmup_epochs * len(train_loader)), steps))
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    mix = None if cached else batch_mixer(len(data.classes), config.mix)

    start_epoch, best, bad, history, run_id, elapsed = 1, float("inf"), 0, [], None, 0.0
    if resume:
        state = torch.load(out / STATE, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best = int(state["epoch"]) + 1, float(state["best_loss"])
        bad = int(state["bad_epochs"])
        history, run_id, elapsed = state["history"], state["run_id"], float(state["elapsed"])
        torch.set_rng_state(state["rng_torch"])
        log.info(f"resuming {config.arch} at epoch {start_epoch} (best val loss {best:.4f})")
    fingerprint = data.fingerprint()
    if rank == 0:
        run_id = runs.start_run(config.runs_db, arch=config.arch, dataset=data.name,
                                fingerprint=fingerprint, out=str(out), run_id=run_id,
                                args={**config.recipe(), "data": config.data, "out": config.out})
    card = ModelCard(arch=config.arch, classes=data.classes, image_size=eval_size,
                     resize_size=eval_preset.resize_size, mean=list(spec.mean), std=list(spec.std),
                     dataset=data.name, init=init, groups=data.groups,
                     recipe={**config.recipe(), "image_size": size, "eval_size": eval_size,
                             "eval_resize": eval_preset.resize_size, "pretrained_used": init,
                             "dataset_fingerprint": fingerprint},
                     command=config.command, hardware=_hardware(device),
                     params=count_params(model), flops=count_flops(model.cpu(), eval_size),
                     splits={"provenance": data.provenance, "carved": data.carved,
                             "counts": {k: len(v) for k, v in data.splits.items()}})
    model.to(device)
    try:
        stopped = False
        for epoch in range(start_epoch, config.epochs + 1):
            torch.manual_seed(config.seed * 1000 + epoch)  # same batches/augmentations on resume
            generator.manual_seed(config.seed * 1000 + epoch)
            if sampler is not None:
                sampler.set_epoch(epoch)
            tic = time.perf_counter()
            row: dict[str, Any] = {"epoch": epoch, "lr": optimizer.param_groups[-1]["lr"]}
            row.update(train_one_epoch(net, train_loader, optimizer, scheduler, criterion, device,
                                       precision=config.precision, epoch=epoch,
                                       frozen_backbone=config.finetune != "full" and not cached,
                                       progress=rank == 0, mix=mix))
            row.update(evaluate_loader(net, val_loader, criterion, device,
                                       precision=config.precision))
            row["seconds"] = round(time.perf_counter() - tic, 2)
            elapsed += row["seconds"]
            history.append(row)
            improved = row["val_loss"] < best - config.min_delta
            best, bad = (row["val_loss"], 0) if improved else (best, bad + 1)
            log.info(f"{config.arch} epoch {epoch}/{config.epochs} "
                     f"train_loss {row['train_loss']:.4f} train_acc {row['train_acc']:.4f} "
                     f"val_loss {row['val_loss']:.4f} val_acc {row['val_acc']:.4f} "
                     f"lr {row['lr']:.2e} {row['images_per_s']:.1f} img/s "
                     f"{row['seconds']:.0f}s{' *best*' if improved else ''}")
            if rank == 0:
                runs.log_epoch(config.runs_db, run_id, row)
                if improved:
                    card.best_epoch, card.epochs_run = epoch, epoch
                    save_checkpoint(out, model, card, history=history)
                else:  # history.csv always has every epoch: live curves, progress on Home
                    atomic_write(out / HISTORY, rows_to_csv(history, HISTORY_COLUMNS))
                _save_state(out, _state(model, optimizer, scheduler, epoch, best, bad, history,
                                        run_id, elapsed))
            if bad >= config.patience and epoch >= config.min_epochs:
                stopped = True
                log.info(f"early stopping: no val-loss improvement for {bad} epochs")
                break
        if world > 1:
            dist.barrier()
        if rank != 0:
            return None
        card = _finish(out, data, history, stopped, elapsed, log)
        runs.end_run(config.runs_db, run_id, "finished", final=card.metrics)
        return card
    except KeyboardInterrupt:
        if rank == 0 and run_id:
            runs.end_run(config.runs_db, run_id, "interrupted", message="stopped by the user")
        raise
    except Exception as exc:
        if rank == 0 and run_id:
            runs.end_run(config.runs_db, run_id, "failed", message=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _finish(out: Path, data: DataSplits, history: list[dict], stopped: bool, elapsed: float,
            log: logging.Logger) -> ModelCard:
    """Calibrate the best checkpoint on the validation split (temperature scaling), test it
    exactly as ``fvcore evaluate`` will, then complete its card."""
    classifier = load_checkpoint(out)
    card = classifier.card
    card.epochs_run = len(history) and history[-1]["epoch"]
    card.stopped_early = stopped
    card.training_seconds = round(elapsed, 1)
    atomic_write(out / HISTORY, rows_to_csv(history, HISTORY_COLUMNS))
    fit, _ = calibrate_and_test(classifier, data)
    log.info(summary(fit))
    (out / STATE).unlink(missing_ok=True)
    for leftover in (out / STATE.parent).glob("*"):
        leftover.unlink()
    if (out / STATE.parent).is_dir():
        (out / STATE.parent).rmdir()
    m = card.metrics
    log.info(f"test accuracy {m['accuracy']:.4f} (95% CI {m['accuracy_ci95'][0]:.3f}-"
             f"{m['accuracy_ci95'][1]:.3f}) loss {m['loss']:.4f} on {m['n_images']} images; "
             f"best epoch {card.best_epoch} of {card.epochs_run}")
    return card

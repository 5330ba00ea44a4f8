"""``train(config)``: one whole training run from data folder to finished checkpoint folder.

The run writes, under ``out/``: the best-by-validation checkpoint (every time validation improves,
atomically, so a kill never leaves a broken one), ``history.csv`` (every epoch), ``train.log``,
and ``.train/last.pt`` (the resume state of :mod:`fvcore.training.state`, deleted when the run
finishes). Only rank 0 writes when run under ``torchrun``. :func:`train` reads as its phases, each
a plain function: set up (:func:`launch`), the model (:func:`_model`), data (:func:`_data`), the
optional linear probe (:mod:`fvcore.training.probe`), optimisation (:func:`_learner`), resume
(:func:`_resume`), the card and registry entry (:func:`_begin`), the epochs (:func:`_fit`, one
:func:`_epoch` each) and the end (:func:`_finish`: calibrate, test, complete the card).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader, Subset
from torch.utils.data.distributed import DistributedSampler

from fvcore.checkpoints.card import ModelCard
from fvcore.checkpoints.catalog import CARD, HISTORY
from fvcore.checkpoints.folder import atomic_write, history_csv, save_checkpoint
from fvcore.datasets.combine import load_datasets
from fvcore.datasets.folders import DataSplits
from fvcore.evaluation.calibration import summary
from fvcore.evaluation.evaluate import calibrate_and_test
from fvcore.inference.loading import load_checkpoint
from fvcore.inference.presets import EvalPreset
from fvcore.models.cost import count_flops, count_params
from fvcore.models.registry import create_model, get_submodule
from fvcore.training import recipe, runs, steps, wise
from fvcore.training.augment import TrainPreset, batch_mixer
from fvcore.training.data import ImageListDataset, head_features
from fvcore.training.launch import Run, launch
from fvcore.training.probe import check_transfer, probe_head
from fvcore.training.recipe import TrainConfig, configure_finetuning, param_groups, warmup_cosine
from fvcore.training.state import STATE, Progress, clear_state, load_state, save_state
from fvcore.training.warmstart import warm_start


@dataclass(frozen=True)
class Data:
    """The splits and what feeds them to the model: both loaders, the sampler (torchrun) and the
    generator each epoch seeds, the eval preset, whether inputs are cached head features, and
    (several dataset folders) which folder each of this rank's validation images came from."""

    splits: DataSplits
    train: DataLoader
    val: DataLoader
    sampler: Optional[DistributedSampler]
    generator: torch.Generator
    eval_preset: EvalPreset
    cached: bool
    val_domains: Optional[steps.Domains] = None


@dataclass(frozen=True)
class Learner:
    """The model and what trains it: ``net`` is the module the loop runs (the head alone on
    cached features, wrapped in DDP under torchrun); AdamW, its schedule, the loss, the batch
    mixer, and the BatchNorm layers whose running statistics stay as they are."""

    model: nn.Module
    net: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: LambdaLR
    criterion: nn.Module
    mix: Optional[Callable]
    frozen_bn: list[nn.Module]


def train(config: TrainConfig) -> Optional[ModelCard]:
    """Run the whole recipe; returns the finished card on rank 0 (None on other ranks)."""
    run = launch(config)
    splits = load_datasets(config.folders, name=config.dataset_name,
                           val_fraction=config.val_fraction, seed=config.seed)
    resume = config.resume and (run.out / STATE).is_file()
    if config.resume and not resume and (finished := _finished_card(run.out)) is not None:
        return finished if run.rank == 0 else None
    model, init = _model(run, config, splits, resume)
    check_transfer(config, pretrained=not init.startswith("none"))
    data = _data(run, config, splits, model)
    if config.probe_epochs and not resume:   # LP-FT: the head first learns on frozen features
        init += probe_head(model, run, config, data.train.dataset, data.val.dataset,
                           data.eval_preset, data.val_domains)
    learner = _learner(run, config, data, model, pretrained=not init.startswith("none"))
    progress = _resume(run, config, learner) if resume else Progress()
    card = _begin(run, config, data, learner, init, progress)
    try:
        stopped = _fit(run, config, data, learner, card, progress)
        return _finish(run, config, data, progress, stopped)
    except KeyboardInterrupt:
        _end_run(run, config, progress, "interrupted", "stopped by the user")
        raise
    except Exception as exc:
        _end_run(run, config, progress, "failed", f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if run.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _finished_card(out: Path) -> Optional[ModelCard]:
    """The card of a run that already finished in ``out`` (``--resume`` then has nothing to do)."""
    card = ModelCard.read(out) if (out / CARD).is_file() else None
    if card is None or not card.metrics:
        return None
    print(f"{out} already finished (best epoch {card.best_epoch}); nothing to resume")
    return card


def _model(run: Run, config: TrainConfig, splits: DataSplits,
           resume: bool) -> tuple[nn.Module, str]:
    """The model on the device, frozen as ``--finetune`` says, and its initialisation label (a
    warm start names its source checkpoint; a resumed run keeps the label of its best
    checkpoint's card)."""
    warm = config.init_from and not resume
    model, init = create_model(config.arch, len(splits.classes), image_size=run.size,
                               pretrained="none" if resume or warm else config.pretrained)
    if warm:
        init = warm_start(model, config.arch, splits.classes, config.init_from)
    if resume and (run.out / CARD).is_file():
        init = ModelCard.read(run.out).init
    configure_finetuning(model, config.arch, config.finetune)
    return model.to(run.device).to(memory_format=torch.channels_last), init


def _data(run: Run, config: TrainConfig, splits: DataSplits, model: nn.Module) -> Data:
    """Datasets and loaders: head inputs cached once when only the head trains without
    augmentation; training batches sharded by the sampler, validation images by rank."""
    spec = run.spec
    eval_preset = EvalPreset(crop_size=run.eval_size, resize_size=config.eval_resize,
                             mean=spec.mean, std=spec.std)
    train_tf = TrainPreset(crop_size=run.size, mean=spec.mean, std=spec.std,
                           policy=config.augment_policy) if config.augment else eval_preset
    keep = round(run.size / 0.875) if run.size < 200 else None  # from-scratch small sizes
    train_ds = ImageListDataset(splits.splits["train"], train_tf, keep_size=keep)
    val_ds = ImageListDataset(splits.splits["validation"], eval_preset, keep_size=keep)
    cached = config.finetune == "head" and not config.augment
    if cached:
        train_ds = head_features(model, spec.head_prefix, train_ds, run.device, config.batch_size)
        val_ds = head_features(model, spec.head_prefix, val_ds, run.device, config.batch_size)
    sampler = DistributedSampler(train_ds, run.world, run.rank, shuffle=True,
                                 seed=config.seed) if run.world > 1 else None
    generator = torch.Generator()
    loader_args = {"batch_size": config.batch_size, "num_workers": config.workers,
                   "pin_memory": run.device.type == "cuda",
                   "persistent_workers": config.workers > 0}
    train_loader = DataLoader(train_ds, shuffle=sampler is None, sampler=sampler,
                              generator=generator,
                              drop_last=len(train_ds) > config.batch_size * run.world,
                              **loader_args)
    val_loader = DataLoader(Subset(val_ds, range(run.rank, len(val_ds), run.world)),
                            **loader_args)
    return Data(splits, train_loader, val_loader, sampler, generator, eval_preset, cached,
                steps.validation_domains(splits, run.rank, run.world))


def _learner(run: Run, config: TrainConfig, data: Data, model: nn.Module, *,
             pretrained: bool) -> Learner:
    """AdamW over the trainable parameters with warm-up + cosine decay per step, the loss, and
    CutMix/MixUp (never on cached features)."""
    trained = get_submodule(model, run.spec.head_prefix) if data.cached else model
    optimizer = torch.optim.AdamW(param_groups(model, config.arch, config, pretrained))
    steps = max(1, len(data.train)) * config.epochs
    warmup = round(config.warmup_epochs * len(data.train))
    return Learner(
        model=model, net=DistributedDataParallel(trained) if run.world > 1 else trained,
        optimizer=optimizer, scheduler=LambdaLR(optimizer, warmup_cosine(warmup, steps)),
        criterion=nn.CrossEntropyLoss(label_smoothing=config.label_smoothing),
        mix=None if data.cached else batch_mixer(len(data.splits.classes), config.mix),
        frozen_bn=[] if data.cached else recipe.frozen_batchnorms(model, config.arch, config))


def _resume(run: Run, config: TrainConfig, learner: Learner) -> Progress:
    """Continue from the resume state: weights, optimizer, schedule, generator and progress."""
    progress = load_state(run.out, learner.model, learner.optimizer, learner.scheduler,
                          run.device)
    run.log.info(f"resuming {config.arch} at epoch {progress.epoch + 1} "
                 f"(best {config.select_by} {abs(progress.best_loss):.4f})")
    return progress


def _begin(run: Run, config: TrainConfig, data: Data, learner: Learner, init: str,
           progress: Progress) -> ModelCard:
    """Record the run in the registry (rank 0; a resumed run keeps its id) and start its card:
    data, recipe, splits, hardware, size and cost of the model."""
    splits, model, resize = data.splits, learner.model, data.eval_preset.resize_size
    fingerprint = splits.fingerprint()
    if run.rank == 0:
        progress.run_id = runs.start_run(
            config.runs_db, arch=config.arch, dataset=splits.name, fingerprint=fingerprint,
            out=str(run.out), run_id=progress.run_id,
            args={**config.recipe(), "data": config.data, "out": config.out})
    card = ModelCard(arch=config.arch, classes=splits.classes, image_size=run.eval_size,
                     resize_size=resize, mean=list(run.spec.mean), std=list(run.spec.std),
                     dataset=splits.name, init=init, groups=splits.groups,
                     recipe={**config.recipe(), "image_size": run.size,
                             "eval_size": run.eval_size, "eval_resize": resize,
                             "pretrained_used": init, "dataset_fingerprint": fingerprint},
                     command=config.command, hardware=run.hardware,
                     params=count_params(model), flops=count_flops(model.cpu(), run.eval_size),
                     splits={"provenance": splits.provenance, "carved": splits.carved,
                             "counts": {k: len(v) for k, v in splits.splits.items()},
                             "sources": {s.name: {"counts": s.counts, "provenance": s.provenance}
                                         for s in splits.sources}})
    model.to(run.device)
    return card


def _fit(run: Run, config: TrainConfig, data: Data, learner: Learner, card: ModelCard,
         progress: Progress) -> bool:
    """The epochs after the last finished one; True when early stopping ended them."""
    for epoch in range(progress.epoch + 1, config.epochs + 1):
        if _epoch(run, config, data, learner, card, progress, epoch):
            return True
    return False


def _epoch(run: Run, config: TrainConfig, data: Data, learner: Learner, card: ModelCard,
           progress: Progress, epoch: int) -> bool:
    """Train and validate one epoch, log it, save the checkpoint if it is the best, the history
    and the resume state (rank 0); True when early stopping ends the run here."""
    torch.manual_seed(config.seed * 1000 + epoch)  # same batches/augmentations on resume
    data.generator.manual_seed(config.seed * 1000 + epoch)
    if data.sampler is not None:
        data.sampler.set_epoch(epoch)
    tic = time.perf_counter()
    row: dict[str, Any] = {"epoch": epoch, "lr": learner.optimizer.param_groups[-1]["lr"]}
    row.update(steps.train_one_epoch(
        learner.net, data.train, learner.optimizer, learner.scheduler, learner.criterion,
        run.device, precision=config.precision, epoch=epoch,
        frozen_bn=learner.frozen_bn, progress=run.rank == 0, mix=learner.mix))
    row.update(steps.evaluate_loader(learner.net, data.val, learner.criterion, run.device,
                                     precision=config.precision, domains=data.val_domains))
    row["seconds"] = round(time.perf_counter() - tic, 2)
    improved = progress.record(row, config.min_delta, config.select_by)
    run.log.info(f"{config.arch} epoch {epoch}/{config.epochs} "
                 f"train_loss {row['train_loss']:.4f} train_acc {row['train_acc']:.4f} "
                 f"val_loss {row['val_loss']:.4f} val_acc {row['val_acc']:.4f} "
                 f"lr {row['lr']:.2e} {row['images_per_s']:.1f} img/s "
                 f"{row['seconds']:.0f}s{' *best*' if improved else ''}"
                 f"{steps.domain_note(row)}")
    if run.rank == 0:
        runs.log_epoch(config.runs_db, progress.run_id, row)
        if improved:
            card.best_epoch, card.epochs_run = epoch, epoch
            save_checkpoint(run.out, learner.model, card, history=progress.history)
        else:  # history.csv always has every epoch: live curves, progress on Home
            atomic_write(run.out / HISTORY, history_csv(progress.history))
        save_state(run.out, learner.model, learner.optimizer, learner.scheduler, progress)
    stop = progress.bad_epochs >= config.patience and epoch >= config.min_epochs
    if stop:
        run.log.info(f"early stopping: no {config.select_by} improvement for "
                     f"{progress.bad_epochs} epochs")
    return stop


def _finish(run: Run, config: TrainConfig, data: Data, progress: Progress,
            stopped: bool) -> Optional[ModelCard]:
    """Wait for every rank; then, on rank 0, calibrate the best checkpoint on the validation split
    (temperature scaling), test it exactly as ``fvcore evaluate`` will (on each test domain and
    on all together), complete its card, delete the resume state and mark the run finished."""
    if run.world > 1:
        dist.barrier()
    if run.rank != 0:
        return None
    if config.wise:   # the full validation split, not this rank's share
        wise.apply_wise(run, config, data.splits, data.val.dataset.dataset)
    classifier = load_checkpoint(run.out)
    card, history = classifier.card, progress.history
    card.epochs_run = len(history) and history[-1]["epoch"]
    card.stopped_early, card.training_seconds = stopped, round(progress.elapsed, 1)
    atomic_write(run.out / HISTORY, history_csv(history))
    fit, _ = calibrate_and_test(classifier, data.splits)
    run.log.info(summary(fit))
    clear_state(run.out)
    m = card.metrics
    run.log.info(f"test accuracy {m['accuracy']:.4f} (95% CI {m['accuracy_ci95'][0]:.3f}-"
                 f"{m['accuracy_ci95'][1]:.3f}) loss {m['loss']:.4f} on {m['n_images']} images; "
                 f"best epoch {card.best_epoch} of {card.epochs_run}")
    for domain, d in (card.metrics_by_split if len(card.metrics_by_split) > 1 else {}).items():
        run.log.info(f"  of which {domain}: test accuracy {d['accuracy']:.4f} loss "
                     f"{d['loss']:.4f} on {d['n_images']} images")
    runs.end_run(config.runs_db, progress.run_id, "finished", final=card.metrics)
    return card


def _end_run(run: Run, config: TrainConfig, progress: Progress, status: str,
             message: str) -> None:
    """Mark the registry entry interrupted or failed (rank 0, once the run is recorded)."""
    if run.rank == 0 and progress.run_id:
        runs.end_run(config.runs_db, progress.run_id, status, message=message)

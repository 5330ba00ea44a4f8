"""Linear probe, then fine-tune (LP-FT): before a pretrained backbone is fine-tuned, its new head is
first fitted on the frozen backbone's features, so that the first fine-tuning steps do not push a
random head's large gradients back into the pretrained features. Kumar et al., "Fine-Tuning can
Distort Pretrained Features and Underperform Out-of-Distribution" (ICLR 2022), found that this keeps
more of what the backbone knew about images unlike the training set. Here: ``--probe-epochs N``.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader, Dataset

from fvcore.errors import FvError
from fvcore.inference.presets import EvalPreset
from fvcore.models.registry import get_submodule
from fvcore.training import steps
from fvcore.training.data import ImageListDataset, head_features
from fvcore.training.launch import Run
from fvcore.training.recipe import TrainConfig, warmup_cosine
from fvcore.training.wise import save_probe

PROBE_LR = 1e-3   # the head's peak learning rate on frozen features (cosine decay, no warm-up)


def check_transfer(config: TrainConfig, pretrained: bool) -> None:
    """Refuse a probe or frozen statistics that mean nothing: on a random backbone (no features
    worth a probe, no statistics worth keeping), or a probe when the whole run already is one
    (``--finetune head --no-augment``)."""
    if config.probe_epochs < 0:
        raise FvError(f"--probe-epochs must be 0 or more, not {config.probe_epochs}")
    for asked, flag in ((config.probe_epochs > 0, "--probe-epochs"),
                        (config.freeze_bn, "--freeze-bn")):
        if asked and not pretrained:
            raise FvError(f"{flag} needs a pretrained backbone (--pretrained imagenet or a "
                          "weights file); a random backbone has no features or statistics to keep")
    if config.wise and not config.probe_epochs:
        raise FvError("--wise mixes the fine-tuned weights with the probe's: it needs "
                      "--probe-epochs")
    if config.probe_epochs and config.finetune == "head" and not config.augment:
        raise FvError("--probe-epochs has nothing to add to --finetune head --no-augment, which "
                      "already trains the head on frozen features")


def probe_head(model: nn.Module, run: Run, config: TrainConfig, train: ImageListDataset,
               val: Dataset, eval_preset: EvalPreset,
               domains: Optional[steps.Domains] = None) -> str:
    """Fit the head of ``model`` in place on the frozen backbone's features of the training
    images (seen as at test time: ``eval_preset``, no augmentation) for ``config.probe_epochs``
    epochs; ``val`` is this rank's validation dataset. Logs the probe's validation loss and
    accuracy (per source with ``domains``) and returns the note the card's init gets."""
    augmenting = train.transform
    train.transform = eval_preset   # the decoded images stay cached for the fine-tuning epochs
    prefix, device = run.spec.head_prefix, run.device
    try:
        train_feats = head_features(model, prefix, train, device, config.batch_size)
    finally:
        train.transform = augmenting
    val_feats = head_features(model, prefix, val, device, config.batch_size)
    head = get_submodule(model, prefix)
    optimizer = torch.optim.AdamW(head.parameters(), lr=PROBE_LR,
                                  weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(train_feats, batch_size=config.batch_size, shuffle=True,
                        generator=generator, drop_last=len(train_feats) > config.batch_size)
    scheduler = LambdaLR(optimizer, warmup_cosine(0, len(loader) * config.probe_epochs))
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    for epoch in range(1, config.probe_epochs + 1):
        fit = steps.train_one_epoch(head, loader, optimizer, scheduler, criterion, device,
                                    precision="fp32", epoch=epoch, progress=False)
    result = steps.evaluate_loader(head, DataLoader(val_feats, batch_size=config.batch_size),
                                   criterion, device, precision="fp32", domains=domains)
    if config.wise and run.rank == 0:
        save_probe(run.out, model)
    run.log.info(f"{config.arch} linear probe: {config.probe_epochs} epochs on frozen features, "
                 f"train_acc {fit['train_acc']:.4f} val_loss {result['val_loss']:.4f} "
                 f"val_acc {result['val_acc']:.4f}{steps.domain_note(result)}")
    return (f"; head first fitted on the frozen backbone's features for {config.probe_epochs} "
            f"epochs (LP-FT), then fine-tuned")

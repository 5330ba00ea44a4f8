"""WiSE-FT: the fine-tuned weights averaged with the linear probe's they started from, the mixing
weight chosen on the validation split of each source. Wortsman et al., "Robust fine-tuning of
zero-shot models" (CVPR 2022): fine-tuning gains on the training distribution and loses elsewhere;
a point on the straight line between the two weight vectors often keeps most of both. After an
LP-FT run (``--probe-epochs``, the probe's weights kept in the resume-state folder) ``--wise``
evaluates ``alpha * tuned + (1 - alpha) * probe`` for each alpha of :data:`ALPHAS` and keeps the
one with the best mean of the sources' validation accuracies (each source counts the same, so the
smaller web-photo set is not outvoted by the shelf photos).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from fvcore.checkpoints.card import ModelCard
from fvcore.checkpoints.catalog import TRAIN_STATE
from fvcore.checkpoints.folder import build_model, save_checkpoint, save_weights
from fvcore.datasets.folders import DataSplits
from fvcore.errors import FvError
from fvcore.models.pretrained import read_state_dict
from fvcore.training import steps
from fvcore.training.launch import Run
from fvcore.training.recipe import TrainConfig

ALPHAS = (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
"""The fine-tuned share tried: 0 is the probe, 1 the fine-tuned model."""
PROBE_WEIGHTS = Path(TRAIN_STATE) / "probe.safetensors"
"""Where an LP-FT run keeps its probe's weights until the run is finished."""


@dataclass(frozen=True)
class WiseChoice:
    """The chosen fine-tuned share and every alpha's validation loss and accuracies."""

    alpha: float
    score: float                # mean of the sources' validation accuracies (or the accuracy)
    table: list[dict[str, float]]


def save_probe(out: Path, model: nn.Module) -> None:
    """Keep the probe's weights (the pretrained backbone with the fitted head) for ``--wise``."""
    save_weights(out / PROBE_WEIGHTS, model, half=False)


def mix_states(probe: dict[str, torch.Tensor], tuned: dict[str, torch.Tensor],
               alpha: float) -> dict[str, torch.Tensor]:
    """``alpha * tuned + (1 - alpha) * probe`` for floating-point tensors; the rest (counters)
    from ``tuned``. Both must have the same keys and shapes."""
    if probe.keys() != tuned.keys():
        raise FvError("the probe's and the fine-tuned weights have different keys")
    return {k: torch.lerp(probe[k].float(), t.float(), alpha) if t.is_floating_point() else t
            for k, t in tuned.items()}


def choose_alpha(model: nn.Module, probe: dict[str, torch.Tensor],
                 tuned: dict[str, torch.Tensor], val: Dataset, criterion: nn.Module,
                 device: torch.device, *, batch_size: int,
                 domains: Optional[steps.Domains] = None,
                 alphas: tuple[float, ...] = ALPHAS) -> WiseChoice:
    """Evaluate each mixture on ``val``; the best mean per-source accuracy wins (ties: the larger
    alpha, closer to what was fine-tuned). ``model`` is left holding the chosen mixture."""
    table, loader = [], DataLoader(val, batch_size=batch_size)
    for alpha in alphas:
        model.load_state_dict(mix_states(probe, tuned, alpha))
        row = steps.evaluate_loader(model, loader, criterion, device, precision="fp32",
                                    domains=domains)
        table.append({"alpha": alpha, "score": steps.mean_source_accuracy(row), **row})
    best = max(table, key=lambda r: (round(r["score"], 6), r["alpha"]))
    model.load_state_dict(mix_states(probe, tuned, best["alpha"]))
    return WiseChoice(best["alpha"], best["score"], table)


def apply_wise(run: Run, config: TrainConfig, splits: DataSplits, val: Dataset) -> WiseChoice:
    """Replace the best checkpoint of ``run.out`` by its best mixture with the probe (rank 0, at
    the end of a ``--wise`` run, before calibration and testing); its card says which alpha and
    records every alpha's validation numbers. Done once: a run resumed after a crash that came
    after the mixing (the card already records it) keeps the mixture instead of mixing again."""
    card = ModelCard.read(run.out)
    if isinstance(done := card.recipe.get("wise"), dict):
        run.log.info(f"WiSE-FT: alpha {done['alpha']} already applied")
        return WiseChoice(**done)
    if not (run.out / PROBE_WEIGHTS).is_file():
        raise FvError(f"--wise needs the probe's weights ({PROBE_WEIGHTS}), which an LP-FT run "
                      "(--probe-epochs) writes before fine-tuning", source=str(run.out))
    model = build_model(run.out, card).to(run.device)   # the best fine-tuned weights
    tuned = {k: v.clone() for k, v in model.state_dict().items()}
    probe = read_state_dict(run.out / PROBE_WEIGHTS)
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    choice = choose_alpha(model, probe, tuned, val, criterion, run.device,
                          batch_size=config.batch_size,
                          domains=steps.validation_domains(splits, 0, 1))
    for row in choice.table:
        run.log.info(f"WiSE-FT alpha {row['alpha']:.1f}: val_loss {row['val_loss']:.4f} "
                     f"val_acc {row['val_acc']:.4f}{steps.domain_note(row)}")
    run.log.info(f"WiSE-FT: alpha {choice.alpha} (mean per-source validation accuracy "
                 f"{choice.score:.4f})")
    card.init += (f"; weights {choice.alpha:g} fine-tuned + {1 - choice.alpha:g} probe "
                  "(WiSE-FT, chosen on validation)")
    card.recipe["wise"] = asdict(choice)
    save_checkpoint(run.out, model, card)
    return choice

"""A warm start: a run that begins from a finished checkpoint of the same architecture and classes
(e.g. a from-scratch model trained on one dataset, continued on that dataset plus another), and
says so in its card."""
from __future__ import annotations

from pathlib import Path

from torch import nn

from fvcore.checkpoints.card import ModelCard
from fvcore.checkpoints.catalog import WEIGHTS
from fvcore.errors import FvError
from fvcore.models.pretrained import read_state_dict


def warm_start(model: nn.Module, arch: str, classes: list[str], folder: str | Path) -> str:
    """Load the weights of the checkpoint ``folder`` into ``model`` (strictly: same architecture,
    same classes in the same order, same shapes) and return the new run's initialisation label:
    the source's own (``imagenet ...`` or ``none ...``, so an ImageNet lineage stays visible)
    followed by where the warm start came from."""
    folder = Path(folder)
    card = ModelCard.read(folder)
    if card.arch != arch:
        raise FvError(f"cannot warm-start {arch} from a {card.arch} checkpoint", source=str(folder))
    if card.classes != classes:
        missing = sorted(set(classes) - set(card.classes))
        extra = sorted(set(card.classes) - set(classes))
        detail = (f"missing {', '.join(missing[:5]) or '-'}; extra {', '.join(extra[:5]) or '-'}"
                  if missing or extra else "same names in another order")
        raise FvError(f"cannot warm-start: the checkpoint's classes differ from the data's "
                      f"({detail})", source=str(folder))
    state = read_state_dict(folder / WEIGHTS)
    reference = model.state_dict()
    state = {k: v.to(reference[k].dtype) if k in reference else v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = str(exc).split("\n\t")[1] if "\n\t" in str(exc) else str(exc)
        raise FvError(f"cannot warm-start {arch}: {detail[:200]}", source=str(folder)) from None
    trained = f"{card.epochs_run} epochs" if card.epochs_run else "a finished run"
    return (f"{card.init}; warm-started from the {card.dataset} checkpoint {folder.name} "
            f"({trained} on {card.dataset} only)")

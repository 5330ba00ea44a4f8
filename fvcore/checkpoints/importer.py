"""Import a notebook's ``best_model.pth`` (a plain state dict) as a checkpoint folder."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

from fvcore.checkpoints.card import ModelCard
from fvcore.checkpoints.folder import save_checkpoint
from fvcore.errors import FvError
from fvcore.models.cost import count_flops, count_params
from fvcore.models.pretrained import read_state_dict
from fvcore.models.registry import create_model, get_spec


def read_classes(path: str | Path) -> list[str]:
    """Class names, one per line (blank lines ignored), in output order."""
    path = Path(path)
    if not path.is_file():
        raise FvError("classes file not found", source=str(path))
    lines = path.read_text(encoding="utf-8").splitlines()
    classes = [line.strip() for line in lines if line.strip()]
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise FvError("classes file must list 2+ distinct names, one per line", source=str(path))
    return classes


def import_state_dict(weights: str | Path, *, arch: str, classes_file: str | Path,
                      out: str | Path, image_size: Optional[int] = None,
                      dataset: str = "imported") -> Path:
    """Read ``weights`` with ``torch.load(weights_only=True)`` (never a full unpickle), load it
    strictly into ``arch`` with our head, and write a checkpoint folder."""
    spec = get_spec(arch)
    classes = read_classes(classes_file)
    with warnings.catch_warnings():
        # torch remarks on a pickle before refusing it ("Detected pickle protocol 4 ..."): our
        # one-line FvError says all the user needs
        warnings.filterwarnings("ignore", module=r"torch\.")
        state = read_state_dict(weights)
    size = image_size or spec.input_size
    model, _ = create_model(arch, len(classes), image_size=size)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = str(exc).split("\n\t")[1] if "\n\t" in str(exc) else str(exc)
        raise FvError(f"weights do not fit {arch} with {len(classes)} classes: {detail[:200]}",
                      source=str(weights)) from None
    card = ModelCard(arch=arch, classes=classes, image_size=size, mean=list(spec.mean),
                     std=list(spec.std), dataset=dataset, init=f"imported:{Path(weights).name}",
                     params=count_params(model), flops=count_flops(model, size),
                     notes=f"imported from {Path(weights).name} with fvcore import-pth")
    return save_checkpoint(out, model, card, half=False)

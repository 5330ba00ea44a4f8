"""The Import page's work: an uploaded notebook state dict becomes a checkpoint of a dataset's
group (self-checked by :func:`fvcore.inference.importing.import_state_dict`), optionally
evaluated on that dataset's test split, and listed by every page at once. Only the Import page
imports this module (it needs torch)."""
from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from fvcore import settings
from fvcore.app import cache
from fvcore.checkpoints.importer import Preprocessing, check_classes
from fvcore.datasets.folders import load_splits
from fvcore.errors import FvError
from fvcore.evaluation.evaluate import evaluate_predictions, predict_samples, save_evaluation
from fvcore.inference.importing import ImportResult, import_state_dict
from fvcore.inference.loading import load_checkpoint
from fvcore.models.registry import list_archs


@dataclass(frozen=True)
class Dataset:
    """A dataset folder under the data roots: its name, folder and (train/) class names."""

    name: str
    path: Path
    classes: list[str]


def known_datasets() -> dict[str, Dataset]:
    """Every folder with a ``train/`` of class folders under ``$FVCORE_DATA`` (or such a root
    itself), by name."""
    found: dict[str, Dataset] = {}
    for root in settings.data_roots():
        folders = sorted(p for p in root.iterdir() if (p / "train").is_dir()) \
            if root.is_dir() else []
        folders = [root] if (root / "train").is_dir() else folders
        for folder in folders:
            classes = sorted(d.name for d in (folder / "train").iterdir()
                             if d.is_dir() and not d.name.startswith("."))
            if len(classes) >= 2:
                found.setdefault(folder.name, Dataset(folder.name, folder, classes))
    return found


def arch_choices() -> list[str]:
    """The architecture menu: the registry (torchvision/timm twins accepted) first."""
    return list_archs()


def parse_triple(text: str, what: str) -> tuple[float, float, float]:
    """``"0.485, 0.456, 0.406"`` -> three floats (FvError naming the field otherwise)."""
    try:
        values = tuple(float(v) for v in re.split(r"[,\s]+", text.strip()) if v)
    except ValueError:
        values = ()
    if len(values) != 3:
        raise FvError(f"{what} must be three numbers, e.g. 0.485, 0.456, 0.406")
    return values  # type: ignore[return-value]


def classes_from_text(data: bytes, name: str) -> list[str]:
    """Class names from an uploaded text file, one per line."""
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise FvError("classes file is not UTF-8 text", source=name) from None
    return check_classes([line.strip() for line in lines if line.strip()], name)


def free_folder(parent: Path, base: str) -> Path:
    """``parent/base``, or ``base-2``, ``base-3``... when taken."""
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-.") or "imported"
    folder, n = parent / base, 2
    while folder.exists():
        folder, n = parent / f"{base}-{n}", n + 1
    return folder


def import_upload(data: bytes, filename: str, *, root: Path, group: str, arch: str,
                  classes: Sequence[str], preprocessing: Preprocessing,
                  activation: str = "relu", half: bool = False) -> ImportResult:
    """Import an uploaded state dict as ``root/<group>/<arch>-imported`` (a free name); nothing
    is written when anything fails."""
    if not group.strip() or "/" in group or group.startswith("."):
        raise FvError(f"dataset group {group!r} must be a plain folder name")
    out = free_folder(root / group.strip(), f"{arch.replace(':', '-')}-imported")
    with tempfile.TemporaryDirectory(prefix="fvcore-import-") as tmp:
        weights = Path(tmp) / (Path(filename).name or "best_model.pth")
        weights.write_bytes(data)
        result = import_state_dict(weights, arch=arch.strip(), classes=classes, out=out,
                                   preprocessing=preprocessing, activation=activation,
                                   half=half, dataset=group.strip())
    cache.forget_scans()
    return result


def evaluate_on_test(path: Path, dataset: Dataset,
                     progress: Optional[Callable[[int, int], None]] = None) -> dict:
    """Evaluate an imported checkpoint on ``dataset``'s test split and save the results into
    its folder (``predictions.csv`` and the card's metrics, groups from the dataset)."""
    classifier = load_checkpoint(path)
    data = load_splits(dataset.path)
    index = {c: i for i, c in enumerate(classifier.classes)}
    unknown = [c for c in data.classes if c not in index]
    if unknown:
        raise FvError(f"the model does not know the classes {', '.join(unknown[:5])} of "
                      f"{dataset.name}", source=str(path))
    samples = [(p, index[data.classes[label]]) for p, label in data.splits["test"]]
    preds = predict_samples(classifier, samples, root=data.root, progress=progress)
    classifier.card.groups = {c: g for c, g in data.groups.items() if c in index}
    full = evaluate_predictions(preds, classifier.card.groups)
    save_evaluation(classifier, preds, full, dataset=classifier.card.dataset)
    cache.forget_scans()
    return full

"""The model card: everything about a checkpoint except its weights, stored as ``card.json``."""
from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from fvcore.errors import CheckpointError, FvError
from fvcore.models.foreign import check_builder, is_foreign

SCHEMA_VERSION = 1
"""Fields added with a default (``metrics_by_split``) keep the version: older cards load with the
default, and older readers skip fields they do not know."""


@dataclass
class ModelCard:
    """The parsed ``card.json`` of a checkpoint folder."""

    arch: str
    classes: list[str]
    image_size: int
    mean: list[float]
    std: list[float]
    dataset: str = "unknown"
    init: str = "none (random init, trained from scratch)"
    resize_size: Optional[int] = None
    groups: dict[str, str] = field(default_factory=dict)   # class -> group (fruit/vegetable)
    recipe: dict[str, Any] = field(default_factory=dict)   # optimiser, lr, epochs, fine-tuning...
    command: str = ""
    best_epoch: Optional[int] = None
    epochs_run: Optional[int] = None
    stopped_early: Optional[bool] = None
    training_seconds: Optional[float] = None
    hardware: str = ""
    params: Optional[int] = None
    flops: Optional[int] = None
    metrics: dict[str, Any] = field(default_factory=dict)  # test: accuracy, loss, n_images, ...
    # the same per test domain (the dataset folder test images came from): {domain: metrics}
    metrics_by_split: dict[str, dict[str, Any]] = field(default_factory=dict)
    temperature: float = 1.0   # probabilities are softmax(logits / temperature)
    calibration: dict[str, Any] = field(default_factory=dict)  # how the temperature was fitted
    splits: dict[str, Any] = field(default_factory=dict)   # where each split came from
    # an imported torchvision/timm model (arch "torchvision:NAME"): its head and Grad-CAM layer
    builder: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    schema_version: int = SCHEMA_VERSION

    @property
    def pretrained(self) -> bool:
        """True when the backbone started from ImageNet weights."""
        return self.init.startswith("imagenet")

    @property
    def size_label(self) -> str:
        """The input size as people read it: ``128``, or ``224 (test 256)`` for a model trained
        at one size and evaluated at another (``image_size`` is the size it is run at)."""
        trained = self.recipe.get("image_size", self.image_size)
        return f"{trained}" if trained == self.image_size else f"{trained} (test {self.image_size})"

    def to_json(self) -> str:
        """Sorted, indented JSON."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "card.json") -> "ModelCard":
        """Validate and build a card; a missing or malformed field raises CheckpointError."""
        if not isinstance(data, dict):
            raise CheckpointError("card.json is not a JSON object", source=source)
        known = {f.name for f in dataclasses.fields(cls)}
        for name in ("arch", "classes", "image_size", "mean", "std"):
            if name not in data:
                raise CheckpointError(f"card.json has no {name!r} field", source=source)
        classes = data["classes"]
        if (not isinstance(classes, list) or len(classes) < 2
                or not all(isinstance(c, str) and c for c in classes)
                or len(set(classes)) != len(classes)):
            raise CheckpointError("card.json 'classes' must be a list of 2+ distinct names",
                                  source=source)
        if not isinstance(data["image_size"], int) or not 16 <= data["image_size"] <= 1024:
            raise CheckpointError("card.json 'image_size' must be an integer in 16..1024",
                                  source=source)
        for name in ("mean", "std"):
            value = data[name]
            if (not isinstance(value, list) or len(value) != 3
                    or not all(isinstance(v, (int, float)) for v in value)):
                raise CheckpointError(f"card.json {name!r} must be 3 numbers", source=source)
        if not all(math.isfinite(v) for v in data["mean"] + data["std"]) or min(data["std"]) <= 0:
            raise CheckpointError("card.json 'mean' and 'std' must be finite, 'std' above 0",
                                  source=source)
        _check_types(cls, {k: v for k, v in data.items() if k in known}, source)
        if is_foreign(data["arch"]):
            try:
                check_builder(data["arch"], data.get("builder"))
            except FvError as exc:
                raise CheckpointError(exc.reason, source=source) from None
        resize = data.get("resize_size")
        if resize is not None and not data["image_size"] <= resize <= 2048:
            raise CheckpointError("card.json 'resize_size' must be an integer in image_size..2048",
                                  source=source)
        temperature = data.get("temperature", 1.0)
        if not (math.isfinite(temperature) and 0.01 <= temperature <= 100):
            raise CheckpointError("card.json 'temperature' must be a number in 0.01..100",
                                  source=source)
        if data.get("schema_version", SCHEMA_VERSION) > SCHEMA_VERSION:
            raise CheckpointError(f"card.json schema {data['schema_version']} is newer than this "
                                  f"fvcore ({SCHEMA_VERSION}); upgrade fvcore", source=source)
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def read(cls, path: str | Path) -> "ModelCard":
        """Read ``card.json`` (or the card inside a checkpoint folder)."""
        path = Path(path)
        if path.is_dir():
            path = path / "card.json"
        if not path.is_file():
            raise CheckpointError("missing card.json", source=str(path.parent))
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"card.json is not valid JSON ({exc.args[0][:80]})",
                                  source=str(path.parent)) from None
        return cls.from_dict(data, source=str(path.parent))

    def group_of(self, label: str) -> Optional[str]:
        """The group of a class (e.g. fruit/vegetable), or None when the card has no groups."""
        return self.groups.get(label)

    def split_accuracies(self) -> dict[str, float]:
        """Test accuracy per test domain (``metrics_by_split``); an entry without a numeric
        accuracy is left out (cards come from users)."""
        by_split = self.metrics_by_split if isinstance(self.metrics_by_split, dict) else {}
        return {str(domain): float(m["accuracy"]) for domain, m in by_split.items()
                if isinstance(m, dict) and isinstance(m.get("accuracy"), (int, float))
                and not isinstance(m.get("accuracy"), bool)}


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value has the type of a card field (bool is not a number here)."""
    if typing.get_origin(hint) is typing.Union:
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if hint is Any:
        return True
    kind, args = typing.get_origin(hint) or hint, typing.get_args(hint)
    if kind is type(None):
        return value is None
    if kind in (int, float) and isinstance(value, bool):
        return False
    if not isinstance(value, (int, float) if kind is float else kind):
        return False
    if kind is list and args:
        return all(_matches(item, args[0]) for item in value)
    if kind is dict and args:
        return all(_matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items())
    return True


def _check_types(cls: type, data: dict[str, Any], source: str) -> None:
    """Every present field of a card has the type its annotation says (one line per mismatch)."""
    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        if not _matches(value, hints[name]):
            hint = hints[name]
            expected = getattr(hint, "__name__", None) if isinstance(hint, type) else None
            expected = expected or str(hint).replace("typing.", "")
            raise CheckpointError(f"card.json {name!r} has the wrong type: expected {expected}, "
                                  f"got {type(value).__name__}", source=source)

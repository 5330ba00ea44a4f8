"""The model card: everything about a checkpoint except its weights, stored as ``card.json``."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from fvcore.errors import CheckpointError

SCHEMA_VERSION = 1


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
    splits: dict[str, Any] = field(default_factory=dict)   # where each split came from
    notes: str = ""
    schema_version: int = SCHEMA_VERSION

    @property
    def pretrained(self) -> bool:
        """True when the backbone started from ImageNet weights."""
        return self.init.startswith("imagenet")

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

"""Heads read from a state dict: which module of a torchvision/timm model a notebook replaced
(``fc``, ``classifier``, ``classifier.3``, ``heads.head``, ``head``), and the layers its keys
describe: one Linear, or a Sequential of Linear, BatchNorm1d, Dropout and an activation, the
parameter-free layers inferred from the index gaps. Works on keys and shapes alone."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Optional

from fvcore.errors import FvError
from fvcore.models.foreign import ACTIVATIONS, build_plain

if TYPE_CHECKING:
    import torch
    from torch import nn


def shapes(state: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor of a state dict."""
    return {k: tuple(v.shape) for k, v in state.items()}


def _layer_of(params: dict[str, tuple[int, ...]]) -> Optional[dict]:
    """The layer spec of one module's parameters, or None when no supported layer has them."""
    names = set(params)
    weight = params.get("weight")
    if weight is not None and len(weight) == 2 and names <= {"weight", "bias"}:
        return {"type": "linear", "in": weight[1], "out": weight[0], "bias": "bias" in names}
    stats = {"running_mean", "running_var"}
    if stats <= names <= stats | {"weight", "bias", "num_batches_tracked"}:
        return {"type": "batchnorm", "features": params["running_mean"][0],
                "affine": "weight" in names}
    return None


def parse_head(keys: dict[str, tuple[int, ...]], *, activation: str = "relu"
               ) -> tuple[list[dict], bool]:
    """A head's layers from its keys (relative to the head; name -> shape) and whether it is a
    Sequential. The parameter-free layers of a Sequential come from the index gaps: the first
    gap after a Linear (or its BatchNorm) is ``activation`` (``none``: no activation), the
    others Dropout. Raises FvError listing the keys when they fit no layout."""
    found = ", ".join(f"{k} {list(s)}" for k, s in sorted(keys.items()))
    fail = FvError(f"head keys fit no known layout (a Linear, or a Sequential of Linear, "
                   f"BatchNorm1d, Dropout and activations); found: {found[:400] or 'none'}")
    if activation != "none" and activation not in ACTIVATIONS:
        raise FvError(f"unknown activation {activation!r}; choose one of "
                      f"{', '.join(ACTIVATIONS)}, none")
    if keys and all("." not in k for k in keys):
        layer = _layer_of(keys)
        if layer is None or layer["type"] != "linear":
            raise fail
        return [layer], False
    by_index: dict[int, dict[str, tuple[int, ...]]] = {}
    for key, shape in keys.items():
        match = re.fullmatch(r"(\d+)\.(\w+)", key)
        if not match:
            raise fail
        by_index.setdefault(int(match[1]), {})[match[2]] = shape
    layers, width, act_due = [], None, False
    for index in range(max(by_index, default=-1) + 1):
        if index not in by_index:
            kind = activation if act_due and activation != "none" else "dropout"
            act_due = act_due and kind == "dropout"
            layers.append({"type": kind})
            continue
        layer = _layer_of(by_index[index])
        if layer is None:
            raise fail
        size = layer.get("in", layer.get("features"))
        if width is not None and size != width:
            raise fail
        width = layer.get("out", layer.get("features"))
        act_due = act_due or layer["type"] == "linear"
        layers.append(layer)
    if not layers or layers[-1]["type"] != "linear":
        raise fail
    return layers, True


def describe_head(layers: list[dict], sequential: bool) -> str:
    """A head as people read it: ``Sequential(Linear(2048, 64), BatchNorm1d(64), ReLU, ...)``."""
    names = [f"Linear({s['in']}, {s['out']})" if s["type"] == "linear" else
             f"BatchNorm1d({s['features']})" if s["type"] == "batchnorm" else
             "Dropout" if s["type"] == "dropout" else ACTIVATIONS[s["type"]]
             for s in layers]
    return f"Sequential({', '.join(names)})" if sequential else names[0]


def _head_paths(plain: nn.Module) -> list[str]:
    """Where the library model keeps its classifier, deepest first: its last Linear and that
    layer's parents (``classifier.3``, ``classifier``), plus timm's own classifier name."""
    from torch import nn
    last = [n for n, m in plain.named_modules() if isinstance(m, nn.Linear)]
    paths = []
    if last:
        parts = last[-1].split(".")
        paths = [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
    named = getattr(plain, "pretrained_cfg", {}) or {}
    classifier = named.get("classifier")
    if isinstance(classifier, str) and classifier not in paths:
        paths.insert(0, classifier)
    return paths


def body_difference(own: dict, theirs: dict) -> str:
    """What keeps ``theirs`` (name -> shape) from loading into ``own``, in a few words."""
    missing = sorted(set(own) - set(theirs))
    extra = sorted(set(theirs) - set(own))
    shaped = sorted(k for k in set(own) & set(theirs) if own[k] != theirs[k])
    parts = [f"{len(v)} {what} (first: {v[0]})" for v, what in
             ((missing, "missing"), (extra, "unexpected"), (shaped, "of another shape")) if v]
    return ", ".join(parts) or "none"


def fit_foreign(arch: str, state: dict[str, torch.Tensor], *, activation: str = "relu"
                ) -> dict:
    """The builder (head path, layers) under which ``state`` fits the library model ``arch``
    exactly; FvError says why not."""
    plain = build_plain(arch, meta=True)
    own, theirs = shapes(plain.state_dict()), shapes(state)
    best = None
    for path in _head_paths(plain):
        def outside(named: dict, p: str = path) -> dict:
            return {k: s for k, s in named.items() if not k.startswith(p + ".")}
        if outside(own) != outside(theirs):
            difference = body_difference(outside(own), outside(theirs))
            best = best or f"weights are not a {arch} with its head at {path!r}: {difference}"
            continue
        keys = {k[len(path) + 1:]: s for k, s in theirs.items() if k.startswith(path + ".")}
        try:
            layers, sequential = parse_head(keys, activation=activation)
        except FvError as exc:
            raise FvError(f"{arch}, head at {path!r}: {exc}") from None
        first = next((m for m in plain.get_submodule(path).modules()
                      if isinstance(getattr(m, "in_features", None), int)), None)
        takes = next(s.get("in", s.get("features")) for s in layers if s["type"] != "dropout")
        if first is not None and takes != first.in_features:
            raise FvError(f"{arch}: the head at {path!r} takes {takes} features, "
                          f"the model gives {first.in_features}")
        return {"head_path": path, "head": layers, "head_sequential": sequential}
    raise FvError(best or f"{arch} has no linear classifier to replace")

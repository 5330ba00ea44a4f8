"""Read a notebook's ``best_model.pth`` (a plain state dict) and work out the module it came
from: our registry's model with our head, or a torchvision/timm model whose head the notebook
replaced (found from the state dict's keys and shapes; see :mod:`fvcore.models.foreign`).

:func:`prepare_import` returns the rebuilt model with the weights loaded and its card; writing
it, after the self-check against the plain library model, is
:func:`fvcore.inference.importing.import_state_dict`."""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from fvcore.checkpoints.card import ModelCard
from fvcore.checkpoints.heads import body_difference, describe_head, fit_foreign, shapes
from fvcore.errors import FvError
from fvcore.models.cost import count_flops, count_params
from fvcore.models.foreign import build_foreign, check_arch, find_cam_layer, is_foreign
from fvcore.models.pretrained import read_state_dict
from fvcore.models.registry import IMAGENET_MEAN, IMAGENET_STD, create_model, list_archs

if TYPE_CHECKING:
    import torch
    from torch import nn

TWINS = {"resnet50": ("torchvision:resnet50",), "densenet121": ("torchvision:densenet121",),
         "vgg16": ("torchvision:vgg16_bn", "torchvision:vgg16"),
         "mobilenet_v3_large": ("torchvision:mobilenet_v3_large",),
         "efficientnet_lite0": ("timm:efficientnet_lite0",),
         "efficientnet_lite1": ("timm:efficientnet_lite1",),
         "efficientnet_lite2": ("timm:efficientnet_lite2",),
         "vit": ("timm:vit_tiny_patch16_224",)}
"""Registry architectures -> the library models with the same body, tried (in order) when a
state dict does not have our head: torchvision's key layout, timm's for the others."""
SPLITS = ("train", "val", "valid", "validation", "test")


@dataclass(frozen=True)
class Preprocessing:
    """The eval transform of an imported model (torchvision's classic preset by default)."""

    image_size: int = 224
    resize_size: Optional[int] = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


@dataclass
class Prepared:
    """A state dict loaded into the module it fits, its card, and how it was matched."""

    model: nn.Module
    card: ModelCard
    state: dict[str, torch.Tensor]
    summary: str        # e.g. "torchvision:resnet50, head fc = Linear(2048, 36)"


def read_classes(path: str | Path) -> list[str]:
    """Class names, one per line (blank lines ignored), in output order."""
    path = Path(path)
    if not path.is_file():
        raise FvError("classes file not found", source=str(path))
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise FvError("classes file is not UTF-8 text", source=str(path)) from None
    return check_classes([line.strip() for line in lines if line.strip()], str(path))


def check_classes(classes: Sequence[str], source: str) -> list[str]:
    """2+ distinct names, or an FvError naming where they came from."""
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise FvError("the classes must be 2+ distinct names, one per line", source=source)
    return list(classes)


def classes_from_folder(folder: str | Path) -> list[str]:
    """The class names torchvision's ImageFolder gives ``folder``: its sub-folders, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FvError("class folder not found", source=str(folder))
    names = sorted(d.name for d in folder.iterdir() if d.is_dir())
    if names and set(names) <= set(SPLITS):
        split = "train" if "train" in names else names[0]
        raise FvError(f"holds the splits ({', '.join(names)}), not class folders: pass "
                      f"{folder / split}", source=str(folder))
    return check_classes(names, str(folder))


def _layout(arch: str, n_classes: int, size: int) -> nn.Module:
    """Our registry model on the meta device: its keys and shapes, built instantly."""
    import torch
    with warnings.catch_warnings(), torch.device("meta"):
        warnings.simplefilter("ignore")
        return create_model(arch, n_classes, image_size=size)[0]


def _fits_ours(arch: str, state: dict, n_classes: int, size: int) -> Optional[nn.Module]:
    """Our registry model when ``state`` fits it exactly, else None; a head that differs only
    in its number of outputs is a class-count error."""
    own, theirs = shapes(_layout(arch, n_classes, size).state_dict()), shapes(state)
    if own == theirs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, _ = create_model(arch, n_classes, image_size=size)
        model.load_state_dict(state, strict=True)
        return model
    differ = [k for k in own if k in theirs and own[k] != theirs[k]]
    if set(own) == set(theirs) and differ and all(own[k][0] != theirs[k][0] and
                                                  own[k][1:] == theirs[k][1:] for k in differ):
        outputs = theirs[differ[-1]][0]
        raise FvError(f"weights do not fit {arch} with {n_classes} classes: the head has "
                      f"{outputs} outputs, the classes list {n_classes} names")
    return None


def prepare_import(weights: str | Path, *, arch: str, classes: Sequence[str],
                   preprocessing: Optional[Preprocessing] = None, activation: str = "relu",
                   dataset: str = "imported") -> Prepared:
    """Read ``weights`` with ``torch.load(weights_only=True)`` (never a full unpickle) and load
    it strictly into the module it fits: ``arch`` with our head, or the library model (``arch``
    itself when it is ``torchvision:NAME``/``timm:NAME``, else the registry's twin in
    :data:`TWINS`) with the head the keys describe."""
    preprocessing = preprocessing or Preprocessing()
    weights, size = Path(weights), preprocessing.image_size
    check_arch(arch, list_archs())
    with warnings.catch_warnings():
        # torch remarks on a pickle before refusing it ("Detected pickle protocol 4 ..."): our
        # one-line FvError says all the user needs
        warnings.filterwarnings("ignore", module=r"torch\.")
        state = read_state_dict(weights)
    builder: dict = {}
    model = None if is_foreign(arch) else _fits_ours(arch, state, len(classes), size)
    if model is None:
        candidates = (arch,) if is_foreign(arch) else TWINS.get(arch, ())
        if not candidates:
            ours = shapes(_layout(arch, len(classes), size).state_dict())
            raise FvError(f"weights do not fit {arch} with {len(classes)} classes: "
                          f"{body_difference(ours, shapes(state))}")
        errors = []
        for name in candidates:
            try:
                builder = fit_foreign(name, state, activation=activation)
                arch = name
                break
            except FvError as exc:
                errors.append(str(exc))
        else:
            raise FvError(errors[0])
        outputs = builder["head"][-1]["out"]
        if outputs != len(classes):
            raise FvError(f"class count mismatch: the head of {arch} has {outputs} outputs, "
                          f"the classes list {len(classes)} names")
        model = build_foreign(arch, builder)
        model.load_state_dict(state, strict=True)
        try:
            builder["cam_layer"], builder["cam_tokens"] = find_cam_layer(model, size)
        except (RuntimeError, AssertionError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise FvError(f"{arch} does not run at image size {size}: {first}") from None
    model.eval()
    summary = arch if not builder else f"{arch}, head {builder['head_path']} = " \
        f"{describe_head(builder['head'], builder['head_sequential'])}"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    try:
        flops = count_flops(model, size)
    except Exception:  # noqa: BLE001 - a cost estimate must not stop an import
        flops = None
    card = ModelCard(arch=arch, classes=list(classes), image_size=size,
                     resize_size=preprocessing.resize_size, mean=list(preprocessing.mean),
                     std=list(preprocessing.std), dataset=dataset,
                     init=f"imported:{weights.name}", params=count_params(model), flops=flops,
                     builder=builder,
                     notes=f"imported from {weights.name} (sha256 {digest}) with fvcore "
                           f"import-pth: {summary}")
    return Prepared(model, card, state, summary)

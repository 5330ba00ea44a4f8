"""The Train page's presets (:data:`PLANS`: Quick, Fine-tune, From scratch), the job each one
makes for a dataset and an architecture (:func:`plan_job`), and its time estimated from a
measured step before the run starts (:func:`estimate`)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from fvcore.errors import FvError
from fvcore.models.registry import create_model, get_spec, list_archs
from fvcore.training.recipe import knob_args
from fvcore.training.wise import ALPHAS

QUICK_ARCHS = ("efficientnet_lite0",)
"""The Quick preset's architecture: the smallest and fastest of those whose ImageNet weights install
offline (EfficientNet-Lite0; Lite1 and Lite2 cost 1.5 and 2.2 times its feature time)."""


@dataclass(frozen=True)
class TrainPlan:
    """A preset: the training knobs it sets (``TrainConfig`` fields) and the archs it allows."""

    name: str
    label: str
    about: str
    knobs: Mapping[str, Any]
    archs: Optional[tuple[str, ...]] = None   # None: every registered architecture
    transfer: Mapping[str, Any] = field(default_factory=dict)  # + knobs where ImageNet is offline

    def allowed(self) -> list[str]:
        """The architectures this preset can train."""
        return list(self.archs) if self.archs else list_archs()


PLANS: dict[str, TrainPlan] = {p.name: p for p in (
    TrainPlan("quick", "Quick",
              "ImageNet EfficientNet-Lite0 with a frozen backbone at 160 px: its features are "
              "computed once, then only the head (Linear + BatchNorm + Dropout) trains on them. "
              "A usable model in about two minutes on a 2-core CPU (224 px: about twice the "
              "feature time).",
              {"pretrained": "imagenet", "finetune": "head", "augment": False, "epochs": 40,
               "patience": 8, "lr": 3e-3, "batch_size": 64, "warmup_epochs": 0.0,
               "image_size": 160},
              QUICK_ARCHS),
    TrainPlan("finetune", "Fine-tune",
              "The zoo's transfer recipe: ImageNet backbone where its weights are available "
              "(else random init, and the card says so), the whole network trained with AdamW, "
              "warm-up + cosine schedule, TrivialAugment and CutMix/MixUp, early stopping, "
              "best-by-validation checkpoint. Where the ImageNet weights install offline "
              "(EfficientNet-Lite0/1/2), the produce zoo's recipe for photos unlike the training "
              "ones: the head first fitted on frozen features (LP-FT), a gentler fine-tune that "
              "keeps ImageNet's BatchNorm statistics, the best epoch by validation accuracy "
              "(per source when several datasets are combined), then the weights mixed with the "
              "probe's (WiSE-FT, chosen on validation).",
              {"pretrained": "auto", "finetune": "full", "epochs": 25, "patience": 5, "lr": 2e-3,
               "backbone_lr_scale": 0.25, "weight_decay": 0.05, "batch_size": 32,
               "augment_policy": "trivial", "mix": 0.5},
              transfer={"pretrained": "imagenet", "probe_epochs": 10, "freeze_bn": True,
                        "wise": True, "lr": 1e-3, "backbone_lr_scale": 0.2,
                        "select_by": "source_accuracy"}),
    TrainPlan("scratch", "From scratch",
              "Random initialisation, the whole network trained with AdamW and a cosine "
              "schedule, early stopping after the first three quarters of the epochs.",
              {"pretrained": "none", "finetune": "full", "epochs": 60, "patience": 6,
               "lr": 2e-3, "weight_decay": 0.05, "batch_size": 32, "min_epochs": 45}),
)}


@dataclass(frozen=True)
class JobPlan:
    """What a job trains: the ``fvcore train`` arguments and the folder it writes."""

    dataset: str
    arch: str
    preset: str
    out: Path
    epochs: int
    image_size: int
    batch_size: int
    argv: tuple[str, ...] = field(default=())
    probe_epochs: int = 0     # LP-FT: one feature pass over train + validation first
    wise: bool = False        # WiSE-FT: one validation pass per mixing share at the end


def plan_job(plan: str, arch: str, data: str | Path, checkpoints: str | Path, *,
             dataset: Optional[str] = None, epochs: Optional[int] = None,
             image_size: Optional[int] = None) -> JobPlan:
    """The job of preset ``plan`` for ``arch`` on the dataset folder ``data``, written to
    ``checkpoints/<dataset>/<arch>-<preset>``; epochs and image size override the preset's."""
    if plan not in PLANS:
        raise FvError(f"unknown preset {plan!r}; choose one of {', '.join(PLANS)}")
    preset = PLANS[plan]
    if arch not in preset.allowed():
        raise FvError(f"the {preset.label} preset trains {', '.join(preset.allowed())}, "
                      f"not {arch}")
    spec = get_spec(arch)
    dataset = dataset or Path(data).name
    knobs = dict(preset.knobs)
    if spec.offline_imagenet:
        knobs.update(preset.transfer)
    if epochs is not None:
        if epochs < 1:
            raise FvError("epochs must be at least 1")
        knobs["epochs"] = epochs
        knobs["min_epochs"] = min(knobs.get("min_epochs", 0), epochs)
    if image_size is not None:
        if not 32 <= image_size <= 1024:
            raise FvError("image size must be between 32 and 1024 pixels")
        if spec.reshape is not None and image_size != spec.input_size:
            raise FvError(f"{arch} trains at {spec.input_size} px (fixed position embeddings)")
        knobs["image_size"] = image_size
    size = int(knobs.get("image_size") or spec.input_size)
    out = Path(checkpoints).resolve() / dataset / f"{arch}-{plan}"
    argv = ["--arch", arch, "--data", str(Path(data).resolve()), "--dataset-name", dataset,
            "--out", str(out)]
    argv += knob_args(knobs)
    return JobPlan(dataset, arch, plan, out, int(knobs["epochs"]), size,
                   int(knobs.get("batch_size", 32)), tuple(argv),
                   probe_epochs=int(knobs.get("probe_epochs", 0)), wise=bool(knobs.get("wise")))


@dataclass(frozen=True)
class Estimate:
    """A job's time, from one measured step on this machine."""

    seconds: float
    per_image_train: float   # seconds per training image (forward, backward and step)
    per_image_eval: float    # seconds per image without gradients
    basis: str               # how it was computed, for the page

    @property
    def text(self) -> str:
        minutes = self.seconds / 60
        return f"about {minutes:.0f} min" if minutes >= 1.5 else f"about {self.seconds:.0f} s"


def _measure(arch: str, size: int, batch: int, train: bool, n_classes: int) -> float:
    """Seconds per image of one (second, warmed-up) step of ``batch`` random images."""
    model, _ = create_model(arch, max(2, n_classes), image_size=size)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, max(2, n_classes), (batch,))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train(train)
    seconds = 0.0
    for _ in range(2):
        begin = time.perf_counter()
        if train:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        else:
            with torch.no_grad():
                model(x)
        seconds = time.perf_counter() - begin
    return seconds / batch


def estimate(job: JobPlan, counts: Mapping[str, int], n_classes: int, *,
             probe_batch: int = 8) -> Estimate:
    """The job's time on this machine: one forward (Quick: the feature pass over every image)
    or training step measured on ``probe_batch`` random images, scaled to the split sizes and
    the epochs (early stopping may end it sooner). ``counts`` is images per split folder
    (``train``, ``test*``, anything else validation)."""
    n_train = counts.get("train", 0)
    n_test = sum(n for split, n in counts.items() if split.startswith("test"))
    n_val = sum(counts.values()) - n_train - n_test
    evaluate = _measure(job.arch, job.image_size, probe_batch, False, n_classes)
    if PLANS[job.preset].knobs.get("finetune") == "head":
        seconds = evaluate * (n_train + n_val + n_test) + 0.02 * job.epochs
        return Estimate(seconds, 0.0, evaluate, f"one feature pass over {n_train + n_val + n_test}"
                        f" images at {evaluate * 1000:.0f} ms each, then {job.epochs} head epochs")
    step = _measure(job.arch, job.image_size, probe_batch, True, n_classes)
    epoch = step * n_train + evaluate * n_val
    passes = ((n_train + n_val if job.probe_epochs else 0)
              + (len(ALPHAS) * n_val if job.wise else 0))
    seconds = epoch * job.epochs + evaluate * (n_test + passes)
    extra = " and".join(part for part, used in (
        (" the LP-FT probe's feature pass", job.probe_epochs),
        (f" {len(ALPHAS)} WiSE-FT validation passes", job.wise)) if used)
    return Estimate(seconds, step, evaluate, f"{job.epochs} epochs of {n_train} training images "
                    f"at {step * 1000:.0f} ms each and {n_val} validation images at "
                    f"{evaluate * 1000:.0f} ms" + (f", plus{extra}" if extra else ""))

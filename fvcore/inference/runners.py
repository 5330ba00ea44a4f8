"""Backends behind one small protocol: a :class:`Runner` turns a preprocessed batch into logits.

:class:`TorchRunner` runs the eager PyTorch module; :class:`OnnxRunner` runs the model exported
to ONNX once, cached on disk beside its checkpoint (keyed by the weights' hash), in one ONNX
Runtime session. A :class:`~fvcore.inference.classifier.Classifier` is handed its runner when it
is built (:func:`fvcore.inference.loading.load_checkpoint` chooses) and reads ``backend`` from it.

PyTorch stays the path for Grad-CAM and training. ``onnxruntime`` is imported lazily; when it is
missing, or export or the parity check fails, :func:`onnx_runner` warns and returns None, and the
classifier runs on PyTorch.

Cache layout: ``<checkpoint>/.onnx/model-<key>.onnx``, where ``key`` is the first 16 hex digits of
the SHA-256 of ``model.safetensors`` plus the input size and the export settings. A cached file
was written only after it passed the parity check, so a later load just opens it (and the torch
module is then built only when Grad-CAM first needs it); one that cannot be opened is deleted and
exported again. When the checkpoint folder is read-only the file goes to
``$XDG_CACHE_HOME/fvcore/onnx/`` instead.
"""
from __future__ import annotations

import ctypes
import hashlib
import io
import sys
import threading
import warnings
from pathlib import Path
from typing import Callable, Optional, Protocol

import numpy as np
import torch
from torch import nn

from fvcore import settings
from fvcore.checkpoints.card import ModelCard
from fvcore.checkpoints.catalog import weights_sha256
from fvcore.checkpoints.folder import atomic_write
from fvcore.errors import FvError
from fvcore.inference.logits import softmax

OPSET = 17
EXPORT_TAG = f"torchscript-opset{OPSET}-v1"   # change to invalidate every cached export
PARITY_TOL = 1e-4                             # max abs difference of probabilities
CACHE_DIR = ".onnx"


class FastPathWarning(UserWarning):
    """The ONNX fast path could not be used for a model; it runs on PyTorch instead."""


class Runner(Protocol):
    """What a classifier predicts with: an N x 3 x S x S float tensor -> N x C logits."""

    backend: str
    """``"pytorch"`` or ``"onnx"``."""

    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        """The logits (before the card's temperature) of a preprocessed batch."""
        ...


class TorchRunner:
    """Eager PyTorch: the module (built on first use by ``module()``) in inference mode.

    ``lock`` is the classifier's: a forward must not fire another thread's Grad-CAM hooks on the
    same shared module."""

    backend = "pytorch"

    def __init__(self, module: Callable[[], nn.Module],
                 lock: Optional[threading.Lock] = None) -> None:
        self.module = module
        self.lock = lock or threading.Lock()

    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        with self.lock, torch.inference_mode():
            return self.module()(batch).float().numpy()


class OnnxRunner:
    """One ONNX Runtime session; ``source`` is the cached ``.onnx`` path, or ``"memory"``."""

    backend = "onnx"

    def __init__(self, session, source: str) -> None:
        self.session = session
        self.source = source
        self.input = session.get_inputs()[0].name

    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        x = batch.detach().to(torch.float32).contiguous().numpy()
        return self.session.run(None, {self.input: x})[0]


def cache_key(folder: Path, card: ModelCard) -> str:
    """First 16 hex digits of SHA-256 over the weights' hash, the input size and export settings
    (the file's hash is remembered per size and modification time within a process)."""
    text = f"{weights_sha256(folder)}|{card.arch}|{card.image_size}|{EXPORT_TAG}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_candidates(folder: Path, card: ModelCard) -> list[Path]:
    """Where the export of these weights may live, preferred first."""
    name = f"model-{cache_key(folder, card)}.onnx"
    return [Path(folder) / CACHE_DIR / name, settings.onnx_cache_dir() / name]


def cached_export(folder: Path, card: ModelCard) -> Optional[Path]:
    """The parity-checked export of exactly these weights, if one was cached."""
    return next((p for p in cache_candidates(folder, card) if p.is_file()), None)


def export_onnx(model: nn.Module, image_size: int) -> bytes:
    """The model as a checked ONNX graph (TorchScript exporter, dynamic batch axis)."""
    import onnx
    x = torch.zeros(2, 3, image_size, image_size)  # batch 2: nothing specialises on batch 1
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and exporter chatter, not actionable here
        torch.onnx.export(model, (x,), buffer, dynamo=False, opset_version=OPSET,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    data = buffer.getvalue()
    onnx.checker.check_model(onnx.load_from_string(data))
    return data


def make_session(model: bytes | Path, *, threads: int = 0):
    """One CPU InferenceSession with every graph optimisation on."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # no arena: each model's peak activations (a batch of 16) are returned, not kept per session
    options.enable_cpu_mem_arena = False
    # many sessions take turns on few cores: idle pool threads must sleep, not spin
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = model if isinstance(model, bytes) else str(model)
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    release_free_memory()
    return session


def release_free_memory() -> None:
    """Hand freed heap back to the OS (glibc keeps it otherwise): building a session parses the
    whole model and frees most of it again, about 2x the weights for ResNet-50."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc: nothing to do
            pass


def parity_error(reference: Runner, candidate: Runner, image_size: int) -> float:
    """Max abs difference of probabilities, ``candidate`` vs ``reference``, on a fixed
    pseudo-random batch."""
    x = torch.randn(2, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
    return float(np.abs(softmax(candidate(x)) - softmax(reference(x))).max())


def _store(data: bytes, candidates: list[Path]) -> Optional[Path]:
    """Write the export to the first writable candidate (dropping stale exports there)."""
    for path in candidates:
        try:
            atomic_write(path, data)
        except OSError:
            continue
        for old in path.parent.glob("model-*.onnx"):
            if old != path and path.parent.name == CACHE_DIR:
                old.unlink(missing_ok=True)
        return path
    return None


def build_onnx_runner(card: ModelCard, folder: Optional[Path], module: Callable[[], nn.Module],
                      *, threads: int = 0) -> OnnxRunner:
    """Open the cached export of ``folder``'s weights, or export ``module()``, parity-check it
    against PyTorch and cache it. Raises on any failure."""
    import onnxruntime  # noqa: F401 - fail here, before exporting, when it is missing
    candidates = cache_candidates(folder, card) if folder else []
    for path in candidates:
        if path.is_file():
            try:
                return OnnxRunner(make_session(path, threads=threads), str(path))
            except Exception:  # noqa: BLE001 - ORT errors are plain Exceptions: drop, re-export
                path.unlink(missing_ok=True)
    model = module()
    data = export_onnx(model, card.image_size)
    runner = OnnxRunner(make_session(data, threads=threads), "memory")
    error = parity_error(TorchRunner(lambda: model), runner, card.image_size)
    if not error < PARITY_TOL:
        raise FvError(f"ONNX output differs from PyTorch by {error:.2e} (limit {PARITY_TOL:g})")
    stored = _store(data, candidates)
    if stored is None:
        return runner
    # a session made from bytes keeps them (ORT's Python object holds the whole model, as large
    # as the float32 weights) for its lifetime; one opened from the checked file does not
    del runner, data
    return OnnxRunner(make_session(stored, threads=threads), str(stored))


def onnx_runner(name: str, card: ModelCard, folder: Optional[Path],
                module: Callable[[], nn.Module], *,
                threads: Optional[int] = None) -> Optional[OnnxRunner]:
    """:func:`build_onnx_runner`, or None with a :class:`FastPathWarning` naming the model when
    onnxruntime is missing or the export or its parity check fails (predict with PyTorch)."""
    try:
        return build_onnx_runner(card, folder, module,
                                 threads=settings.threads() if threads is None else threads)
    except Exception as exc:  # noqa: BLE001 - any export/runtime failure means: use PyTorch
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else repr(exc)
        warnings.warn(f"{name}: ONNX fast path unavailable ({type(exc).__name__}: {reason}); "
                      "predicting with PyTorch", FastPathWarning, stacklevel=2)
        return None

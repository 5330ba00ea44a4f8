"""Fast start: ``import fvcore``, the app's Home-page modules, the checkpoint catalog and a first
Home-page render import no torch, torchvision, timm or ONNX Runtime (seconds of start-up), and
the torch-free safetensors header check refuses what the safetensors library refuses."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fvcore._lazy import DEFERRED_IMPORTS
from fvcore.checkpoints.catalog import HeaderError, read_safetensors_header

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "torchvision", "timm", "onnxruntime", "onnx", "safetensors.torch",
         "plotly.express")

PROBE = """
import json, sys
import fvcore, fvcore.app.shell, fvcore.app.cache, fvcore.evaluation.analysis, fvcore.app.sections
from fvcore.checkpoints.catalog import scan
entries, problems = scan(sys.argv[1])
names = {"card": fvcore.ModelCard.__name__, "scan": fvcore.scan is scan,
         "dir": sorted(set(fvcore.__all__) - set(dir(fvcore)))}
heavy = sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)
render = {}
if sys.argv[3] == "render":
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import AppTest
    detect = PagesManager.__init__
    def init(self, *args, **kwargs):  # as tests/test_app.py: run through app.py's navigation
        detect(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False
    PagesManager.__init__ = init
    at = AppTest.from_file(sys.argv[4], default_timeout=120).run()
    render = {"exceptions": [e.value for e in at.exception],
              "tables": [list(d.value["model"]) for d in at.dataframe],
              "heavy": sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)}
print(json.dumps({"entries": sorted(e.name for e in entries),
                  "problems": [str(p) for p in problems], "names": names, "heavy": heavy,
                  "render": render}))
"""


def probe(root: Path, *, render: bool = False) -> dict:
    """Run :data:`PROBE` in a fresh interpreter (this one has torch loaded already)."""
    env = {**os.environ, "FVCORE_CHECKPOINTS": str(root), "FVCORE_BACKEND": "onnx",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", PROBE, str(root), json.dumps(HEAVY),
                           "render" if render else "-", str(ROOT / "app.py")],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_importing_fvcore_and_the_home_page_modules_and_scanning_loads_no_torch(checkpoint_root):
    found = probe(checkpoint_root)
    assert found["entries"] == ["shapes/cnn", "shapes/efficientnet_lite0", "shapes/vit"]
    assert found["problems"] == []
    assert found["names"] == {"card": "ModelCard", "scan": True, "dir": []}
    assert found["heavy"] == []


def test_the_home_page_renders_every_checkpoint_without_loading_a_model(checkpoint_root):
    render = probe(checkpoint_root, render=True)["render"]
    assert render["exceptions"] == []
    assert [sorted(t) for t in render["tables"]] == [["cnn", "efficientnet_lite0", "vit"]]
    assert render["heavy"] == []


def test_the_lazy_public_names_are_the_real_ones():
    import fvcore
    from fvcore.inference.classifier import Classifier
    from fvcore.inference.loading import load_checkpoint
    assert fvcore.load_checkpoint is load_checkpoint and fvcore.Classifier is Classifier
    assert set(fvcore.__all__) == set(fvcore.EXPORTS) and set(fvcore.__all__) <= set(dir(fvcore))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        fvcore.nope  # noqa: B018


LATE = """
import importlib, json, sys
before = importlib.import_module(sys.argv[1])
heavy = json.loads(sys.argv[3])
first = sorted(m for m in heavy if m in sys.modules)
importlib.import_module(sys.argv[2])
print(json.dumps({"first": first, "then": sorted(m for m in heavy if m in sys.modules)}))
"""


def test_loading_and_predicting_import_no_pandas_or_streamlit():
    """The inference path (a server's workers, the CLI's predict) stays lean: pandas alone is
    about 60 MB of resident memory before a single model is loaded."""
    probe = ("import json, sys; import fvcore.inference.loading, fvcore.inference.predict; "
             "print(json.dumps(sorted(m for m in ('pandas', 'streamlit', 'plotly', 'matplotlib') "
             "if m in sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("importer,imported", sorted(DEFERRED_IMPORTS))
def test_each_late_import_keeps_something_heavy_out_of_the_start(importer, imported):
    """The importing module starts without anything heavy; the module it imports late brings
    something heavy: otherwise the late import has no reason to be late."""
    proc = subprocess.run([sys.executable, "-c", LATE, importer, imported, json.dumps(HEAVY)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["first"] == [] and found["then"] != []


# --- the torch-free header check refuses what safetensors refuses ------------------------------

def _file(tmp_path: Path, header: dict | bytes, data: bytes = b"", *,
          length: int | None = None) -> Path:
    """A safetensors-shaped file: 8-byte little-endian header length, header, data."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + data)
    return path


def _library_refuses(path: Path) -> bool:
    from safetensors import safe_open
    try:
        with safe_open(str(path), framework="numpy") as handle:
            for key in handle.keys():
                handle.get_slice(key).get_shape()
    except Exception:  # noqa: BLE001 - any refusal counts
        return True
    return False


GOOD = {"a": {"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 12]},
        "b": {"dtype": "I64", "shape": [1], "data_offsets": [12, 20]},
        "__metadata__": {"format": "pt"}}
BROKEN = {
    "header too large": (b"{}", b"", 2 ** 62),
    "longer than the file": (b"{}", b"", 100),
    "not json": (b"{nope", b"", None),
    "not an object": (b"[1, 2]", b"", None),
    "not utf-8": (b"{\xff\xfe}", b"", None),
    "unknown dtype": ({"a": {"dtype": "F17", "shape": [1], "data_offsets": [0, 2]}}, b"xx", None),
    "negative dim": ({"a": {"dtype": "U8", "shape": [-1], "data_offsets": [0, 1]}}, b"x", None),
    "gap": ({"a": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}}, b"xx", None),
    "size mismatch": ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"x" * 4,
                      None),
    "overlap": ({"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
                 "b": {"dtype": "U8", "shape": [2], "data_offsets": [1, 3]}}, b"xxx", None),
    "truncated data": (GOOD, b"x" * 19, None),
    "trailing data": (GOOD, b"x" * 21, None),
}


def test_a_valid_header_is_read_like_the_library_reads_it(tmp_path):
    path = _file(tmp_path, GOOD, np.zeros(20, np.uint8).tobytes())
    header = read_safetensors_header(path)
    assert {k: v["shape"] for k, v in header.items()} == {"a": [2, 3], "b": [1]}
    assert not _library_refuses(path)


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_header_is_refused_like_the_library_refuses_it(tmp_path, case):
    header, data, length = BROKEN[case]
    path = _file(tmp_path, header, data, length=length)
    with pytest.raises(HeaderError):
        read_safetensors_header(path)
    assert _library_refuses(path), f"{case}: safetensors accepts it, so should fvcore"


def test_a_file_shorter_than_the_length_prefix_is_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x01\x02")
    with pytest.raises(HeaderError, match="too small"):
        read_safetensors_header(path)

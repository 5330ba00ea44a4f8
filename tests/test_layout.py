"""The shape of the code: folders by concern, imports that flow one way (no cycles, lazy or
not), streamlit and plotly only in the app wing, and every late import listed with its reason."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from fvcore._lazy import DEFERRED_IMPORTS

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "fvcore"

LAYERS = ["errors", "settings", "walk", "_lazy", "models", "checkpoints", "explain", "inference",
          "datasets", "evaluation", "training", "app", "cli", "__main__", "__init__"]
"""fvcore's top-level modules and folders, lowest first: each may import only from those before
it (and from itself)."""

APP_ONLY = ("streamlit", "plotly")
MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports(path: Path) -> list[tuple[str, bool]]:
    """(module imported, inside a function?) for every import outside ``if TYPE_CHECKING``; a
    ``from package import submodule`` counts as importing the submodule (its package's
    ``__init__`` runs first in any case, so it is no edge of its own)."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if _type_checking(node):
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, in_function) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = [f"{node.module}.{a.name}" for a in node.names
                    if f"{node.module}.{a.name}" in MODULES]
            if len(subs) < len(node.names):   # names defined by the module itself
                found.append((node.module, in_function))
            found.extend((sub, in_function) for sub in subs)
        inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(ast.parse(path.read_text()), False)
    return found


def edges() -> dict[str, set[str]]:
    """fvcore module -> the fvcore modules it imports (top-level or in a function)."""
    return {name: {m for m, _ in imports(path) if m in MODULES and m != name}
            for name, path in MODULES.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            strong(v)
    return found


def layer(module: str) -> int:
    part = module.split(".")[1] if "." in module else "__init__"
    return LAYERS.index(part)


def test_fvcore_has_no_import_cycle_even_through_late_imports():
    assert cycles(edges()) == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_module_is_in_a_known_layer():
    assert [m for m in MODULES if m != "fvcore" and m.split(".")[1] not in LAYERS] == []


def test_imports_flow_down_the_layers():
    upward = sorted(f"{src} -> {dst}" for src, targets in edges().items() for dst in targets
                    if layer(dst) > layer(src) and src != "fvcore")
    assert upward == []


def test_only_the_app_wing_imports_streamlit_or_plotly():
    outside = sorted(f"{name}: {m}" for name, path in MODULES.items()
                     if not name.startswith("fvcore.app")
                     for m, _ in imports(path) if m.split(".")[0] in APP_ONLY)
    assert outside == []


def test_the_confinement_check_sees_a_streamlit_import(tmp_path):
    path = tmp_path / "leak.py"
    path.write_text("def f():\n    import streamlit as st\n    return st\n")
    assert ("streamlit", True) in imports(path)


def test_pages_import_no_torch_and_call_the_app_wing():
    for page in sorted((ROOT / "pages").glob("*.py")):
        found = [m for m, _ in imports(page)]
        assert not [m for m in found if m.split(".")[0] in ("torch", "torchvision", "timm")], page
        assert any(m.startswith("fvcore.app") for m in found), page


def test_every_late_fvcore_import_is_listed_with_its_reason():
    late = {(name, m) for name, path in MODULES.items()
            for m, in_function in imports(path)
            if in_function and m in MODULES}
    assert late == set(DEFERRED_IMPORTS)
    assert all(reason.strip() for reason in DEFERRED_IMPORTS.values())


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name}: {lines} lines"


def test_every_folder_says_what_it_holds():
    for folder in sorted(p for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"):
        init = folder / "__init__.py"
        assert init.is_file() and ast.get_docstring(ast.parse(init.read_text())), folder


PACKAGES = sorted(n for n, p in MODULES.items() if p.name == "__init__.py")


@pytest.mark.parametrize("package", PACKAGES)
def test_each_folder_exports_its_few_public_names(package):
    """Every name a package's ``__init__`` promises resolves to the object its module defines."""
    module = importlib.import_module(package)
    exports = getattr(module, "EXPORTS", {})
    for name, where in exports.items():
        source = importlib.import_module(where if where.startswith("fvcore") else
                                         f"{package}.{where}")
        assert getattr(module, name) is getattr(source, name), f"{package}.{name}"
    if exports:   # lazy (PEP 562): __all__ lists exactly the promised names
        assert sorted(module.__all__) == sorted(exports)
    assert all(hasattr(module, name) for name in getattr(module, "__all__", []))

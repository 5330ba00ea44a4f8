"""What fvcore imports late, and why, in one place: the packages' public names, imported on
first use (PEP 562), so that importing a package (``fvcore``, ``fvcore.inference``) costs nothing
until one of its names is used (the app's Home page imports torch-free modules of packages whose
other modules need torch); and :data:`DEFERRED_IMPORTS`, the few imports made inside functions."""
from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose public names are ``exports``
    (name -> the module defining it, absolute or relative to the package)."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = exports[name]
        value = getattr(importlib.import_module(module if module.startswith("fvcore")
                                                else f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__


DEFERRED_IMPORTS = {
    ("fvcore.app.cache", "fvcore.inference.loading"):
        "loading a model needs torch; Home lists the checkpoints without loading one",
    ("fvcore.app.cache", "fvcore.inference.predict"):
        "predicting needs torch; only the Predict page predicts",
    ("fvcore.app.sections", "fvcore.app.charts"):
        "plotly express takes a second to import; Home's model table draws no figure",
    ("fvcore.models.registry", "fvcore.models.layers"):
        "the registry's facts (input size, CAM layer) serve the torch-free catalog; building a "
        "model needs torch",
}
"""Every import of an fvcore module made inside a function rather than at the top of a module:
(importing module, imported module) -> why. Each keeps something heavy out of the app's start;
tests/test_layout.py checks the list is complete and tests/test_coldstart.py that each imported
module is heavy indeed. No other lazy import exists (none hides an import cycle)."""

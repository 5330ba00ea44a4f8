"""Models: the one registry of architectures (how each is built, its input, its Grad-CAM layer),
the layers they share, where ImageNet weights come from, and what a model costs."""
from fvcore._lazy import lazy_exports

EXPORTS = {"ArchSpec": "registry", "create_model": "registry", "get_spec": "registry",
           "list_archs": "registry", "count_flops": "cost", "count_params": "cost"}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)

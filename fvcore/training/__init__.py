"""Training: the transfer-learning recipe, the per-epoch steps, the resumable trainer, the run
registry and the model zoo."""
from fvcore._lazy import lazy_exports

EXPORTS = {"TrainConfig": "recipe", "train": "trainer", "train_zoo": "zoo",
           "list_runs": "runs"}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)

"""Explanations: Grad-CAM and friends for every architecture (the ViT included), the ROAD
faithfulness score and heatmap overlays."""
from fvcore._lazy import lazy_exports

EXPORTS = {"CAM_METHODS": "cam", "CamResult": "cam", "CamView": "cam", "compute_cam": "cam",
           "faithfulness": "cam", "overlay": "cam"}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)

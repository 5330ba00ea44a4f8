"""Explanations: Grad-CAM and friends for every architecture (the ViT included), the ROAD
faithfulness score and heatmap overlays; how good a heatmap is (ROAD both ways, deletion and
insertion areas, a random baseline) and the model-randomisation sanity check."""
from fvcore._lazy import lazy_exports

EXPORTS = {"CAM_METHODS": "cam", "CamResult": "cam", "CamView": "cam", "compute_cam": "cam",
           "faithfulness": "cam", "overlay": "cam", "HeatmapScores": "quality",
           "score_heatmap": "quality", "randomisation_check": "sanity"}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)

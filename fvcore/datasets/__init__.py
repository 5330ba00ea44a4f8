"""Datasets: labelled image folders (splits, carving, class groups, fingerprints), several folders
combined with their test splits kept apart as test domains, and the safe extraction of an uploaded
zip."""
from fvcore._lazy import lazy_exports

EXPORTS = {"DataSplits": "folders", "class_folders": "folders", "list_images": "folders",
           "load_splits": "folders", "load_datasets": "combine",
           "Source": "folders", "labelled_samples": "folders", "extract_labelled_zip": "zipdata"}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)

"""Datasets: labelled image folders (splits, carving, class groups, fingerprints), several folders
combined with their test splits kept apart as test domains, the safe extraction of an uploaded
zip, a dataset's health report (counts, unreadable files, duplicates and leakage, what blocks
training) and adding a dataset under the data root."""
from fvcore._lazy import lazy_exports

EXPORTS = {"DataSplits": "folders", "class_folders": "folders", "list_images": "folders",
           "load_splits": "folders", "load_datasets": "combine",
           "Source": "folders", "labelled_samples": "folders", "extract_labelled_zip": "zipdata",
           "dataset_health": "health", "HealthReport": "health", "list_datasets": "store",
           "add_from_zip": "store", "add_from_folder": "store"}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)

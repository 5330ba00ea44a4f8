"""A checkpoint's ``history.csv``: one row per epoch, written by training, read by the pages and
the README table."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd

from fvcore.checkpoints.catalog import HISTORY


def read_history(folder: str | Path) -> Optional[pd.DataFrame]:
    """A checkpoint's ``history.csv`` as a frame, or None when absent or unreadable."""
    path = Path(folder) / HISTORY
    if not path.is_file():
        return None
    try:
        frame = pd.read_csv(path)
    except (ValueError, OSError, pd.errors.ParserError):
        return None
    return frame if "epoch" in frame.columns and len(frame) else None

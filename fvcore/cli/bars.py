"""The console progress bar of the long per-checkpoint subcommands (``robustness``,
``explain-eval``): a tqdm bar handed to the library as its ``progress(done, total)`` callback."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

Progress = Callable[[int, int], None]
"""``progress(done, total)``: how the library's long functions report how far they are."""


@contextmanager
def progress_bar(name: str, unit: str, *, quiet: bool) -> Iterator[Progress]:
    """A transient bar named ``name`` counting ``unit`` (hidden when ``quiet``), as a callback."""
    from tqdm import tqdm
    with tqdm(desc=name, unit=unit, leave=False, disable=quiet) as bar:
        def advance(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)
        yield advance

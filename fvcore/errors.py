"""The one error type of fvcore: every failure a person can cause reads as one line."""
from __future__ import annotations


class FvError(Exception):
    """A failure with a human message: what failed, which file or field, what to do.

    The CLI prints it and exits non-zero; the app shows it with ``st.error``.
    """

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        text = f"{source}: {message}" if source else message
        super().__init__(" ".join(text.split()))

    @property
    def reason(self) -> str:
        """The message without the source prefix."""
        text = str(self)
        prefix = f"{self.source}: " if self.source else ""
        return text[len(prefix):] if prefix and text.startswith(prefix) else text


class ImageError(FvError):
    """An input that is not a usable image (empty, truncated, too large, unsupported)."""


class CheckpointError(FvError):
    """A checkpoint folder that cannot be loaded (missing file, corrupt weights, bad card)."""

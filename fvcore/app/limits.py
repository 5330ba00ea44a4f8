"""Bounded work per visitor: the expensive actions (predictions of many photos with every model,
Grad-CAM of every model, an evaluation of an uploaded zip, timing the models) run under a
server-wide limit of actions at once (``$FVCORE_MAX_JOBS``) and a per-session budget of actions
per :data:`WINDOW` (``$FVCORE_SESSION_JOBS``). A visitor over a limit gets one line saying when to
retry (:class:`LimitError`, an FvError the page's guard shows), never a wait.

A page wraps one visitor action in :func:`action`; the cached computations inside call
:func:`charge` when they really compute (a cache miss), so re-drawing a cached result (a slider
moved) costs the visitor nothing. The first charge of an action takes a server slot and counts
once against the session; the slot is given back when the action ends."""
from __future__ import annotations

import threading
import time
from collections import deque
from contextlib import contextmanager
from typing import Callable, Iterator, MutableMapping, Optional

import streamlit as st

from fvcore import settings
from fvcore.errors import FvError

WINDOW = 600.0
"""Seconds over which a session's actions are counted."""
WAIT = 0.5
"""Seconds an action waits for a free server slot before it is refused (absorbs a burst)."""
SESSION_KEY = "_fv_limits"


class LimitError(FvError):
    """A visitor over a limit: one line, with when to retry."""


def _seconds(value: float) -> str:
    value = max(1, round(value))
    return f"{value} s" if value < 120 else f"{round(value / 60)} min"


class Gate:
    """The server-wide limit: at most ``slots`` actions at once (0 = unlimited), and how long
    they take (for the retry hint)."""

    def __init__(self, slots: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.slots = slots
        self.clock = clock
        self._free = threading.BoundedSemaphore(slots) if slots else None
        self._lock = threading.Lock()
        self._running: dict[int, float] = {}
        self._took: deque[float] = deque(maxlen=20)
        self._ids = iter(range(1 << 62))

    @property
    def running(self) -> int:
        """Actions running now."""
        with self._lock:
            return len(self._running)

    def enter(self, wait: float = WAIT) -> int:
        """Take a slot (waiting at most ``wait`` seconds) and return its ticket; LimitError when
        every slot stays taken."""
        if self._free is not None and not self._free.acquire(timeout=wait):
            with self._lock:
                n, now = len(self._running), self.clock()
                typical = sum(self._took) / len(self._took) if self._took else 10.0
                oldest = max((now - t for t in self._running.values()), default=0.0)
            raise LimitError(f"busy: {n} job{'s' * (n != 1)} {'are' if n != 1 else 'is'} running "
                             f"on this server; retry in about {_seconds(typical - oldest)}")
        with self._lock:
            ticket = next(self._ids)
            self._running[ticket] = self.clock()
        return ticket

    def leave(self, ticket: int) -> None:
        """Give the slot of ``ticket`` back."""
        with self._lock:
            started = self._running.pop(ticket, None)
            if started is None:
                return
            self._took.append(self.clock() - started)
        if self._free is not None:
            self._free.release()


_gates: dict[int, Gate] = {}
_gates_lock = threading.Lock()


def gate() -> Gate:
    """The process's gate for the current ``$FVCORE_MAX_JOBS``."""
    slots = settings.max_jobs()
    with _gates_lock:
        return _gates.setdefault(slots, Gate(slots))


class Action:
    """One visitor action: charged at most once, its server slot held until it ends."""

    def __init__(self, what: str, session: MutableMapping, server: Gate, per_session: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.what, self.session, self.server = what, session, server
        self.per_session, self.clock = per_session, clock
        self.ticket: Optional[int] = None

    def charge(self) -> None:
        """Count this action against the session and take a server slot (once); LimitError with
        when to retry when either limit is reached."""
        if self.ticket is not None:
            return
        now = self.clock()
        recent = [t for t in self.session.get(SESSION_KEY, []) if now - t < WINDOW]
        if self.per_session and len(recent) >= self.per_session:
            raise LimitError(f"limit reached: {len(recent)} {self.what} runs in the last "
                             f"{_seconds(WINDOW)} for this visitor; retry in about "
                             f"{_seconds(recent[0] + WINDOW - now)}")
        self.ticket = self.server.enter()
        self.session[SESSION_KEY] = [*recent, now]

    def close(self) -> None:
        """Give the server slot back (if one was taken)."""
        if self.ticket is not None:
            self.server.leave(self.ticket)
            self.ticket = None


_current = threading.local()


@contextmanager
def action(what: str, session: Optional[MutableMapping] = None, *,
           server: Optional[Gate] = None, per_session: Optional[int] = None) -> Iterator[Action]:
    """The scope of one visitor action (default: this Streamlit session, the process's gate and
    ``$FVCORE_SESSION_JOBS``); the computations inside :func:`charge` it."""
    act = Action(what, st.session_state if session is None else session,
                 server or gate(), settings.session_jobs() if per_session is None else per_session)
    outer = getattr(_current, "action", None)
    _current.action = act
    try:
        yield act
    finally:
        _current.action = outer
        act.close()


def charge() -> None:
    """Charge the action this thread is in (a no-op outside any action: the CLI, the tests)."""
    act = getattr(_current, "action", None)
    if act is not None:
        act.charge()


def check_images(n: int, what: str = "prediction") -> None:
    """LimitError when ``n`` images are more than one action may take: ``$FVCORE_MAX_IMAGES``
    per prediction, ``$FVCORE_MAX_EVAL_IMAGES`` per evaluation."""
    most = settings.max_eval_images() if what == "evaluation" else settings.max_images()
    if most and n > most:
        noun = "images in the zip" if what == "evaluation" else "photos at once"
        raise LimitError(f"limit reached: {n} {noun}; this server takes at most {most} "
                         f"per {what}: remove {n - most} and retry")

"""What bounds the service's memory and abandoned work: a shared pixel budget, cancellation.

Decoding is where an upload costs memory (a decoded image is several bytes a pixel,
whatever its size on the wire). :class:`PixelBudget` lets requests decode at once only
as many pixels as the server allows; the others queue until their deadline. A
:class:`Job` carries a request's deadline and cancellation: the worker checks it
between frames and stages, so work whose client got a 504 stops instead of running on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class AbandonedError(Exception):
    """The request was given up (its deadline passed): stop working on it."""


class Job:
    """One request's deadline and cancellation flag, shared with its worker thread."""

    def __init__(self, timeout_s: float) -> None:
        self.deadline = time.monotonic() + float(timeout_s)
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set() or time.monotonic() > self.deadline

    def check(self) -> None:
        """Raise :class:`AbandonedError` if the request was given up."""
        if self.cancelled:
            raise AbandonedError()

    def left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


class PixelBudget:
    """At most ``total`` pixels being decoded at once, server-wide (first come, first served)."""

    def __init__(self, total: float) -> None:
        if not total > 0:
            raise ValueError("the pixel budget must be > 0")
        self.total = float(total)
        self.used = 0.0
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, pixels: float, job: Job | None = None) -> Iterator[None]:
        """Wait until ``pixels`` fit (or the job is given up), hold them for the block."""
        pixels = min(float(pixels), self.total)  # one image never waits for more than all
        with self._cond:
            while self.used + pixels > self.total:
                if job is not None:
                    job.check()
                self._cond.wait(timeout=0.05 if job is None else min(0.05, job.left() + 1e-3))
            if job is not None:
                job.check()
            self.used += pixels
        try:
            yield
        finally:
            with self._cond:
                self.used -= pixels
                self._cond.notify_all()

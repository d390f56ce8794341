"""Work on many items side by side in threads, results in input order, only a few ahead.

Threads, not processes: the heavy work handed here (numpy, SciPy, Pillow) releases the
GIL, and no caller needs an ``if __name__ == "__main__"`` guard.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_threads(limit: int = 8) -> int:
    """Every core, at most ``limit``."""
    return max(1, min(os.cpu_count() or 1, limit))


def ordered_map(
    fn: Callable[[T], R], items: Iterable[T], workers: int | None = None, ahead: int = 2
) -> Iterator[R]:
    """``fn(item)`` for each item, in order, on ``workers`` threads (default: every core,
    at most 8); at most ``ahead * workers`` results wait unread, so memory stays bounded
    however many items there are. An exception in ``fn`` is raised where its result
    would be, after cancelling the work not yet started."""
    workers = default_threads() if workers is None else max(1, int(workers))
    if workers == 1:
        yield from map(fn, items)
        return
    pending: deque[Future] = deque()
    with ThreadPoolExecutor(workers) as pool:
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= ahead * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()

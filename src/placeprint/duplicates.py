"""Photos a collection holds twice: the same file listed again, or the same bytes.

A duplicate would vote twice in the geolocator's neighbours and, worse, find its own
twin when the collection is located from itself to calibrate, so that the stated
probabilities would be too sure. ``index build`` keeps the first copy in the geolocator.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

CHUNK = 1 << 20


def _digest(path: str) -> str | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while block := f.read(CHUNK):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def duplicate_of(paths: Sequence[str | Path]) -> dict[int, int]:
    """``{row: first row}`` for every path that repeats an earlier one: the same file
    (after resolving links and ``..``) or a file with the same bytes (sha256, read only
    for files whose size another file shares). Unreadable files are never duplicates."""
    first_of_file: dict[str, int] = {}
    out: dict[int, int] = {}
    by_size: dict[int, list[int]] = defaultdict(list)
    for i, p in enumerate(paths):
        real = os.path.realpath(p)
        if real in first_of_file:
            out[i] = first_of_file[real]
            continue
        first_of_file[real] = i
        try:
            by_size[os.path.getsize(real)].append(i)
        except OSError:
            continue
    for rows in by_size.values():
        if len(rows) < 2:
            continue
        first_of_digest: dict[str, int] = {}
        for i in rows:
            d = _digest(str(paths[i]))
            if d is None:
                continue
            if d in first_of_digest:
                out[i] = first_of_digest[d]
            else:
                first_of_digest[d] = i
    return dict(sorted(out.items()))

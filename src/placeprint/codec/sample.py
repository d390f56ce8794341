"""Which database rows a codec is fitted on: every row up to a cap, then an even sample.

PCA, quantile thresholds and levels settle long before a million places, and fitting on
every row would tie the size of a build to the memory of the machine that fits. The
sample is a fixed rule of the row count (evenly spaced along the route, so every route
segment is represented), so a cluster build that gathers only these rows fits the same
codec as a single-machine build of the same inputs.
"""

from __future__ import annotations

import numpy as np

from placeprint.errors import PlaceprintError

FIT_SAMPLE_ROWS = 100_000  # 100k x 4096 float32 = 1.6 GB: what one machine fits comfortably


def fit_rows(n: int, limit: int = FIT_SAMPLE_ROWS) -> np.ndarray:
    """Sorted rows of ``n`` to fit on: ``0..n-1`` when ``n <= limit``, else ``limit`` rows
    spaced evenly (row ``floor(i * n / limit)`` for ``i < limit``)."""
    if n < 0 or limit < 1:
        raise PlaceprintError(f"need n >= 0 and limit >= 1, got n={n}, limit={limit}")
    if n <= limit:
        return np.arange(n, dtype=np.int64)
    return (np.arange(limit, dtype=np.int64) * n) // limit


def fit_on_sample(
    codec, X: np.ndarray, paired: np.ndarray | None = None, limit: int = FIT_SAMPLE_ROWS
):
    """``codec.fit`` on the rows :func:`fit_rows` picks; ``paired[i]`` is row ``i`` of ``X``
    under another condition (``i < len(paired)``). ``X`` may be a memory map: only the
    sampled rows are read."""
    rows = fit_rows(len(X), limit)
    sample = np.asarray(X[rows] if len(rows) < len(X) else X[:])
    if paired is None:
        return codec.fit(sample)
    with_pair = np.flatnonzero(rows < len(paired))
    return codec.fit(sample, paired=np.asarray(paired)[rows[with_pair]], paired_rows=with_pair)

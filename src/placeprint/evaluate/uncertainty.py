"""How far a measured gain could move on another draw of the same number of queries."""

from __future__ import annotations

import numpy as np

from placeprint.errors import PlaceprintError


def paired_gain_interval(
    after: np.ndarray, before: np.ndarray, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(after) - mean(before)`` where both are
    per-query scores of the *same* queries (e.g. 1 if the first answer is right): queries are
    resampled as pairs, so what both systems get right or wrong together does not widen it."""
    from scipy.stats import bootstrap

    a = np.asarray(after, np.float64).reshape(-1)
    b = np.asarray(before, np.float64).reshape(-1)
    if len(a) != len(b) or len(a) < 2:
        raise PlaceprintError(f"need two equal lists of >= 2 scores, got {len(a)} and {len(b)}")
    if not 0 < confidence < 1:
        raise PlaceprintError(f"confidence must be in (0, 1), got {confidence}")
    if np.array_equal(a, b):
        return 0.0, 0.0
    res = bootstrap(
        (a, b),
        lambda x, y, axis: x.mean(axis=axis) - y.mean(axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=9999,
        confidence_level=confidence,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)

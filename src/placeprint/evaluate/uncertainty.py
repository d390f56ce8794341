"""How far a measured gain could move on another draw of the same number of queries."""

from __future__ import annotations

import numpy as np

from placeprint.errors import PlaceprintError


def paired_gain_interval(
    after: np.ndarray,
    before: np.ndarray,
    confidence: float = 0.95,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(after) - mean(before)`` where both are
    per-query scores of the *same* queries (e.g. 1 if the first answer is right): queries are
    resampled as pairs, so what both systems get right or wrong together does not widen it.

    ``groups``: a label per query for queries that are not independent (neighbouring frames
    of a route): whole groups are resampled, so their likeness does not narrow it."""
    from scipy.stats import bootstrap

    a = np.asarray(after, np.float64).reshape(-1)
    b = np.asarray(before, np.float64).reshape(-1)
    if len(a) != len(b) or len(a) < 2:
        raise PlaceprintError(f"need two equal lists of >= 2 scores, got {len(a)} and {len(b)}")
    if not 0 < confidence < 1:
        raise PlaceprintError(f"confidence must be in (0, 1), got {confidence}")
    if np.array_equal(a, b):
        return 0.0, 0.0
    if groups is not None:
        return _group_interval(a - b, np.asarray(groups).reshape(-1), confidence, seed)
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


def _group_interval(diff: np.ndarray, groups: np.ndarray, confidence: float, seed: int):
    """Cluster bootstrap of the mean of ``diff``: groups drawn with replacement, the mean
    taken over every query of the drawn groups."""
    if len(groups) != len(diff):
        raise PlaceprintError(f"need a group per score, got {len(groups)} for {len(diff)}")
    _, group = np.unique(groups, return_inverse=True)
    if group.max() < 1:
        raise PlaceprintError("need at least two groups")
    sums = np.bincount(group, weights=diff)
    sizes = np.bincount(group).astype(np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(sums), size=(9999, len(sums)))
    means = sums[draws].sum(axis=1) / sizes[draws].sum(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)

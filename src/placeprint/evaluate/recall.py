"""Recall of sequence matches, as defined in ``guide/BENCHMARKS.md``.

A query of length ``L`` ends at frame ``q`` and uses frames ``q-L+1 .. q``; it is
correct when the predicted database position of frame ``q`` is within
``tolerance`` (2) frames of the truth. Recall@k counts a query as found when any of
its best ``k`` *distinct* answers is correct (answers closer than 5 frames to a
better one are not distinct, see :func:`distinct_top`).

>>> import numpy as np
>>> query_ends(6, 3, stride=2).tolist()
[2, 4]
>>> recall_at(np.array([[10, 50], [30, 41]]), np.array([11, 40]), ks=(1, 2))
{1: 0.5, 2: 1.0}
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from placeprint.errors import PlaceprintError

TOLERANCE = 2
MIN_SEPARATION = 5


def query_ends(n_queries: int, length: int, stride: int = 1) -> np.ndarray:
    """End frames ``q`` of every full window of ``length`` frames in ``n_queries`` frames.

    Returns ``(m,) int64``: ``length-1, length-1+stride, ...`` up to ``n_queries-1``
    (empty when the sequence is shorter than one window).
    """
    if length < 1 or stride < 1:
        raise PlaceprintError(f"length and stride must be >= 1, got {length} and {stride}")
    return np.arange(length - 1, n_queries, stride, dtype=np.int64)


def window_mask(mask: np.ndarray, ends: np.ndarray, length: int) -> np.ndarray:
    """Which windows of ``length`` frames ending at ``ends`` belong to the frame subset ``mask``.

    A window belongs when its first and its last frame do: for a block of frames (the
    test stretch) that is a window lying wholly inside it, never one that reaches back
    into the tuning frames.

    >>> window_mask(np.array([0, 0, 1, 1, 1], bool), np.array([2, 3, 4]), 2).tolist()
    [False, True, True]
    """
    mask = np.asarray(mask, bool)
    ends = np.asarray(ends, np.int64)
    starts = ends - int(length) + 1
    inside = starts >= 0
    out = np.zeros(len(ends), bool)
    out[inside] = mask[ends[inside]] & mask[starts[inside]]
    return out


def distinct_top(
    positions: np.ndarray, scores: np.ndarray, k: int, min_separation: int = MIN_SEPARATION
) -> np.ndarray:
    """Indices into ``positions`` of the best ``k`` distinct answers, best first.

    ``positions`` ``(n,) int`` are database positions (frames), ``scores`` ``(n,)`` their
    scores, **lower is better** (ties: lower position first; NaN never wins). An answer
    closer than ``min_separation`` frames to a better accepted one is not distinct and
    is skipped. Returns ``(m,) int64`` with ``m <= k`` (fewer when too few distinct
    answers exist).
    """
    positions = np.asarray(positions).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if positions.shape != scores.shape:
        raise PlaceprintError(f"positions {positions.shape} and scores {scores.shape} differ")
    if k < 1 or positions.size == 0:
        return np.zeros(0, np.int64)
    scores = np.where(np.isnan(scores), np.inf, scores)
    # With unique positions, each accepted answer blocks at most 2*sep-1 of them, so
    # the best k*(2*sep-1) candidates always suffice; otherwise fall back to all.
    budget = k * max(2 * min_separation - 1, 1)
    if positions.size > budget:
        part = np.argpartition(scores, budget - 1)[:budget]
        found = _greedy(part, positions, scores, k, min_separation)
        if found.size == k:
            return found
    return _greedy(np.arange(positions.size), positions, scores, k, min_separation)


def _greedy(
    idx: np.ndarray, positions: np.ndarray, scores: np.ndarray, k: int, sep: int
) -> np.ndarray:
    order = idx[np.lexsort((positions[idx], scores[idx]))]
    taken: list[int] = []
    for i in order:
        p = positions[i]
        if all(abs(int(p) - int(positions[j])) >= sep for j in taken):
            taken.append(int(i))
            if len(taken) == k:
                break
    return np.asarray(taken, dtype=np.int64)


def recall_at(
    predicted: np.ndarray,
    truth: np.ndarray,
    ks: Iterable[int] = (1, 5),
    tolerance: int = TOLERANCE,
) -> dict[int, float]:
    """Share of queries with a correct answer among their first ``k``, for each ``k``.

    ``predicted`` ``(n_queries, K) int``: database positions ranked best first, ``-1``
    for no answer; ``truth`` ``(n_queries,) int``. Correct when
    ``|predicted - truth| <= tolerance`` (frames). ``k`` larger than ``K`` uses all
    ``K`` answers. Returns ``{k: recall in [0, 1]}`` (NaN for zero queries).
    """
    predicted = np.asarray(predicted)
    truth = np.asarray(truth).reshape(-1)
    if predicted.ndim == 1:
        predicted = predicted[:, None]
    if predicted.ndim != 2 or predicted.shape[0] != truth.shape[0]:
        raise PlaceprintError(
            f"predicted must be (n_queries, K) with n_queries = len(truth) = {truth.shape[0]}, "
            f"got {predicted.shape}"
        )
    pred = predicted.astype(np.int64)
    hit = (pred >= 0) & (np.abs(pred - truth.astype(np.int64)[:, None]) <= tolerance)
    out: dict[int, float] = {}
    for k in ks:
        if k < 1:
            raise PlaceprintError(f"k must be >= 1, got {k}")
        found = hit[:, :k].any(axis=1)
        out[int(k)] = float(found.mean()) if found.size else float("nan")
    return out

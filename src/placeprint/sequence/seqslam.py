"""Brute-force SeqSLAM on full descriptors (Milford & Wyeth, ICRA 2012).

Three steps, each a plain function so that other matchers can reuse them:

1. :func:`difference_matrix` — every (query frame, database place) difference,
   ``(L, N)``; SeqSLAM's mean absolute difference by default.
2. :func:`enhance_contrast` — each difference is z-scored against the places
   around it in the database, so that a place that is only "less bad than its
   neighbours" stands out.
3. :func:`seqslam_search` — straight trajectories through the matrix, one per
   database end position and velocity; the lowest summed difference wins.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> db = rng.normal(size=(300, 16)).astype(np.float32)
>>> query = db[100:120] + 0.1 * rng.normal(size=(20, 16)).astype(np.float32)
>>> SeqSLAM().fit(db).search(query, k=3).best
119
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from placeprint.errors import PlaceprintError
from placeprint.evaluate.recall import MIN_SEPARATION, distinct_top
from placeprint.sequence.result import SequenceResult, gap_confidence

DEFAULT_VELOCITIES: tuple[float, ...] = (0.8, 0.9, 1.0, 1.1, 1.2)
METRICS = ("sad", "euclidean")


def difference_matrix(db: np.ndarray, queries: np.ndarray, metric: str = "sad") -> np.ndarray:
    """Differences between every query frame and every database place, ``(L, N) float32``.

    ``db`` ``(N, d)``, ``queries`` ``(L, d)``. ``metric="sad"``: mean absolute difference
    over the ``d`` dimensions (SeqSLAM's sum of absolute differences divided by ``d``);
    ``"euclidean"``: L2 distance (via a matrix product, faster on wide databases).
    """
    db, queries = _as_2d(db, "db"), _as_2d(queries, "queries")
    if db.shape[1] != queries.shape[1]:
        raise PlaceprintError(
            f"descriptor sizes differ: database {db.shape[1]}, queries {queries.shape[1]}"
        )
    if metric == "sad":
        return _sad_matrix(np.ascontiguousarray(db), np.ascontiguousarray(queries))
    if metric == "euclidean":
        q2 = np.einsum("ij,ij->i", queries, queries, dtype=np.float64)
        x2 = np.einsum("ij,ij->i", db, db, dtype=np.float64)
        d2 = q2[:, None] + x2[None, :] - 2.0 * (queries @ db.T).astype(np.float64)
        return np.sqrt(np.maximum(d2, 0.0)).astype(np.float32)
    raise PlaceprintError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")


@numba.njit(cache=True, fastmath=True, parallel=True)
def _sad_matrix(db: np.ndarray, queries: np.ndarray) -> np.ndarray:  # pragma: no cover
    n, d = db.shape
    L = queries.shape[0]
    out = np.empty((L, n), np.float32)
    for j in numba.prange(n):
        x = db[j]
        for t in range(L):
            q = queries[t]
            acc = np.float32(0.0)
            for i in range(d):
                acc += abs(q[i] - x[i])
            out[t, j] = acc / d
    return out


def enhance_contrast(D: np.ndarray, window: int = 10) -> np.ndarray:
    """Local contrast enhancement along the database axis, ``(L, N) float32``.

    Each ``D[t, i]`` becomes ``(D[t, i] - mean) / std`` over the database places
    ``i - window//2 .. i + window//2`` (clipped at the ends of the database; ``window+1``
    places for even ``window``, as in SeqSLAM). Uses cumulative sums: ``O(L N)``.
    ``window <= 0`` returns ``D`` unchanged (as float32).
    """
    D = np.asarray(D)
    if D.ndim != 2:
        raise PlaceprintError(f"difference matrix must be (L, N), got shape {D.shape}")
    if window <= 0 or D.shape[1] == 0:
        return D.astype(np.float32)
    L, N = D.shape
    half = window // 2
    x = D.astype(np.float64)
    x = x - x.mean(axis=1, keepdims=True)  # keeps the cumulative sums well conditioned
    c1 = np.zeros((L, N + 1))
    c2 = np.zeros((L, N + 1))
    np.cumsum(x, axis=1, out=c1[:, 1:])
    np.cumsum(x * x, axis=1, out=c2[:, 1:])
    i = np.arange(N)
    lo = np.maximum(i - half, 0)
    hi = np.minimum(i + half + 1, N)
    count = (hi - lo).astype(np.float64)
    mean = (c1[:, hi] - c1[:, lo]) / count
    var = (c2[:, hi] - c2[:, lo]) / count - mean * mean
    std = np.sqrt(np.maximum(var, 0.0))
    scale = np.maximum(std, 1e-6 * (np.abs(mean).max() + 1.0))
    return ((x - mean) / scale).astype(np.float32)


def trajectory_offsets(length: int, velocity: float) -> np.ndarray:
    """``(L,) int64``: how far before the end position each query frame lies.

    Frame ``t`` of a trajectory ending at database position ``e`` with ``velocity``
    (database places per query frame) is ``e - round(velocity * (L-1-t))``.
    """
    return np.rint(velocity * np.arange(length - 1, -1, -1)).astype(np.int64)


def trajectory_scores(
    D: np.ndarray, velocities: Sequence[float] = DEFAULT_VELOCITIES
) -> np.ndarray:
    """Summed difference of every straight trajectory, ``(n_velocities, N) float64``.

    ``D`` ``(L, N)``; entry ``[v, e]`` is ``sum_t D[t, e - round(v (L-1-t))]`` and ``inf``
    when the trajectory starts before the database (position < 0).
    """
    D = np.asarray(D)
    vels = _velocities(velocities)
    L, N = D.shape
    out = np.full((len(vels), N), np.inf)
    for a, v in enumerate(vels):
        off = trajectory_offsets(L, v)
        first = int(off[0])
        if first >= N:
            continue
        acc = np.zeros(N - first)
        for t in range(L):
            acc += D[t, first - off[t] : N - off[t]]
        out[a, first:] = acc
    return out


def seqslam_search(
    D: np.ndarray,
    velocities: Sequence[float] = DEFAULT_VELOCITIES,
    k: int = 5,
    min_separation: int = MIN_SEPARATION,
    confidence_window: int = 10,
) -> SequenceResult:
    """Best distinct trajectory end positions through a (contrast-enhanced) ``(L, N)`` matrix.

    Scores every database end position ``e`` at every velocity (see
    :func:`trajectory_scores`), keeps the best velocity per ``e`` and returns the
    ``k`` best distinct ``e`` (positions of the **last** query frame; answers closer
    than ``min_separation`` places to a better one are skipped). Confidence is
    :func:`~placeprint.sequence.result.gap_confidence` with ``confidence_window``
    places. ``ops = L * N * n_velocities`` (one per trajectory term).
    """
    D = np.asarray(D)
    if D.ndim != 2 or D.shape[0] == 0:
        raise PlaceprintError(f"difference matrix must be (L, N) with L >= 1, got {D.shape}")
    L, N = D.shape
    vels = _velocities(velocities)
    ops = L * N * len(vels)
    best = trajectory_scores(D, vels).min(axis=0)
    return result_from_scores(best, k, ops, min_separation, confidence_window)


def result_from_scores(
    scores: np.ndarray,
    k: int,
    ops: int,
    min_separation: int = MIN_SEPARATION,
    confidence_window: int = 10,
) -> SequenceResult:
    """Turn dense ``(N,)`` scores per end position (lower better, ``inf`` invalid) into a result."""
    scores = np.asarray(scores, dtype=np.float64)
    valid = np.flatnonzero(np.isfinite(scores))
    if valid.size == 0:
        return SequenceResult.empty(k, ops)
    pick = valid[distinct_top(valid, scores[valid], k, min_separation)]
    positions = np.full(k, -1, np.int64)
    out = np.full(k, np.inf)
    positions[: pick.size] = pick
    out[: pick.size] = scores[pick]
    conf = gap_confidence(scores, int(pick[0]), confidence_window)
    return SequenceResult(positions, out, conf, ops)


class SeqSLAM:
    """Brute-force SeqSLAM over a database of full descriptors.

    ``velocities``: database places per query frame tried (must include 1.0 for an
    equal-speed traverse); ``contrast_window``: places in the local contrast
    enhancement (0 = off); ``metric``: ``"sad"`` or ``"euclidean"``
    (:func:`difference_matrix`). ``fit(db)`` stores ``db_`` ``(N, d) float32``.
    """

    def __init__(
        self,
        velocities: Sequence[float] = DEFAULT_VELOCITIES,
        contrast_window: int = 10,
        metric: str = "sad",
        min_separation: int = MIN_SEPARATION,
    ) -> None:
        if metric not in METRICS:
            raise PlaceprintError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
        self.velocities = tuple(float(v) for v in _velocities(velocities))
        self.contrast_window = int(contrast_window)
        self.metric = metric
        self.min_separation = int(min_separation)

    def fit(self, db: np.ndarray) -> SeqSLAM:
        """Use ``db`` ``(N, d)`` as the database (replaces any earlier one)."""
        self.db_ = np.ascontiguousarray(_as_2d(db, "db"), dtype=np.float32)
        return self

    def add(self, db: np.ndarray) -> SeqSLAM:
        """Append places ``(n, d)`` to the database (positions continue after the last)."""
        if not hasattr(self, "db_"):
            return self.fit(db)
        db = _as_2d(db, "db")
        if db.shape[1] != self.db_.shape[1]:
            raise PlaceprintError(
                f"descriptor size {db.shape[1]} != database's {self.db_.shape[1]}: "
                "add descriptors from the same describer"
            )
        self.db_ = np.ascontiguousarray(np.vstack([self.db_, db.astype(np.float32)]))
        return self

    @property
    def ntotal(self) -> int:
        """Number of database places."""
        return int(self.db_.shape[0]) if hasattr(self, "db_") else 0

    def bytes_per_place(self) -> float:
        """Bytes the database needs per place: ``4 * d`` (float32 descriptors)."""
        return float(self.db_.shape[1] * 4) if hasattr(self, "db_") else 0.0

    def search(self, query_seq: np.ndarray, k: int = 5) -> SequenceResult:
        """Best ``k`` distinct database positions of the last frame of ``query_seq`` ``(L, d)``."""
        if not hasattr(self, "db_"):
            raise PlaceprintError("SeqSLAM has no database: call fit(db) first")
        D = difference_matrix(self.db_, query_seq, self.metric)
        D = enhance_contrast(D, self.contrast_window)
        return seqslam_search(D, self.velocities, k, self.min_separation)


def _velocities(velocities: Sequence[float]) -> np.ndarray:
    vels = np.asarray(velocities, dtype=np.float64).reshape(-1)
    if vels.size == 0 or not np.all(np.isfinite(vels)) or np.any(vels <= 0):
        raise PlaceprintError(f"velocities must be positive numbers, got {list(velocities)}")
    return vels


def _as_2d(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise PlaceprintError(f"{name} must be a non-empty (n, d) array, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
        raise PlaceprintError(f"{name} must hold finite numbers")
    return x

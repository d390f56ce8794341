"""Exhaustive trajectory search over compact codes: the ceiling of any index on the same codes.

Scores every end position and velocity of the database (``N x V x L`` code
comparisons) with multi-threaded numba; used on a few queries to show how much an
index loses against exhaustive search on the very same codes.
"""

from __future__ import annotations

import numba
import numpy as np

from placeprint.sequence.kernels import popcount64


@numba.njit(parallel=True, cache=True)
def _best_ends(db, query, velocities):
    L = query.shape[0]
    N = db.shape[0]
    V = velocities.shape[0]
    best = np.full(N, 1 << 40, np.int64)
    for e in numba.prange(N):
        for vi in range(V):
            v = velocities[vi]
            if e - np.int64(np.floor(v * (L - 1) + 0.5)) < 0:
                continue
            s = 0
            for t in range(L):
                p = e - np.int64(np.floor(v * (L - 1 - t) + 0.5))
                s += popcount64(db[p] ^ query[t])
            if s < best[e]:
                best[e] = s
    return best


def exhaustive_best(db_codes: np.ndarray, query_codes: np.ndarray, velocities) -> tuple[int, int]:
    """Best end position and its summed Hamming distance over all trajectories.

    ``db_codes (N,) uint64`` and ``query_codes (L,) uint64`` are codes as integers.
    Cost: ``N * len(velocities) * L`` comparisons.
    """
    best = _best_ends(
        np.ascontiguousarray(db_codes, np.uint64),
        np.ascontiguousarray(query_codes, np.uint64),
        np.asarray(velocities, np.float64),
    )
    e = int(np.argmin(best))
    return e, int(best[e])

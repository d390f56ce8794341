"""Multi-probe key generation: the most likely database keys of a query frame.

Each key bit of the query has a probability of disagreeing with the same place's
database bit (from its distance to the threshold, see
``CoarseCodec.bit_error_rates``). Probing flips sets of the least reliable bits in
order of increasing cost ``sum log(p_ok / p_flip)`` (Lv et al., multi-probe LSH).
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=16)
def flip_sets(n_bits: int, max_flips: int) -> np.ndarray:
    """All subsets of ``n_bits`` bits with at most ``max_flips`` members: ``(S, n_bits) bool``."""
    rows = [()]
    for r in range(1, max_flips + 1):
        rows.extend(itertools.combinations(range(n_bits), r))
    out = np.zeros((len(rows), n_bits), bool)
    for i, row in enumerate(rows):
        out[i, list(row)] = True
    return out


def probe_keys(
    base_keys: np.ndarray,
    error_rates: np.ndarray,
    n_probes: int,
    flip_bits: int = 12,
    max_flips: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_probes`` most likely keys of each frame: ``(L, n_probes) int64`` and their log-probs.

    ``base_keys (L,)`` are the query keys; ``error_rates (L, k)`` per key bit. Probe 0 is
    the query key itself.
    """
    L, k = error_rates.shape
    b = min(flip_bits, k)
    flips = flip_sets(b, min(max_flips, b))
    cost = np.log1p(-error_rates) - np.log(error_rates)  # >= 0 as error <= 0.5
    order = np.argsort(cost, axis=1, kind="stable")[:, :b]  # least reliable bits first
    c_sorted = np.take_along_axis(cost, order, axis=1)
    total = flips.astype(np.float64) @ c_sorted.T  # (S, L)
    n = min(n_probes, flips.shape[0])
    if n < flips.shape[0]:
        part = np.argpartition(total, n - 1, axis=0)[:n]  # (n, L) unordered
        inner = np.argsort(np.take_along_axis(total, part, axis=0), axis=0, kind="stable")
        pick = np.take_along_axis(part, inner, axis=0).T  # (L, n), most likely first
    else:
        pick = np.argsort(total, axis=0, kind="stable").T
    masks = flips.astype(np.int64) @ (np.int64(1) << order.astype(np.int64)).T  # (S, L)
    chosen = np.take_along_axis(masks.T, pick, axis=1)
    keys = base_keys.astype(np.int64)[:, None] ^ chosen
    base_logp = np.log1p(-error_rates).sum(axis=1)
    logp = base_logp[:, None] - np.take_along_axis(total.T, pick, axis=1)
    return keys, logp

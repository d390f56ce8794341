"""Retrieval without training: query expansion, database-side augmentation, fusion.

- ``alpha_query_expansion`` (αQE, Radenović, Tolias & Chum 2018): the query is replaced
  by the normalised sum of itself and its ``k`` best database matches, each weighted by
  its similarity to the power ``alpha``; the database is searched again.
- ``database_augmentation`` (αDBA, the same paper): every database vector is replaced
  the same way by its own ``k`` nearest database vectors (itself first), offline.
- ``fuse``: describer families joined so that cosine similarity is the weighted mean
  of each family's cosine similarity.

All work on cosine similarity of L2-normalised rows. ``benchmarks/retrieval.py``
measures each on real photos; none is on by default (none won there).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from placeprint.describe.whitening import l2_normalise
from placeprint.errors import PlaceprintError


def _weighted_sum(base: np.ndarray, sims: np.ndarray, rows: np.ndarray, X: np.ndarray, alpha):
    w = np.maximum(sims, 0.0) ** alpha  # (m, k)
    return l2_normalise(base + np.einsum("mk,mkd->md", w, X[rows]))


def _check(k: int, alpha: float) -> None:
    if k < 1 or not np.isfinite(alpha) or alpha < 0:
        raise PlaceprintError(f"need k >= 1 and alpha >= 0, got k={k}, alpha={alpha}")


def alpha_query_expansion(
    queries: np.ndarray, database: np.ndarray, k: int = 2, alpha: float = 3.0
) -> np.ndarray:
    """Expanded queries ``(m, d)``: each plus its ``k`` best matches in ``database``
    weighted by ``similarity ** alpha``, normalised. Search the database with them again."""
    _check(k, alpha)
    Q, X = l2_normalise(queries), l2_normalise(database)
    k = min(k, len(X))
    S = Q @ X.T
    rows = np.argsort(-S, axis=1, kind="stable")[:, :k]
    return _weighted_sum(Q, np.take_along_axis(S, rows, 1), rows, X, alpha)


def database_augmentation(database: np.ndarray, k: int = 2, alpha: float = 3.0) -> np.ndarray:
    """Augmented database ``(n, d)``: each row the ``similarity ** alpha``-weighted sum of
    its ``k`` nearest database rows (itself among them), normalised."""
    _check(k, alpha)
    X = l2_normalise(database)
    k = min(k, len(X))
    S = X @ X.T
    np.fill_diagonal(S, np.inf)  # itself first whatever the ties
    rows = np.argsort(-S, axis=1, kind="stable")[:, :k]
    np.fill_diagonal(S, 1.0)
    return _weighted_sum(np.zeros_like(X), np.take_along_axis(S, rows, 1), rows, X, alpha)


def fuse(blocks: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """Rows of every block L2-normalised, scaled by ``sqrt(weight / sum(weights))`` and
    joined: the dot product of two fused rows is the weighted mean of the blocks' cosines."""
    if not blocks:
        raise PlaceprintError("fuse needs at least one block of descriptors")
    n = len(blocks[0])
    if any(np.ndim(b) != 2 or len(b) != n for b in blocks):
        raise PlaceprintError("every block must be (n, d_i) with the same n rows")
    w = np.ones(len(blocks)) if weights is None else np.asarray(weights, float)
    if w.shape != (len(blocks),) or np.any(w < 0) or w.sum() <= 0:
        raise PlaceprintError("weights must be one non-negative number a block, not all 0")
    w = w / w.sum()
    return np.concatenate(
        [l2_normalise(b) * np.float32(np.sqrt(wi)) for b, wi in zip(blocks, w, strict=True)],
        axis=1,
    )

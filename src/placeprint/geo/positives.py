"""Weak supervision from a collection's own photos: pairs that show the same place.

NetVLAD and CRN learn from GPS-tagged photos whose positives are found, not labelled:
photos taken within a few metres of each other *and* matching geometrically (GPS alone
pairs a facade with the street behind the photographer). The pairs feed
:class:`placeprint.describe.whitening.LearnedWhitening` (:func:`whitening_from_pairs`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from placeprint.errors import PlaceprintError


def mine_positive_pairs(
    lat: np.ndarray,
    lon: np.ndarray,
    inliers: Callable[[int, int], int],
    radius_m: float = 15.0,
    min_inliers: int = 15,
) -> np.ndarray:
    """``(p, 2)`` row pairs ``i < j`` taken within ``radius_m`` metres of each other whose
    photos verify (``inliers(i, j) >= min_inliers``)."""
    from placeprint.geo.distance import haversine_km

    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    if radius_m <= 0 or min_inliers < 1:
        raise PlaceprintError("need radius_m > 0 and min_inliers >= 1")
    D = 1000.0 * haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    a, b = np.nonzero(np.triu(D <= radius_m, 1))
    keep = [k for k in range(len(a)) if inliers(int(a[k]), int(b[k])) >= min_inliers]
    return np.stack([a[keep], b[keep]], axis=1).astype(np.int64).reshape(-1, 2)


def whitening_from_pairs(X: np.ndarray, pairs: np.ndarray, dims: int | None = None, eps=0.1):
    """A :class:`LearnedWhitening` fitted on ``X (n, d)`` with the mined ``pairs``
    (plain PCA-whitening when fewer than 2 pairs)."""
    from placeprint.describe.whitening import LearnedWhitening

    X = np.asarray(X, np.float32)
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    w = LearnedWhitening(dims, eps)
    if len(pairs) < 2:
        return w.fit(X)
    # LearnedWhitening pairs the first rows of its input with the positives
    return w.fit(np.vstack([X[pairs[:, 0]], X]), positives=X[pairs[:, 1]])

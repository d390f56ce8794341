"""Mined positive pairs: within the radius (haversine) and verified, against brute force."""

import numpy as np
import pytest

from placeprint.errors import PlaceprintError
from placeprint.geo.positives import mine_positive_pairs, whitening_from_pairs


def test_pairs_are_near_and_verified():
    rng = np.random.default_rng(0)
    lat = 55.7 + rng.uniform(0, 4e-4, 25)  # ~45 m x ~25 m of street
    lon = 13.19 + rng.uniform(0, 4e-4, 25)
    inl = rng.integers(0, 40, size=(25, 25))
    got = mine_positive_pairs(lat, lon, lambda i, j: int(inl[i, j]), radius_m=15, min_inliers=15)
    R = 6371008.8
    expected = []
    for i in range(25):
        for j in range(i + 1, 25):
            p1, p2 = np.radians(lat[i]), np.radians(lat[j])
            dl = np.radians(lon[j] - lon[i])
            h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
            if 2 * R * np.arcsin(np.sqrt(h)) <= 15 and inl[i, j] >= 15:
                expected.append((i, j))
    assert 0 < len(expected) < 300 and [tuple(p) for p in got] == expected
    assert mine_positive_pairs(lat[:1], lon[:1], lambda i, j: 99).shape == (0, 2)
    with pytest.raises(PlaceprintError):
        mine_positive_pairs(lat, lon, lambda i, j: 99, radius_m=0)


def test_whitening_from_pairs_shrinks_what_changes_within_a_pair():
    rng = np.random.default_rng(1)
    n, d = 200, 6
    place = rng.normal(size=(n, d)) * np.array([1, 1, 1, 1, 1, 0.1])
    X = place.copy()
    X[:, 0] += rng.normal(size=n) * 3.0  # a nuisance: large, and differs within pairs
    pairs = np.stack([np.arange(0, 100), np.arange(100, 200)], 1)
    X[100:, 1:] = X[:100, 1:] + rng.normal(size=(100, d - 1)) * 0.05  # partners: same place
    w = whitening_from_pairs(X, pairs, dims=3)
    # the nuisance axis 0 contributes (almost) nothing to the kept directions
    comp = w.components_ / np.linalg.norm(w.components_, axis=1, keepdims=True)
    assert np.abs(comp[:, 0]).max() < 0.1
    plain = whitening_from_pairs(X, pairs[:1], dims=3)  # < 2 pairs: PCA-whitening
    assert plain.transform(X).shape == (n, 3)

"""Diffusion over the database graph: against a dense solve, and along a manifold."""

from __future__ import annotations

import numpy as np
import pytest

from placeprint.describe.diffusion import Diffusion
from placeprint.errors import PlaceprintError


def unit(X: np.ndarray) -> np.ndarray:
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def dense_reference(X, q, k, query_k, alpha, gamma):
    """The same diffusion written out densely: mutual kNN affinities, D^-1/2 A D^-1/2,
    ``f = (I - alpha S)^-1 y``."""
    X, q = unit(X.astype(float)), unit(q.astype(float)[None])[0]
    n = len(X)
    sims = X @ X.T
    np.fill_diagonal(sims, -np.inf)
    knn = np.zeros((n, n), bool)
    for i in range(n):
        knn[i, np.argsort(-sims[i], kind="stable")[:k]] = True
    A = np.where(knn & knn.T, np.maximum(sims, 0) ** gamma, 0.0)
    d = A.sum(1)
    inv = np.where(d > 0, 1 / np.sqrt(np.maximum(d, 1e-300)), 0)
    S = inv[:, None] * A * inv[None, :]
    s = X @ q
    y = np.zeros(n)
    top = np.argsort(-s, kind="stable")[:query_k]
    y[top] = np.maximum(s[top], 0) ** gamma
    return np.linalg.solve(np.eye(n) - alpha * S, y)


def test_scores_equal_the_dense_solve():
    rng = np.random.default_rng(0)
    X = np.abs(rng.normal(size=(60, 8)))
    q = np.abs(rng.normal(size=8))
    d = Diffusion(k=6, query_k=5, alpha=0.9, gamma=3.0, max_iter=500, tol=1e-10).fit(X)
    got = d.scores(q[None])[0]
    want = dense_reference(X, q, 6, 5, 0.9, 3.0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-8)
    scores, rows = d.search(q[None], k=7)
    np.testing.assert_array_equal(rows[0], np.argsort(-want, kind="stable")[:7])
    assert np.all(np.diff(scores[0]) <= 0)


def test_diffusion_follows_a_route_that_cosine_leaves():
    """Database: a route whose descriptor turns slowly (a chain), plus distractors that
    look a little like the query. The query is the route's first place: cosine ranks the
    distractors above the route's fifth place, diffusion ranks the whole start of the
    route first."""
    rng = np.random.default_rng(1)
    dim = 32
    a, b = np.eye(dim)[0], np.eye(dim)[1]
    angles = np.linspace(0, 2.4, 25)  # 25 places along a route, turning from a to b
    route = np.cos(angles)[:, None] * a + np.sin(angles)[:, None] * b
    route += 0.01 * rng.normal(size=route.shape)
    query = route[0] + 0.01 * rng.normal(size=dim)
    c = np.eye(dim)[2]
    distract = 0.9 * a + 0.436 * c + 0.03 * rng.normal(size=(10, dim))  # cosine ~0.9 to a
    X = np.vstack([route, distract])
    d = Diffusion(k=4, query_k=3).fit(X)
    _, rows = d.search(query[None], k=8)
    cosine = np.argsort(-(unit(X) @ unit(query[None])[0]), kind="stable")[:8]
    assert set(rows[0]) == set(range(8))  # the first 8 places of the route
    assert (cosine >= 25).sum() >= 3  # cosine lets distractors in


def test_bad_input_is_one_clear_error():
    X = np.ones((5, 3))
    with pytest.raises(PlaceprintError, match="not fitted"):
        Diffusion().scores(X)
    with pytest.raises(PlaceprintError, match="alpha"):
        Diffusion(alpha=1.0)
    with pytest.raises(PlaceprintError, match="k, query_k"):
        Diffusion(k=0)
    d = Diffusion(k=2).fit(np.random.default_rng(0).normal(size=(5, 3)))
    with pytest.raises(PlaceprintError, match="dimensions"):
        d.scores(np.ones((1, 4)))
    with pytest.raises(PlaceprintError, match="NaN"):
        d.scores(np.full((1, 3), np.nan))
    with pytest.raises(PlaceprintError, match="non-empty"):
        Diffusion().fit(np.zeros((0, 3)))
    with pytest.raises(PlaceprintError, match="real numbers"):
        Diffusion().fit([["a", "b"]])  # one clear error, not numpy's ValueError
    one = Diffusion().fit(np.ones((1, 3)))  # a database of one photo: no graph, still ranks
    assert one.search(np.ones((1, 3)), k=3)[1].tolist() == [[0]]

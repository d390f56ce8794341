"""αQE, αDBA and fusion against loops written from the definitions."""

import numpy as np
import pytest

from placeprint.describe.expansion import alpha_query_expansion, database_augmentation, fuse
from placeprint.errors import PlaceprintError


def _unit(A):
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def test_query_expansion_matches_the_definition():
    rng = np.random.default_rng(0)
    X, Q = rng.normal(size=(30, 8)), rng.normal(size=(5, 8))
    got = alpha_query_expansion(Q, X, k=3, alpha=2.0)
    Xn = _unit(X)
    for q, g in zip(_unit(Q), got, strict=True):
        sims = Xn @ q
        best = np.argsort(-sims)[:3]
        ref = q + sum(max(sims[j], 0) ** 2.0 * Xn[j] for j in best)
        np.testing.assert_allclose(g, ref / np.linalg.norm(ref), rtol=1e-5, atol=1e-6)


def test_database_augmentation_matches_the_definition():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(20, 6))
    X[7] = X[3]  # a tie with another row: each row still counts itself first
    got = database_augmentation(X, k=2, alpha=3.0)
    Xn = _unit(X)
    for i in range(len(X)):
        sims = Xn @ Xn[i]
        sims[i] = np.inf
        best = np.argsort(-sims, kind="stable")[:2]
        assert best[0] == i
        sims[i] = 1.0
        ref = sum(max(sims[j], 0) ** 3.0 * Xn[j] for j in best)
        np.testing.assert_allclose(got[i], ref / np.linalg.norm(ref), rtol=1e-5, atol=1e-6)
    # k = 1: every row is itself
    np.testing.assert_allclose(database_augmentation(X, k=1), Xn, rtol=1e-5, atol=1e-6)


def test_fusion_dot_is_the_weighted_mean_of_cosines():
    rng = np.random.default_rng(2)
    A, B = rng.normal(size=(4, 5)), rng.normal(size=(4, 9))
    F = fuse([A, B], weights=[3.0, 1.0])
    cos_a, cos_b = _unit(A) @ _unit(A).T, _unit(B) @ _unit(B).T
    np.testing.assert_allclose(F @ F.T, 0.75 * cos_a + 0.25 * cos_b, rtol=1e-5, atol=1e-6)
    for bad in ([], [A, B[:3]]):
        with pytest.raises(PlaceprintError):
            fuse(bad)
    with pytest.raises(PlaceprintError, match="weights"):
        fuse([A, B], weights=[-1.0, 1.0])
    with pytest.raises(PlaceprintError, match="k >= 1"):
        alpha_query_expansion(A, A, k=0)

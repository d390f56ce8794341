"""PCA-whitening and whitening learned from matching pairs, against their definitions."""

import numpy as np
import pytest

from placeprint.describe.whitening import (
    LearnedWhitening,
    PCAWhitening,
    l2_normalise,
    power_normalise,
)
from placeprint.errors import PlaceprintError


def raw(w, X):
    return ((X - w.mean_) @ w.components_.T) * w.scales_


def test_pca_whitening_gives_identity_covariance():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 12)) @ rng.normal(size=(12, 12))
    w = PCAWhitening(dims=6, eps=0.0).fit(X)
    np.testing.assert_allclose(np.cov(raw(w, X).T), np.eye(6), atol=1e-3)
    out = w.transform(X)
    assert out.shape == (4000, 6) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)


def test_learned_whitening_whitens_pair_differences_and_decorrelates_places():
    rng = np.random.default_rng(1)
    n, d = 6000, 10
    places = rng.normal(size=(n, d)) * np.linspace(3, 1, d)
    nuisance = np.zeros(d)
    nuisance[0] = 1.0  # the condition changes the strongest direction
    a = places + rng.normal(size=(n, 1)) * 2.0 * nuisance + 0.1 * rng.normal(size=(n, d))
    b = places - rng.normal(size=(n, 1)) * 2.0 * nuisance + 0.1 * rng.normal(size=(n, d))
    w = LearnedWhitening(dims=d, eps=1e-9).fit(a, b)
    diff = raw(w, a) - raw(w, b)
    np.testing.assert_allclose(diff.T @ diff / n, np.eye(d), atol=0.05)
    Y = raw(w, a)
    C = np.cov(Y.T)
    np.testing.assert_allclose(C - np.diag(np.diag(C)), 0, atol=0.05 * C.max())
    # the nuisance direction carries (almost) nothing after whitening
    weight_on_nuisance = np.abs(w.components_[:3, 0]).max() / np.abs(w.components_[:3]).max()
    assert weight_on_nuisance < 0.1


def test_learned_whitening_improves_matching_under_a_condition_change():
    rng = np.random.default_rng(2)
    n, d = 800, 20
    places = rng.normal(size=(n, d))
    # the condition moves 6 directions as much as places differ along them
    a = places + rng.normal(size=(n, 6)) @ np.eye(6, d) * 2.0 + 0.3 * rng.normal(size=(n, d))
    b = places + rng.normal(size=(n, 6)) @ np.eye(6, d) * 2.0 + 0.3 * rng.normal(size=(n, d))
    train, test = slice(0, 400), slice(400, n)

    def r1(fa, fb):
        d2 = ((fa[:, None] - fb[None]) ** 2).sum(-1)
        return float((d2.argmin(1) == np.arange(len(fa))).mean())

    plain = PCAWhitening(dims=d).fit(a[train])
    learned = LearnedWhitening(dims=d).fit(a[train], b[train])
    base = r1(plain.transform(b[test]), plain.transform(a[test]))
    better = r1(learned.transform(b[test]), learned.transform(a[test]))
    assert better > base + 0.2


def test_low_rank_pairs_and_bad_shapes():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 80)).astype(np.float32)
    w = LearnedWhitening(dims=16).fit(X, X[:30] + 0.1 * rng.normal(size=(30, 80)))
    assert w.transform(X).shape == (50, 16)
    with pytest.raises(PlaceprintError, match="positives"):
        LearnedWhitening().fit(X, X[:, :10])
    with pytest.raises(PlaceprintError, match="not fitted"):
        PCAWhitening().transform(X)
    w2 = PCAWhitening.from_state(w.state())
    np.testing.assert_array_equal(w2.transform(X), w.transform(X))


def test_normalisations_hand_computed():
    np.testing.assert_allclose(l2_normalise(np.array([[3.0, 4.0], [0, 0]])), [[0.6, 0.8], [0, 0]])
    np.testing.assert_allclose(power_normalise(np.array([-4.0, 9.0, 0.0])), [-2, 3, 0])


def test_gram_path_matches_a_direct_svd_when_images_are_fewer_than_dimensions():
    X = np.random.default_rng(5).normal(size=(30, 200)).astype(np.float32)
    X[:, :5] *= 10  # a few strong directions
    got = PCAWhitening(dims=12).fit(X)  # n < d: through the n x n Gram matrix
    Xc = X.astype(np.float64) - X.astype(np.float64).mean(0)
    _, s, vt = np.linalg.svd(Xc, full_matrices=False)
    lam = s[:12] ** 2 / (len(X) - 1)
    ref_scales = 1 / np.sqrt(lam + 1e-3 * lam[0] + 1e-12)
    assert got.output_dim == 12
    np.testing.assert_allclose(got.scales_, ref_scales, rtol=1e-3)
    # axes agree up to sign: compare |cosine| of matching components
    cos = np.abs(np.sum(got.components_ * vt[:12], axis=1))
    np.testing.assert_allclose(cos, 1, atol=1e-3)
    Y = X[:4] + 1
    ref = l2_normalise(((Y - Xc.mean(0) - X.mean(0)) @ vt[:12].T) * ref_scales)
    np.testing.assert_allclose(np.abs(got.transform(Y)), np.abs(ref), atol=1e-4)


def test_learned_whitening_low_rank_path_equals_the_dense_formula():
    """Fewer pairs than dimensions: the implicit (C_S + ridge I)^-1/2 equals the dense one."""
    rng = np.random.default_rng(7)
    n, m, d, k = 30, 12, 50, 8
    X = rng.normal(size=(n, d))
    P = X[:m] + 0.3 * rng.normal(size=(m, d))
    w = LearnedWhitening(dims=k, eps=0.1).fit(X, P)
    # reference: dense eigen-decomposition of the intra-pair covariance, then PCA
    diff = X[:m] - P
    lam, U = np.linalg.eigh(diff.T @ diff / m)
    lam = np.maximum(lam, 0) + 0.1 * np.mean(lam)
    p_s = (U / np.sqrt(lam)) @ U.T
    Y = (X - X.mean(0)) @ p_s
    vt = np.linalg.svd(Y - Y.mean(0), full_matrices=False)[2][:k]
    Z = rng.normal(size=(5, d))
    ref = ((Z - X.mean(0)) @ p_s) @ vt.T
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    got = w.transform(Z)
    np.testing.assert_allclose(got @ got.T, ref @ ref.T, atol=1e-4)  # signs of axes aside
    np.testing.assert_allclose(np.abs(got), np.abs(ref), atol=1e-4)

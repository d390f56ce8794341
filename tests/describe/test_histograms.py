"""Chi2 distance and its L2 feature maps against hand-computed values and brute force."""

import numpy as np
import pytest

from placeprint.describe.histograms import (
    additive_chi2_map,
    apply_map,
    chi2_distance,
    chi2_pairwise,
    hellinger_map,
    map_dim,
    normalise_sum,
)
from placeprint.errors import PlaceprintError


def _random_histograms(n, d, seed):
    rng = np.random.default_rng(seed)
    h = rng.gamma(0.5, size=(n, d)) * (rng.random((n, d)) > 0.3)  # sparse, some empty bins
    return normalise_sum(h)


def test_chi2_identical_is_zero_and_hand_computed_case():
    h = _random_histograms(5, 20, 0)
    np.testing.assert_array_equal(chi2_distance(h, h), np.zeros(5))
    a = np.array([0.5, 0.5, 0.0, 0.0])
    b = np.array([0.25, 0.25, 0.5, 0.0])
    # 0.5 * (0.0625 / 0.75 * 2 + 0.25 / 0.5 + 0 [empty in both])
    assert chi2_distance(a, b) == pytest.approx(0.5 * (2 * 0.0625 / 0.75 + 0.5))
    assert chi2_distance([1.0, 0.0], [0.0, 1.0]) == pytest.approx(1.0)  # disjoint: maximum 1


def test_chi2_broadcasts_and_pairwise_matches_brute_force():
    A, B = _random_histograms(4, 30, 1), _random_histograms(6, 30, 2)
    brute = np.array([[chi2_distance(a, b) for b in B] for a in A])
    np.testing.assert_allclose(chi2_distance(A[:, None], B[None]), brute, rtol=1e-12)
    np.testing.assert_allclose(chi2_pairwise(A, B, chunk_elements=50), brute, rtol=1e-5)
    np.testing.assert_allclose(chi2_distance(A, B[:4]), np.diag(brute[:, :4]), rtol=1e-12)
    with pytest.raises(PlaceprintError):
        chi2_pairwise(A, B[:, :5])


def test_hellinger_map_gives_bhattacharyya_distance():
    A, B = _random_histograms(3, 12, 3), _random_histograms(3, 12, 4)
    d2 = ((hellinger_map(A) - hellinger_map(B)) ** 2).sum(1)
    np.testing.assert_allclose(d2, 2 - 2 * np.sqrt(A * B).sum(1), rtol=1e-5)


def test_additive_chi2_map_approximates_twice_chi2():
    A, B = _random_histograms(50, 40, 5), _random_histograms(50, 40, 6)
    mapped_a, mapped_b = additive_chi2_map(A, steps=3), additive_chi2_map(B, steps=3)
    assert mapped_a.shape == (50, 40 * 5) and mapped_a.dtype == np.float32
    d2 = ((mapped_a - mapped_b) ** 2).sum(1)
    # sampling truncates the kernel spectrum, so squared L2 is a near-constant ~0.92 x 2 chi2
    ratio = d2 / (2 * chi2_distance(A, B))
    assert 0.85 < ratio.min() and ratio.max() < 1.0 and ratio.std() < 0.03
    assert np.corrcoef(d2, chi2_distance(A, B))[0, 1] > 0.99
    # the inner product is the additive chi2 kernel sum 2ab / (a + b)
    kernel = np.where(A + B > 0, 2 * A * B / np.where(A + B > 0, A + B, 1), 0).sum(1)
    np.testing.assert_allclose((mapped_a * mapped_b).sum(1), kernel, rtol=0.05)
    # empty bins map to zeros; map_dim agrees with apply_map
    assert np.all(additive_chi2_map(np.zeros((1, 4))) == 0)
    for kind in ("none", "sqrt", "chi2"):
        assert apply_map(A, kind).shape[1] == map_dim(40, kind)
    with pytest.raises(PlaceprintError, match="feature_map"):
        apply_map(A, "l1")
    with pytest.raises(PlaceprintError):
        additive_chi2_map(A, steps=4)


def test_normalise_sum_keeps_empty_rows_zero():
    h = normalise_sum(np.array([[1.0, 3.0], [0.0, 0.0]]))
    np.testing.assert_allclose(h, [[0.25, 0.75], [0.0, 0.0]])

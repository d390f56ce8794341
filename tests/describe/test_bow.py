"""Bag of words: weights against hand-computed values, brute force, the describer's contract."""

import numpy as np
import pytest

from placeprint import describe
from placeprint.describe.base import Describer
from placeprint.describe.bow import (
    BowDescriber,
    burstiness_weights,
    inverse_document_frequency,
    soft_assign_weights,
    tfidf_weights,
)
from placeprint.describe.local_features import dense_rootsift
from placeprint.errors import PlaceprintError

SMALL = dict(k=16, step=16, sizes=(4, 8), grid=(1, 1), fit_images=6, seed=2)


def texture(h, w, seed=0, smooth=2.0):
    """Smoothed random texture in [0, 255] (every patch has gradient)."""
    import cv2

    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), smooth)
    img -= img.min()
    return (img / img.max() * 255).astype(np.float32)


def grating(h, w, angle, period, seed):
    """Oriented sine grating plus a little texture."""
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    phase = (np.cos(angle) * xx + np.sin(angle) * yy) * 2 * np.pi / period
    return (0.8 * (127 + 120 * np.sin(phase)) + 0.2 * texture(h, w, seed)).astype(np.float32)


@pytest.fixture(scope="module")
def images():
    tex = [texture(40, 56, seed=10 + s, smooth=1.0 + s) for s in range(3)]
    return tex + [grating(40, 56, a, 9 + 3 * i, i) for i, a in enumerate((0.2, 1.2, 2.4))]


@pytest.fixture(scope="module")
def fitted(images):
    return BowDescriber(**SMALL).fit(images)


def test_burstiness_hand_made_counts():
    np.testing.assert_allclose(burstiness_weights(np.array([0, 1, 4, 9, 2.25])), [0, 1, 2, 3, 1.5])
    with pytest.raises(PlaceprintError, match=">= 0"):
        burstiness_weights(np.array([1, -1]))


def test_tfidf_tiny_corpus_hand_computed():
    counts = np.array([[2, 0, 1, 0], [0, 1, 1, 0], [0, 0, 3, 0]], np.float32)
    idf = inverse_document_frequency(counts)
    # N = 3; word 0 in 1 image, word 1 in 1, word 2 in 3, word 3 in none
    np.testing.assert_allclose(idf, [np.log(3), np.log(3), 0, 0], rtol=1e-6)
    t = tfidf_weights(counts, idf)
    np.testing.assert_allclose(t[0], [2 / 3 * np.log(3), 0, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(t[1], [0, 1 / 2 * np.log(3), 0, 0], rtol=1e-6)
    np.testing.assert_allclose(t[2], 0)
    np.testing.assert_allclose(tfidf_weights(np.zeros((1, 4)), idf), 0)  # empty image


def test_soft_assignment_hand_computed():
    sigma = 0.5
    sq = np.array([[1.0, 1.0 + 2 * sigma**2 * np.log(2), 1.0 + 2 * sigma**2 * np.log(4)]])
    # exp(-d^2 / 2 sigma^2) relative: 1, 1/2, 1/4 -> normalised 4/7, 2/7, 1/7
    np.testing.assert_allclose(soft_assign_weights(sq, sigma), [[4 / 7, 2 / 7, 1 / 7]], rtol=1e-6)
    np.testing.assert_allclose(soft_assign_weights(sq, sigma, r=2), [[2 / 3, 1 / 3, 0]], rtol=1e-6)
    two = soft_assign_weights(np.vstack([sq, sq]), sigma, r=np.array([1, 3]))
    np.testing.assert_allclose(two, [[1, 0, 0], [4 / 7, 2 / 7, 1 / 7]], rtol=1e-6)
    with pytest.raises(PlaceprintError, match="sigma"):
        soft_assign_weights(sq, 0)


def test_hard_plain_bow_matches_brute_force(images):
    """r=1, no burstiness, no grouping: tf-idf of brute-force nearest-word counts."""
    opts = {**SMALL, "r": 1, "burstiness": False, "repeated": False}
    d = BowDescriber(**opts).fit(images)
    centres = d.vocabulary_.centres_

    def hist(img):
        _, desc = dense_rootsift(img, step=16, sizes=(4, 8))
        nearest = ((desc[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        return np.bincount(nearest, minlength=16).astype(np.float64)

    H = np.stack([hist(im) for im in images])
    idf = np.log(6 / np.maximum((H > 0).sum(0), 1)) * ((H > 0).sum(0) > 0)
    np.testing.assert_allclose(d.idf_, idf, rtol=1e-5, atol=1e-6)
    T = H / H.sum(1, keepdims=True) * idf
    T /= np.maximum(np.linalg.norm(T, axis=1, keepdims=True), 1e-12)
    np.testing.assert_allclose(d(images), T, atol=1e-5)


def test_shape_dtype_determinism_and_unit_norm(fitted, images):
    out = fitted(images)
    assert (fitted.idf_ > 0).mean() > 0.5  # most words are specific to some images
    assert out.shape == (6, 16) and out.dtype == np.float32 and fitted.dim == 16
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    assert out.min() >= 0
    np.testing.assert_array_equal(out, fitted(images))
    np.testing.assert_allclose(BowDescriber(**SMALL).fit(images)(images), out, atol=1e-5)
    grid = BowDescriber(**{**SMALL, "grid": (2, 2)}).fit(images)
    assert grid.dim == 5 * 16 and grid(images[:2]).shape == (2, 80)
    assert grid.idf_.shape == (80,)  # one idf per region and word


def test_repeated_structure_is_capped(images):
    """A tiled image: grouping lowers the weight of its (repeated) words vs. no grouping."""
    import cv2

    rng = np.random.default_rng(7)
    tile = cv2.GaussianBlur(rng.uniform(0, 255, (16, 16)).astype(np.float32), (0, 0), 1.5)
    tiled = np.tile(tile, (3, 6))
    base = {**SMALL, "step": 8, "sizes": (2,), "min_side": None, "max_side": None}
    grouped = BowDescriber(**base, radius=10.0, max_desc_dist=0.1).fit(images + [tiled])
    plain = BowDescriber(**base, repeated=False).fit(images + [tiled])
    kp, desc = dense_rootsift(tiled, step=8, sizes=(2,), min_side=None, max_side=None)
    c_grouped = grouped.counts(kp, desc, (96, 48))
    c_plain = plain.counts(kp, desc, (96, 48))
    assert c_plain.sum() == pytest.approx(len(desc), rel=1e-5)  # soft weights sum to 1 each
    assert c_grouped.sum() < 0.5 * c_plain.sum()


def test_unfitted_raises_and_save_load(fitted, images, tmp_path):
    with pytest.raises(PlaceprintError, match="fit"):
        BowDescriber(**SMALL)(images[:1])
    with pytest.raises(PlaceprintError, match="sigma"):
        BowDescriber(sigma=0)
    path = tmp_path / "bow.describer"
    fitted.save(path)
    loaded = Describer.load(path)
    assert isinstance(loaded, BowDescriber) and loaded.params() == fitted.params()
    np.testing.assert_array_equal(loaded(images[:3]), fitted(images[:3]))
    assert loaded.config() == fitted.config()
    assert describe.get("bow", **fitted.params()).params() == fitted.params()

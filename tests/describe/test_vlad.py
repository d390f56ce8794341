"""VLAD: known answers, brute-force agreement, the describer's contract (fit, save/load)."""

import numpy as np
import pytest

from placeprint import describe
from placeprint.describe.base import Describer
from placeprint.describe.local_features import dense_rootsift
from placeprint.describe.vlad import (
    VladDescriber,
    cell_index,
    vlad_aggregate,
    vlad_normalise,
    vlad_regions,
)
from placeprint.describe.vocabulary import Vocabulary
from placeprint.errors import PlaceprintError


def texture(h, w, seed=0, smooth=2.0):
    """Smoothed random texture in [0, 255] (every patch has gradient)."""
    import cv2

    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), smooth)
    img -= img.min()
    return (img / img.max() * 255).astype(np.float32)


SMALL = dict(k=8, step=16, sizes=(4, 8), fit_images=6, whiten_dims=4, seed=1)


@pytest.fixture(scope="module")
def images():
    return [texture(40, 56, seed=s, smooth=1.5 + s % 3) for s in range(6)]


@pytest.fixture(scope="module")
def fitted(images):
    return VladDescriber(**SMALL).fit(images)


def test_single_descriptor_at_its_centre_is_zero():
    centres = np.random.default_rng(0).normal(size=(5, 128)).astype(np.float32)
    v = vlad_aggregate(centres[3:4], centres, np.array([3]))
    assert v.shape == (5 * 128,) and np.all(v == 0)


def test_residual_sums_hand_computed():
    centres = np.array([[0, 0], [1, 1], [5, 5]], np.float32)
    desc = np.array([[1, 0], [0, 1], [2, 2], [3, 1]], np.float32)
    v = vlad_aggregate(desc, centres, np.array([0, 0, 1, 1]))
    # centre 0: (1,0)+(0,1); centre 1: (2,2)-(1,1) + (3,1)-(1,1); centre 2 empty
    np.testing.assert_allclose(v, [1, 1, 3, 1, 0, 0])
    with pytest.raises(PlaceprintError, match="assignments"):
        vlad_aggregate(desc, centres, np.array([0, 0, 1, 3]))


def test_normalisation_hand_computed():
    out = vlad_normalise(np.array([4, 0, 0, -9, 0, 0], np.float32), k=3)
    # sqrt -> (2, 0 | 0, -3 | 0, 0); intra -> (1, 0 | 0, -1 | 0, 0); global L2
    np.testing.assert_allclose(out, np.array([1, 0, 0, -1, 0, 0]) / np.sqrt(2), atol=1e-6)


def test_regions_match_per_region_aggregate():
    rng = np.random.default_rng(4)
    desc = rng.normal(size=(50, 16)).astype(np.float32)
    centres = rng.normal(size=(3, 16)).astype(np.float32)
    assign = rng.integers(0, 3, 50)
    region = rng.integers(0, 4, 50)
    got = vlad_regions(desc, centres, assign, region, 4)
    for r in range(4):
        sel = region == r
        np.testing.assert_allclose(
            got[r], vlad_aggregate(desc[sel], centres, assign[sel]), atol=1e-5
        )


def test_cell_index():
    xy = np.array([[0, 0], [63.9, 0], [0, 31.9], [40, 20], [64, 32]], np.float32)
    np.testing.assert_array_equal(cell_index(xy, 64, 32, (2, 2)), [0, 1, 2, 3, 3])


def test_describer_matches_brute_force(images):
    """Unwhitened output = hand-assembled VLAD with brute-force nearest centres."""
    d = VladDescriber(**{**SMALL, "whiten_dims": None, "grid": (1, 1), "alpha": 0.5}).fit(images)
    assert d.dim == 8 * 128
    got = d(images[:2])
    centres = d.vocabulary_.centres_
    for img, row in zip(images[:2], got, strict=True):
        _, desc = dense_rootsift(img, step=16, sizes=(4, 8))
        nearest = ((desc[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
        v = np.zeros((8, 128))
        for c in range(8):
            v[c] = (desc[nearest == c] - centres[c]).sum(0)
        v = np.sign(v) * np.sqrt(np.abs(v))
        v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        v = v.ravel() / np.linalg.norm(v)
        np.testing.assert_allclose(row, v, atol=1e-4)


def test_shape_dtype_determinism_and_grid(fitted, images):
    out = fitted(images)
    assert out.shape == (6, 4) and out.dtype == np.float32 and fitted.dim == 4
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(out, fitted(images))
    again = VladDescriber(**SMALL).fit(images)
    np.testing.assert_allclose(again(images), out, atol=1e-5)  # same seed, same result
    grid = VladDescriber(**{**SMALL, "whiten_dims": None, "grid": (2, 1), "region_dims": None})
    grid.fit(images)
    assert grid.regions == 3 and grid(images[:1]).shape == (1, 3 * 8 * 128)
    # whole image, then left and right halves, each a normalised VLAD
    kp, desc, (w, h) = grid.features(images[0])
    assign = grid.vocabulary_.assign(desc, 1)[0][:, 0]
    left = kp[:, 0] < w / 2
    parts = [
        vlad_normalise(vlad_aggregate(desc[sel], grid.vocabulary_.centres_, assign[sel]), 8, 1.0)
        for sel in (np.ones(len(desc), bool), left, ~left)
    ]
    np.testing.assert_allclose(grid(images[:1])[0], np.concatenate(parts) / np.sqrt(3), atol=1e-5)


def test_region_projection_is_shared_pca_of_region_vlads(images):
    """With a grid, each region's VLAD is projected on the top PCA axes of all regions."""
    options = {**SMALL, "whiten_dims": None, "grid": (2, 1), "region_dims": 5}
    d = VladDescriber(**options).fit(images)
    assert d.projects_regions and d.dim == 3 * 5 and d(images[:1]).shape == (1, 15)
    full = VladDescriber(**{**options, "region_dims": None}).fit(images)
    raw = full(images)  # (6, 3 * 1024): the same vocabulary (same seed), unprojected
    blocks = raw.reshape(-1, 8 * 128).astype(np.float64)
    centred = blocks - blocks.mean(axis=0)
    vt = np.linalg.svd(centred, full_matrices=False)[2][:5]  # reference: a direct SVD
    np.testing.assert_allclose(np.abs(d.region_components_ @ vt.T), np.eye(5), atol=1e-3)
    want = (raw.reshape(6, 3, -1) - blocks.mean(axis=0)) @ d.region_components_.T
    want = want.reshape(6, -1) / np.linalg.norm(want.reshape(6, -1), axis=1, keepdims=True)
    np.testing.assert_allclose(d(images), want, atol=1e-4)
    assert VladDescriber(**{**options, "grid": (1, 1)}).projects_regions is False


def test_unfitted_raises_and_bad_options(images):
    with pytest.raises(PlaceprintError, match="fit"):
        VladDescriber(**SMALL)(images[:1])
    with pytest.raises(PlaceprintError, match="grid"):
        VladDescriber(grid=(0, 2))
    with pytest.raises(PlaceprintError, match="whiten_dims"):
        VladDescriber(whiten_dims=0)
    with pytest.raises(PlaceprintError, match="region_dims"):
        VladDescriber(region_dims=0)
    with pytest.raises(PlaceprintError, match="at least k"):
        Vocabulary(k=50).fit(np.zeros((10, 4), np.float32))


def test_save_load_round_trip(fitted, images, tmp_path):
    path = tmp_path / "vlad.describer"
    fitted.save(path)
    loaded = Describer.load(path)
    assert isinstance(loaded, VladDescriber) and loaded.params() == fitted.params()
    np.testing.assert_array_equal(loaded(images[:3]), fitted(images[:3]))
    assert loaded.config() == fitted.config()
    assert describe.get("vlad", **fitted.params()).params() == fitted.params()


def test_vocabulary_assign_matches_brute_force():
    X = np.random.default_rng(2).normal(size=(300, 6)).astype(np.float32)
    voc = Vocabulary(k=7, seed=3).fit(X)
    idx, sq = voc.assign(X[:20], n_nearest=3)
    d2 = ((X[:20, None] - voc.centres_[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(idx, np.argsort(d2, axis=1)[:, :3])
    np.testing.assert_allclose(sq, np.sort(d2, axis=1)[:, :3], rtol=1e-4, atol=1e-4)

"""GIST: flat images give zero energy, stripes excite the right orientation and scale."""

import numpy as np
import pytest

from placeprint import describe
from placeprint.describe.color import rgb_to_lab
from placeprint.describe.gist import GistDescriber, block_means, gabor_transfer, prefilter
from placeprint.errors import PlaceprintError


def _stripes(angle_deg, period, size=128):
    y, x = np.mgrid[:size, :size].astype(np.float32)
    t = np.deg2rad(angle_deg)
    wave = np.sin(2 * np.pi * (x * np.cos(t) - y * np.sin(t)) / period)
    return np.repeat((128 + 100 * wave)[..., None], 3, axis=2)


def _energy(d, img):
    """(scales, orientations) Gabor energy summed over the blocks."""
    g = d([img])[0, : d.gabor_dim].reshape(d.scales, d.orientations, d.blocks**2)
    return g.sum(-1)


def test_flat_image_has_zero_gabor_energy_and_its_colour():
    d = describe.get("gist")
    assert d.dim == 512 + 48
    colour = np.array([200.0, 120.0, 40.0])
    X = d([np.ones((60, 90, 3), np.float32) * colour])
    assert X.shape == (1, 560) and X.dtype == np.float32
    np.testing.assert_allclose(X[0, :512], 0, atol=1e-5)
    expected = np.tile(rgb_to_lab(colour) / 100, 16)
    np.testing.assert_allclose(X[0, 512:], d.color_weight * expected, atol=1e-5)
    raw = GistDescriber(normalise=False, color_weight=1.0)([np.ones((8, 8, 3)) * colour])
    np.testing.assert_allclose(raw[0, :512], 0, atol=1e-5)
    np.testing.assert_allclose(raw[0, 512:], expected, atol=1e-4)
    np.testing.assert_allclose(prefilter(np.full((32, 32), 77.0)), 0, atol=1e-6)


def test_stripes_excite_the_orientation_across_them_at_their_scale():
    d = GistDescriber(max_side=None)
    vertical = _energy(d, _stripes(0, period=6.4))  # varies along x
    s, o = np.unravel_index(vertical.argmax(), vertical.shape)
    # f = 1/6.4 = 0.156 cycles/px is closest to scale 1 (0.3 / 1.85 = 0.162)
    assert (s, o) == (1, 0)
    horizontal = _energy(d, _stripes(90, period=6.4))  # varies along y
    assert np.unravel_index(horizontal.argmax(), horizontal.shape) == (1, 4)
    diagonal = _energy(d, _stripes(45, period=6.4))  # wave vector 45 deg counter-clockwise
    assert np.unravel_index(diagonal.argmax(), diagonal.shape) == (1, 2)
    coarse = _energy(d, _stripes(0, period=21.0))  # 0.048 c/px -> scale 3 (0.3 / 1.85^3)
    assert np.unravel_index(coarse.argmax(), coarse.shape) == (3, 0)
    assert vertical[1, 0] > 5 * vertical[1, 4]


def test_transfer_functions_and_block_means():
    G = gabor_transfer(64, scales=2, orientations=4)
    assert G.shape == (8, 64, 64) and np.all(G[:, 0, 0] == 0)
    # scale 0, orientation 0 peaks on the fx axis at 0.3 cycles/pixel (19.2 of 64)
    peak = np.unravel_index(np.abs(G[0]).argmax(), G[0].shape)
    assert peak[0] == 0 and peak[1] in (19, 64 - 19)
    img = np.arange(64, dtype=np.float32).reshape(8, 8)
    np.testing.assert_allclose(block_means(img, 4), img.reshape(4, 2, 4, 2).mean(axis=(1, 3)))


def test_gist_deterministic_paths_options():
    rng = np.random.default_rng(0)
    imgs = [rng.uniform(0, 255, (32, 64, 3)).astype(np.float32) for _ in range(2)]
    d = GistDescriber()
    X = d(imgs)
    np.testing.assert_array_equal(d(imgs), X)
    assert np.all(np.isfinite(X)) and np.all(X[:, :512] >= 0)
    np.testing.assert_allclose(np.linalg.norm(X[:, :512], axis=1), 1, rtol=1e-5)
    raw = GistDescriber(normalise=False)(imgs)[:, :512]
    np.testing.assert_allclose(
        X[:, :512], raw / np.linalg.norm(raw, axis=1, keepdims=True), rtol=1e-4
    )
    # LMgist stretches the grey levels to [0, 255]: a gain and offset change nothing
    np.testing.assert_allclose(d([0.5 * imgs[0] + 20])[0, :512], X[0, :512], atol=2e-3)
    no_colour = GistDescriber(color_grid=0)
    assert no_colour.dim == 512
    np.testing.assert_allclose(no_colour(imgs), X[:, :512], atol=1e-6)
    assert GistDescriber(scales=3, orientations=6, blocks=2, image_size=64).dim == 3 * 6 * 4 + 48
    with pytest.raises(PlaceprintError, match="multiple"):
        GistDescriber(image_size=100)

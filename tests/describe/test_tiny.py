"""The colour tiny image: hand-computed thumbnails, normalisation and invariances."""

import numpy as np
import pytest

from placeprint import describe
from placeprint.describe.tiny import TinyImageDescriber, tiny_image
from placeprint.errors import PlaceprintError


def test_tiny_image_hand_computed_two_colours():
    img = np.zeros((32, 32, 3), np.float32)
    img[:, :16] = [200, 0, 0]  # left half red, right half black
    v = tiny_image(img, 16).reshape(16, 16, 3)
    # 16x16x3 values: 128 equal to 200, the rest 0 -> mean 200/6; norm of centred values
    raw = np.zeros((16, 16, 3))
    raw[:, :8, 0] = 200
    expected = (raw - raw.mean()) / np.linalg.norm(raw - raw.mean())
    np.testing.assert_allclose(v, expected, atol=1e-6)


def test_tiny_describer_shape_norm_and_invariance():
    rng = np.random.default_rng(0)
    imgs = [rng.uniform(20, 200, (48, 64, 3)).astype(np.float32) for _ in range(2)]
    d = describe.get("tiny")
    X = d(imgs)
    assert d.dim == 768 and X.shape == (2, 768) and X.dtype == np.float32
    np.testing.assert_allclose(X.mean(1), 0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1, rtol=1e-5)
    # zero mean / unit norm cancels a brightness gain and offset
    np.testing.assert_allclose(d([0.5 * imgs[0] + 30]), X[:1], atol=1e-5)
    np.testing.assert_array_equal(d(imgs), X)
    assert np.all(d([np.full((20, 30, 3), 90.0)]) == 0)  # flat image -> zeros
    assert TinyImageDescriber(size=8).dim == 192
    with pytest.raises(PlaceprintError):
        TinyImageDescriber(size=1)

"""sRGB -> L*a*b* against reference values and scikit-image; the L*a*b* histogram describer."""

import numpy as np
import pytest
from PIL import Image

from placeprint import describe
from placeprint.describe.color import (
    LabHistogramDescriber,
    lab_histogram,
    rgb_to_gray,
    rgb_to_lab,
)
from placeprint.describe.histograms import chi2_distance
from placeprint.errors import PlaceprintError


def test_lab_reference_values():
    lab = rgb_to_lab(np.array([[255, 255, 255], [255, 0, 0], [0, 0, 0], [0, 0, 255]]))
    np.testing.assert_allclose(lab[0], [100, 0, 0], atol=0.01)
    np.testing.assert_allclose(lab[1], [53.24, 80.09, 67.20], atol=0.01)  # sRGB red, D65
    np.testing.assert_allclose(lab[2], [0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(lab[3], [32.30, 79.19, -107.86], atol=0.01)  # sRGB blue
    grey = rgb_to_lab(np.full((2, 2, 3), 128.0))
    np.testing.assert_allclose(grey[..., 1:], 0, atol=0.01)
    assert grey.shape == (2, 2, 3) and grey.dtype == np.float32


def test_lab_matches_scikit_image_on_random_colours():
    from skimage.color import rgb2lab

    rgb = np.random.default_rng(0).uniform(0, 255, size=(500, 3))
    np.testing.assert_allclose(rgb_to_lab(rgb), rgb2lab(rgb / 255), atol=2e-3)
    with pytest.raises(PlaceprintError):
        rgb_to_lab(np.zeros((4, 2)))


def test_lab_histogram_one_colour_hits_the_hand_computed_bin():
    img = np.full((6, 5, 3), 128.0, np.float32)  # grey: L = 53.59, a = b = 0
    h = lab_histogram(rgb_to_lab(img)).reshape(4, 14, 14)
    # L bin floor(53.59 / 25) = 2; a bin floor(86.2 / (184.5 / 14)) = 6;
    # b bin floor(107.9 / (202.4 / 14)) = 7
    assert h[2, 6, 7] == 1.0 and h.sum() == 1.0
    two = np.concatenate([img, np.full((6, 5, 3), [255, 0, 0], np.float32)], axis=1)
    h2 = lab_histogram(rgb_to_lab(two)).reshape(4, 14, 14)
    # red: L 53.24 -> 2, a 80.09 -> floor(166.29 / 13.18) = 12, b 67.20 -> floor(175.1 / 14.46) = 12
    assert h2[2, 6, 7] == 0.5 and h2[2, 12, 12] == 0.5


def test_lab_hist_describer_shapes_sums_and_paths(tmp_path):
    rng = np.random.default_rng(1)
    imgs = [rng.uniform(0, 255, (40, 60, 3)).astype(np.float32) for _ in range(3)]
    Image.fromarray(imgs[0].astype(np.uint8)).save(tmp_path / "a.png")
    d = describe.get("lab_hist")
    assert d.dim == 784 and d.params()["bins"] == [4, 14, 14]
    X = d(imgs)
    assert X.shape == (3, 784) and X.dtype == np.float32
    np.testing.assert_allclose(X.sum(1), 1, rtol=1e-5)
    np.testing.assert_array_equal(X, d(imgs))  # deterministic
    np.testing.assert_allclose(d([tmp_path / "a.png"]), d([imgs[0].astype(np.uint8)]), atol=1e-7)
    assert chi2_distance(X[0], X[0]) == 0 and chi2_distance(X[0], X[1]) > 0
    rooted = LabHistogramDescriber(feature_map="sqrt")(imgs)
    np.testing.assert_allclose(rooted, np.sqrt(X), atol=1e-6)
    np.testing.assert_allclose((rooted**2).sum(1), 1, rtol=1e-5)
    assert LabHistogramDescriber(bins=(2, 3, 4)).dim == 24


def test_lab_hist_bad_options():
    with pytest.raises(PlaceprintError, match="bins"):
        LabHistogramDescriber(bins=(4, 14))
    with pytest.raises(PlaceprintError, match="feature_map"):
        LabHistogramDescriber(feature_map="log")
    with pytest.raises(PlaceprintError, match="max_side"):
        LabHistogramDescriber(max_side=4)


def test_rgb_to_gray_luma():
    np.testing.assert_allclose(
        rgb_to_gray(np.array([[[255, 0, 0], [10, 10, 10]]])), [[76.245, 10]], rtol=1e-5
    )

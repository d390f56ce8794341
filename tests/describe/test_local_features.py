"""Dense and detected RootSIFT: unit non-negative rows, grid geometry, translation, blobs."""

import numpy as np
import pytest
from conftest import require_real_data

from placeprint.describe.images import load_gray
from placeprint.describe.local_features import (
    dense_rootsift,
    detect_rootsift,
    grid_keypoints,
    rootsift,
    working_image,
)
from placeprint.errors import PlaceprintError


def texture(h, w, seed=0, smooth=2):
    """Smoothed random texture in [0, 255] (every patch has gradient)."""
    import cv2

    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), smooth)
    img -= img.min()
    return (img / img.max() * 255).astype(np.float32)


def test_rootsift_hand_computed():
    sift = np.zeros((2, 128), np.float32)
    sift[0, :2] = [1, 3]
    out = rootsift(sift)
    np.testing.assert_allclose(out[0, :2], [0.5, np.sqrt(0.75)], rtol=1e-6)
    assert np.all(out[1] == 0)  # an all-zero row stays zero


def test_working_image_sizes():
    img, f = working_image(np.zeros((32, 64), np.float32))
    assert img.shape == (128, 256) and img.dtype == np.uint8 and f == 4
    img, f = working_image(np.zeros((768, 1024), np.float32))
    assert img.shape == (480, 640) and f == pytest.approx(0.625)
    img, f = working_image(np.zeros((300, 400), np.float32))
    assert img.shape == (300, 400) and f == 1
    with pytest.raises(PlaceprintError, match="grayscale"):
        working_image(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(PlaceprintError, match="NaN"):
        working_image(np.full((8, 8), np.nan, np.float32))


def test_dense_rows_unit_nonnegative_and_grid():
    img = texture(32, 64)
    kp, desc = dense_rootsift(img, step=8, sizes=(4, 8))
    # working image 256x128, grid x = 4, 12, ..., 252 (32) and y = 4..124 (16), two sizes
    assert kp.shape == (32 * 16 * 2, 4) and desc.shape == (32 * 16 * 2, 128)
    assert kp.dtype == np.float32 and desc.dtype == np.float32
    assert desc.min() >= 0
    np.testing.assert_allclose(np.linalg.norm(desc, axis=1), 1, atol=1e-5)
    # keypoints come back in input pixels: grid positions and sizes divided by 4
    np.testing.assert_allclose(np.unique(kp[:, 0]), (np.arange(4, 256, 8)) / 4)
    np.testing.assert_allclose(np.unique(kp[:, 1]), (np.arange(4, 128, 8)) / 4)
    np.testing.assert_allclose(np.unique(kp[:, 2]), [1, 2])
    assert np.all(kp[:, 3] == 0)  # upright
    kp2, desc2 = dense_rootsift(img, step=8, sizes=(4, 8))
    np.testing.assert_array_equal(desc, desc2)  # deterministic


def test_flat_image_gives_no_descriptors():
    kp, desc = dense_rootsift(np.full((64, 64), 100, np.float32), step=16, sizes=(4,))
    assert kp.shape == (0, 4) and desc.shape == (0, 128)


def test_dense_descriptors_follow_a_translation():
    """Shifting the image by whole grid steps shifts the descriptors with it (interior)."""
    big = texture(200, 260, seed=3)
    a, b = big[:160, :200], big[:160, 16:216]  # b = a shifted left by 16 px
    kw = dict(step=8, sizes=(3,), min_side=None, max_side=None)
    ka, da = dense_rootsift(a, **kw)
    kb, db = dense_rootsift(b, **kw)
    # interior points: window 6 * 3 = 18 px, keep away from the borders
    inner_a = (ka[:, 0] >= 60) & (ka[:, 0] <= 140) & (ka[:, 1] >= 40) & (ka[:, 1] <= 120)
    ia = np.flatnonzero(inner_a)
    pos_b = {(x, y): i for i, (x, y) in enumerate(kb[:, :2].tolist())}
    ib = np.array([pos_b[(ka[i, 0] - 16, ka[i, 1])] for i in ia])
    assert len(ia) > 50
    np.testing.assert_allclose(da[ia], db[ib], atol=1e-3)


def test_grid_keypoints_bad_options():
    with pytest.raises(PlaceprintError, match="step"):
        grid_keypoints(10, 10, 0, (4,))
    with pytest.raises(PlaceprintError, match="step"):
        grid_keypoints(10, 10, 4, ())


def test_detect_rootsift_finds_planted_blobs():
    yy, xx = np.mgrid[:200, :300].astype(np.float32)
    centres = [(60, 50), (150, 120), (240, 70), (90, 160)]
    img = np.zeros((200, 300), np.float32)
    for cx, cy in centres:
        img += 200 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 5.0**2))
    kp, desc = detect_rootsift(img, max_features=50, min_side=None)
    assert 1 <= len(kp) <= 50 and desc.shape == (len(kp), 128)
    np.testing.assert_allclose(np.linalg.norm(desc, axis=1), 1, atol=1e-5)
    assert desc.min() >= 0
    for cx, cy in centres:  # a keypoint on every blob centre
        assert np.min(np.hypot(kp[:, 0] - cx, kp[:, 1] - cy)) < 2.0
    # a small image is enlarged first, keypoints still come back in its own pixels
    small = img[::4, ::4]
    kps, _ = detect_rootsift(small, max_features=50)
    assert len(kps) and kps[:, 0].max() < 75 and kps[:, 1].max() < 50
    with pytest.raises(PlaceprintError, match="max_features"):
        detect_rootsift(img, max_features=0)


def test_real_photo_is_shrunk_and_mapped_back():
    gray = load_gray(require_real_data("geotagged", "lund", "01.jpg"))
    assert gray.shape == (768, 1024)
    kp, desc = dense_rootsift(gray, step=16, sizes=(4,))  # working image 640x480
    assert len(kp) > 0.9 * 40 * 30 and desc.shape == (len(kp), 128)
    assert kp[:, 0].max() < 1024 and kp[:, 1].max() < 768 and kp[:, 0].max() > 1000
    kp, desc = detect_rootsift(gray, max_features=500)
    assert len(kp) == 500 and np.all(desc >= 0)

"""Line features: histograms of hand-made segments, and lines found in drawn images."""

import cv2
import numpy as np
import pytest

from placeprint import describe
from placeprint.describe.lines import LineDescriber, detect_lines, line_histograms
from placeprint.errors import PlaceprintError


def test_line_histograms_hand_computed():
    segs = np.array([[0, 0, 10, 0], [5, 5, 5, 35], [0, 0, 3, 3]], np.float32)
    h = line_histograms(segs, diagonal=100.0, angle_bins=17, length_bins=17, min_length=0.03)
    angles, lengths = h[:17], h[17:]
    total = 10 + 30 + np.hypot(3, 3)
    # horizontal -> bin 0, vertical (90 deg) -> bin floor(90 / (180 / 17)) = 8, 45 deg -> bin 4;
    # weighted by length
    assert angles[0] == pytest.approx(10 / total)
    assert angles[8] == pytest.approx(30 / total)
    assert angles[4] == pytest.approx(np.hypot(3, 3) / total)
    # length bin floor((log(l / 100) - log 0.03) / -log 0.03 * 17): 10 -> 5, 30 -> 11, 4.24 -> 0
    lo = np.log(0.03)
    for length in (10, 30, np.hypot(3, 3)):
        b = int(np.floor((np.log(length / 100) - lo) / -lo * 17))
        assert lengths[b] >= 1 / 3 - 1e-6
    assert lengths.sum() == pytest.approx(1) and angles.sum() == pytest.approx(1)
    assert np.all(line_histograms(np.zeros((0, 4)), 100.0) == 0)  # no lines: zeros


def test_detect_lines_on_a_drawn_rectangle():
    img = np.full((120, 160), 30, np.uint8)
    cv2.rectangle(img, (30, 20), (130, 100), 220, thickness=-1)
    segs = detect_lines(img)
    assert len(segs) >= 4
    dx, dy = segs[:, 2] - segs[:, 0], segs[:, 3] - segs[:, 1]
    angle = np.rad2deg(np.mod(np.arctan2(dy, dx), np.pi))
    # every segment is (near) horizontal or vertical and lies near an edge of the rectangle
    assert np.all((np.minimum(angle, 180 - angle) < 3) | (np.abs(angle - 90) < 3))
    xs, ys = segs[:, [0, 2]], segs[:, [1, 3]]
    near_edge = (np.minimum(np.abs(xs - 30), np.abs(xs - 130)) < 3).all(1) | (
        np.minimum(np.abs(ys - 20), np.abs(ys - 100)) < 3
    ).all(1)
    assert near_edge.all()


def test_line_describer_vertical_bars_fill_the_vertical_bin():
    img = np.full((96, 128, 3), 40.0, np.float32)
    for x in (20, 60, 100):
        img[10:90, x : x + 6] = 200
    d = describe.get("lines")
    X = d([img])
    assert d.dim == 34 and X.shape == (1, 34) and X.dtype == np.float32
    assert X[0, :17].argmax() == 8 and X[0, 8] > 0.9
    np.testing.assert_allclose([X[0, :17].sum(), X[0, 17:].sum()], [1, 1], rtol=1e-5)
    np.testing.assert_array_equal(d([img]), X)  # deterministic
    assert np.all(d([np.full((50, 50, 3), 90.0)]) == 0)  # flat: no lines
    assert LineDescriber(feature_map="chi2").dim == 34 * 3
    with pytest.raises(PlaceprintError):
        LineDescriber(min_length=0)

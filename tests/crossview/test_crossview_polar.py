"""Polar transform against known geometry: a line at a known azimuth, a ring at a known
radius, a quarter turn of the tile."""

import numpy as np
import pytest

from placeprint.crossview.polar import polar_transform
from placeprint.errors import PlaceprintError

S = 128


def _radial_line(az_deg: float) -> np.ndarray:
    tile = np.zeros((S, S), np.float32)
    a = np.radians(az_deg)
    for r in np.linspace(4, S / 2 - 2, 400):
        col = S / 2 + r * np.sin(a)  # east of the centre for 90 degrees
        row = S / 2 - r * np.cos(a)  # north is up
        tile[int(row), int(col)] = 1.0
    return tile


@pytest.mark.parametrize("az", [0.0, 37.0, 90.0, 200.0, 315.0])
def test_an_azimuth_line_lands_on_its_column(az):
    W = 256
    polar = polar_transform(_radial_line(az), 64, W)
    column = np.argmax(polar.sum(axis=0))
    expected = az / 360.0 * W - 0.5
    wrapped = (column - expected + W / 2) % W - W / 2
    assert abs(wrapped) <= 1.0


def test_a_ring_lands_on_its_row():
    yy, xx = np.mgrid[0:S, 0:S] + 0.5
    radius = np.hypot(xx - S / 2, yy - S / 2)
    tile = (np.abs(radius - 40.0) < 1.0).astype(np.float32)
    H = 64
    polar = polar_transform(tile, H, 128)
    row = np.argmax(polar.mean(axis=1))
    assert abs(row - (H - 40.0 / (S / 2) * H - 0.5)) <= 1.0  # the edge is row 0


def test_a_quarter_turn_is_a_quarter_shift_of_columns():
    rng = np.random.default_rng(0)
    tile = rng.uniform(0, 255, size=(S, S, 3)).astype(np.uint8)
    W = 256
    polar = polar_transform(tile, 64, W)
    turned = polar_transform(np.rot90(tile, k=-1), 64, W)  # clockwise: north -> east
    np.testing.assert_array_equal(turned, np.roll(polar, W // 4, axis=1))
    assert polar.dtype == np.uint8 and polar.shape == (64, W, 3)


def test_bad_tiles_are_refused():
    for bad in (np.zeros((10, 12)), np.zeros((3, 3)), np.zeros(5)):
        with pytest.raises(PlaceprintError, match="square"):
            polar_transform(bad)

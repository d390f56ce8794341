"""Perspective cut-outs of equirectangular panoramas, against known geometry."""

import numpy as np
import pytest

from placeprint.errors import PlaceprintError
from placeprint.synth.cutout import (
    camera_axes,
    panorama_coords,
    perspective_cutout,
    view_coords,
    view_rays,
)


def _angles_pano(H: int = 90) -> np.ndarray:
    """A float panorama whose channels are each pixel's azimuth and elevation (degrees)."""
    W = 2 * H
    az = (np.arange(W) + 0.5) / W * 360.0
    el = 90.0 - (np.arange(H) + 0.5) / H * 180.0
    return np.stack(np.meshgrid(az, el), axis=-1)  # (H, W, 2): [..., 0] az, [..., 1] el


def test_camera_axes_are_orthonormal_and_point_where_told():
    for heading, pitch in ((0, 0), (90, 0), (200, 30), (45, -60), (10, 90)):
        axes = camera_axes(heading, pitch)
        np.testing.assert_allclose(axes @ axes.T, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(np.cross(axes[1], axes[0]), axes[2], atol=1e-12)  # R x F = U
    # heading 90 looks east, pitch 0: forward (1, 0, 0), right is south, up is up
    np.testing.assert_allclose(camera_axes(90, 0), [[1, 0, 0], [0, -1, 0], [0, 0, 1]], atol=1e-12)


def test_centre_of_a_view_is_its_heading_and_pitch():
    for heading, pitch in ((0.0, 0.0), (123.0, 10.0), (359.0, -20.0), (270.0, 45.0)):
        az, el = view_rays((101, 101), heading, pitch, 60.0)  # odd size: a centre pixel
        assert np.degrees(az[50, 50]) == pytest.approx(heading % 360.0, abs=1e-9)
        assert np.degrees(el[50, 50]) == pytest.approx(pitch, abs=1e-9)
    # the horizontal field of view: the view's left and right edges are fov apart at pitch 0
    az, el = view_rays((3, 400), 0.0, 0.0, 90.0)
    left, right = np.degrees(az[1, 0]), np.degrees(az[1, -1])
    assert (right - (left - 360.0)) == pytest.approx(90.0 * 399 / 400, abs=0.2)


def test_view_coords_invert_view_rays():
    rng = np.random.default_rng(0)
    for _ in range(20):
        heading, pitch, fov = rng.uniform(0, 360), rng.uniform(-89, 89), rng.uniform(20, 150)
        size = (int(rng.integers(5, 60)), int(rng.integers(5, 80)))
        az, el = view_rays(size, heading, pitch, fov)
        row, col, front = view_coords(az, el, size, heading, pitch, fov)
        assert front.all()
        np.testing.assert_allclose(row, np.arange(size[0])[:, None] + 0 * col, atol=1e-7)
        np.testing.assert_allclose(col, np.arange(size[1])[None, :] + 0 * row, atol=1e-7)


def test_cutout_samples_the_directions_it_claims():
    pano = _angles_pano()
    for heading, pitch in ((90.0, 0.0), (181.0, 20.0), (250.0, -35.0)):  # off the seam
        view = perspective_cutout(pano, heading, pitch, 70.0, (41, 61))
        az, el = view_rays((41, 61), heading, pitch, 70.0)
        # bilinear sampling of a linear ramp is exact away from the seam and the poles
        np.testing.assert_allclose(view[..., 1], np.degrees(el), atol=1e-6)
        np.testing.assert_allclose(view[..., 0], np.degrees(az), atol=1e-6)


def test_seam_and_poles():
    H = 64
    rng = np.random.default_rng(1)
    pano = rng.integers(0, 255, size=(H, 2 * H, 3), dtype=np.uint8)
    # a view across the seam equals the same view of the panorama rolled by half a turn
    a = perspective_cutout(pano, 0.0, 0.0, 60.0, (32, 48))
    b = perspective_cutout(np.roll(pano, H, axis=1), 180.0, 0.0, 60.0, (32, 48))
    assert a.dtype == np.uint8 and np.abs(a.astype(int) - b.astype(int)).max() <= 1
    # straight up: every heading sees the same zenith at the centre; a panorama whose top
    # row is one colour gives that colour at the centre pixel
    pano[0] = (10, 200, 30)
    centre = [perspective_cutout(pano, h, 90.0, 60.0, (33, 33))[16, 16] for h in (0, 77, 250)]
    assert all(np.array_equal(c, [10, 200, 30]) for c in centre)
    # looking straight up, a square view is symmetric: opposite pixels see opposite azimuths
    az, el = view_rays((33, 33), 0.0, 90.0, 60.0)
    assert abs(np.degrees(az[0, 16] - az[32, 16])) == pytest.approx(180.0, abs=1e-9)
    assert el[0, 16] == pytest.approx(el[32, 16])


def test_nearest_keeps_labels_and_depth_values():
    pano = np.repeat(np.arange(8, dtype=np.float32)[None, :], 4, axis=0)  # (4, 8) columns
    pano[:, 3] = np.inf  # sky
    view = perspective_cutout(pano, 0.0, 0.0, 90.0, (9, 9), nearest=True)
    assert view.dtype == np.float32 and set(np.unique(view)) <= set(np.unique(pano))
    row, col = panorama_coords(*view_rays((9, 9), 0.0, 0.0, 90.0), 4)
    np.testing.assert_array_equal(
        view, pano[np.clip(np.rint(row), 0, 3).astype(int), np.mod(np.rint(col), 8).astype(int)]
    )


@pytest.mark.parametrize(
    "args, message",
    [
        ((np.zeros((10, 10)), 0.0), "2:1"),
        ((np.zeros((10, 20)), 0.0, 0.0, 180.0), "field of view"),
        ((np.zeros((10, 20)), 0.0, 95.0), "pitch"),
        ((np.zeros((10, 20)), float("nan")), "finite"),
        ((np.zeros((10, 20)), 0.0, 0.0, 60.0, (0, 5)), "size"),
    ],
)
def test_bad_requests(args, message):
    with pytest.raises(PlaceprintError, match=message):
        perspective_cutout(*args)

"""Forward warping of a panorama with depth: z-buffer, known geometry, holes."""

import numpy as np
import pytest

from placeprint.errors import PlaceprintError
from placeprint.synth.cutout import panorama_coords
from placeprint.synth.warp import nearest_first, pixel_directions, warp_panorama


def _wall_scene(H: int = 90, distance: float = 10.0):
    """A wall across the north at ``distance`` metres, sky elsewhere; every pixel's
    value is its own flat index (to see where it went)."""
    d = pixel_directions(H)
    north = d[..., 1]
    depth = np.where(north > 1e-6, distance / np.maximum(north, 1e-12), np.inf)
    ident = np.arange(H * 2 * H, dtype=np.int64).reshape(H, 2 * H)
    return ident, depth


def test_nearest_first_by_hand():
    targets = np.array([2, 0, 2, 2, 3])
    dist = np.array([5.0, 1.0, 0.5, 7.0, np.inf])
    np.testing.assert_array_equal(nearest_first(targets, dist, 5), [1, -1, 2, 4, -1])


def test_no_move_is_the_same_panorama():
    ident, depth = _wall_scene()
    view = warp_panorama(ident, depth, (0.0, 0.0, 0.0))
    np.testing.assert_array_equal(view.image, ident)
    assert not view.holes.any()
    np.testing.assert_allclose(view.depth, depth)


def test_a_wall_point_lands_where_geometry_says():
    H, D, step = 90, 10.0, 4.0
    ident, depth = _wall_scene(H, D)
    view = warp_panorama(ident, depth, (0.0, step, 0.0), fill=False)  # 4 m towards the wall
    d = pixel_directions(H)
    rng = np.random.default_rng(0)
    rows, cols = np.nonzero(np.isfinite(depth))
    checked = 0
    for k in rng.choice(len(rows), 200, replace=False):
        i, j = rows[k], cols[k]
        p = d[i, j] * depth[i, j] - np.array([0.0, step, 0.0])  # the point from the new spot
        az = np.mod(np.arctan2(p[0], p[1]), 2 * np.pi)
        el = np.arctan2(p[2], np.hypot(p[0], p[1]))
        r, c = panorama_coords(az, el, H)
        r, c = int(np.clip(np.rint(r), 0, H - 1)), int(np.mod(np.rint(c), 2 * H))
        if view.image[r, c] == ident[i, j]:  # it won its pixel: check its new distance
            assert view.depth[r, c] == pytest.approx(np.linalg.norm(p))
            checked += 1
        else:  # another point of the wall won: it lies no farther away
            assert view.depth[r, c] <= np.linalg.norm(p) + 1e-9
    assert checked > 50
    # straight ahead at eye level the wall is now D - step away
    centre_row, centre_col = H // 2, 0
    assert view.depth[centre_row, centre_col] == pytest.approx(D - step, rel=0.02)


def test_the_nearer_surface_hides_the_farther_and_holes_are_filled():
    H = 60
    d = pixel_directions(H)
    depth = np.full((H, 2 * H), 20.0)  # a sphere of radius 20 m around the camera
    image = np.zeros((H, 2 * H, 3), np.uint8)
    image[..., 0] = 200  # red far surface
    near = (np.abs(d[..., 0]) < 0.1) & (d[..., 1] > 0.9)  # a pole 5 m north
    depth[near] = 5.0 / d[near][:, 1]
    image[near] = (0, 0, 250)  # blue
    view = warp_panorama(image, depth, (1.0, 0.0, 0.0))  # 1 m east
    # the pole is still seen (blue) slightly west of north and nothing behind it shows there
    blue = (view.image[..., 2] == 250) & ~view.holes
    assert blue.sum() > 0
    assert (view.depth[blue] < 6.0).all()
    # holes exist (disocclusion behind the pole) and were filled from warped neighbours
    assert view.holes.any() and view.image.dtype == np.uint8
    unfilled = warp_panorama(image, depth, (1.0, 0.0, 0.0), fill=False)
    np.testing.assert_array_equal(unfilled.holes, view.holes)
    np.testing.assert_array_equal(view.image[~view.holes], unfilled.image[~unfilled.holes])


@pytest.mark.parametrize(
    "pano, depth, offset, message",
    [
        (np.zeros((10, 10)), np.ones((10, 10)), (0, 0, 0), "2:1"),
        (np.zeros((10, 20)), np.ones((10, 10)), (0, 0, 0), "depth must be"),
        (np.zeros((10, 20)), np.full((10, 20), np.nan), (0, 0, 0), "NaN"),
        (np.zeros((10, 20)), -np.ones((10, 20)), (0, 0, 0), "positive"),
        (np.zeros((10, 20)), np.ones((10, 20)), (0, 0), "three finite"),
    ],
)
def test_bad_warps(pano, depth, offset, message):
    with pytest.raises(PlaceprintError, match=message):
        warp_panorama(pano, depth, offset)

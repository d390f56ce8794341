"""Views of a panorama: headings, the panorama's yaw, warped grid positions, holes."""

import numpy as np
import pytest

from placeprint.errors import PlaceprintError
from placeprint.synth.cutout import perspective_cutout
from placeprint.synth.views import ViewSettings, panorama_views
from placeprint.synth.warp import pixel_directions


def _scene(H: int = 64):
    """A textured box room (walls 6-9 m away) under a sky band: image and depth."""
    d = pixel_directions(H)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(H, 2 * H, 3), dtype=np.uint8)
    half = np.array([6.0, 9.0, 1.7])  # walls east/west, north/south; the floor 1.7 m down
    with np.errstate(divide="ignore"):
        t = np.min(np.abs(half / np.where(d == 0, 1e-12, d)), axis=-1)
    depth = np.where(d[..., 2] > 0.3, np.inf, t)  # sky above 17 degrees
    return image, depth


def test_offsets_grid_own_position_first():
    s = ViewSettings(grid_step_m=2.0, grid_radius=1)
    off = s.offsets()
    assert off.shape == (9, 2) and tuple(off[0]) == (0.0, 0.0)
    assert {tuple(o) for o in off} == {(i * 2.0, j * 2.0) for i in (-1, 0, 1) for j in (-1, 0, 1)}
    assert len(ViewSettings(grid_radius=2).offsets()) == 25
    np.testing.assert_allclose(ViewSettings(headings=4).heading_list(), [0, 90, 180, 270])


def test_cutouts_only_without_depth_are_the_cutouts_at_each_heading():
    image, _ = _scene()
    s = ViewSettings(headings=6, size=(24, 32), fov_deg=70)
    views = list(panorama_views(image, None, s))
    assert len(views) == 6
    for (view, meta), heading in zip(views, s.heading_list(), strict=True):
        assert not meta.synthesized and meta.east_m == 0 and meta.heading_deg == heading
        np.testing.assert_array_equal(view, perspective_cutout(image, heading, 0, 70, (24, 32)))


def test_yaw_is_a_roll_of_the_panorama():
    # a panorama whose column 0 faces east (yaw 90) is the north-up panorama rolled by W/4
    image, depth = _scene()
    W = image.shape[1]
    rolled, rolled_depth = np.roll(image, W // 4, axis=1), np.roll(depth, W // 4, axis=1)
    s = ViewSettings(headings=4, size=(24, 32), grid_step_m=1.5, grid_radius=1, max_hole_share=1.0)
    a = list(panorama_views(image, depth, s, yaw_deg=90.0))
    b = list(panorama_views(rolled, rolled_depth, s, yaw_deg=0.0))
    assert len(a) == len(b) == 4 * 9
    for (va, ma), (vb, mb) in zip(a, b, strict=True):
        assert (ma.east_m, ma.north_m, ma.heading_deg) == (mb.east_m, mb.north_m, mb.heading_deg)
        # the same warp computed in two frames (hole filling wraps at the seam)
        assert ma.hole_share == mb.hole_share
        np.testing.assert_array_equal(va, vb)


def test_warped_view_moves_towards_what_it_faces():
    # stepping 3 m north, the north wall (9 m away) fills more of the northward view:
    # its pixels' depth drops by the step
    # looking north from 3 m further north, a wall pixel's image is the panorama's wall
    # pixel scaled about the view centre by 9 / 6 (pinhole: size ~ 1 / distance)
    H = 256
    d = pixel_directions(H)
    depth = np.where(d[..., 1] > 0.2, 9.0 / np.maximum(d[..., 1], 1e-9), np.inf)
    az, el = np.arctan2(d[..., 0], d[..., 1]), np.arcsin(d[..., 2])
    stripes = ((np.floor(np.tan(az) * 9.0) + np.floor(np.tan(el) / np.cos(az) * 9.0)) % 2) * 255
    image = np.repeat(stripes[..., None], 3, axis=2).astype(np.uint8)  # 1 m checkerboard
    s = ViewSettings(
        headings=1, size=(64, 64), grid_step_m=3.0, grid_radius=1, max_hole_share=1.0, fov_deg=40
    )
    views = {(m.east_m, m.north_m): v for v, m in panorama_views(image, depth, s)}
    here, ahead = views[(0.0, 0.0)][..., 0].astype(float), views[(0.0, 3.0)][..., 0].astype(float)
    # the centre square (1 m) spans 64 / (2 * 9 tan 20) pixels from here, 9/6 as many ahead
    f = 32 / np.tan(np.radians(20))
    expect_here, expect_ahead = f / 9.0, f / 6.0

    def edge_spacing(row):
        edges = np.nonzero(np.abs(np.diff(row)) > 127)[0]
        return np.median(np.diff(edges))

    assert edge_spacing(here[32]) == pytest.approx(expect_here, rel=0.1)
    assert edge_spacing(ahead[32]) == pytest.approx(expect_ahead, rel=0.1)


def test_views_with_too_many_holes_are_dropped():
    image, depth = _scene()
    everything = ViewSettings(
        headings=8, size=(24, 32), grid_step_m=5.0, grid_radius=2, max_hole_share=1.0
    )
    strict = ViewSettings(
        headings=8, size=(24, 32), grid_step_m=5.0, grid_radius=2, max_hole_share=0.0
    )
    all_views = [m for _, m in panorama_views(image, depth, everything)]
    kept = [m for _, m in panorama_views(image, depth, strict)]
    shares = [m.hole_share for m in all_views if m.synthesized]
    assert max(shares) > 0  # a 5 m step in a 12 x 18 m room opens holes
    assert len(kept) == len(all_views) - sum(s > 0 for s in shares)
    assert all(m.hole_share == 0 for m in kept)


@pytest.mark.parametrize(
    "settings, message",
    [
        (ViewSettings(headings=0), "headings"),
        (ViewSettings(fov_deg=180), "field of view"),
        (ViewSettings(size=(8, 8)), "view size"),
        (ViewSettings(grid_step_m=0), "grid step"),
        (ViewSettings(grid_radius=9), "grid radius"),
        (ViewSettings(max_hole_share=2), "hole share"),
    ],
)
def test_bad_settings(settings, message):
    image, _ = _scene(16)
    with pytest.raises(PlaceprintError, match=message):
        list(panorama_views(image, None, settings))


def test_not_a_panorama():
    with pytest.raises(PlaceprintError, match="2:1"):
        list(panorama_views(np.zeros((30, 40, 3), np.uint8), None, ViewSettings()))
    with pytest.raises(PlaceprintError, match="depth map"):
        list(panorama_views(np.zeros((30, 60, 3), np.uint8), np.ones((30, 30)), ViewSettings()))

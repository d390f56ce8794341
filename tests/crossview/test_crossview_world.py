"""The synthetic city and its views, against hand-placed geometry and a brute-force ray cast."""

import math

import numpy as np
import pytest

from placeprint.crossview.render import aerial_tile, crop_view, panorama
from placeprint.crossview.world import BUILDING, ROAD, Condition, World, WorldConfig
from placeprint.errors import PlaceprintError

SMALL = WorldConfig(size_m=160.0)


def _one_box_world():
    """Flat grass, one 10 m block 20-26 m east of the point (80, 80)."""
    w = World.blank(SMALL)
    w.add_box(100.0, 70.0, 106.0, 90.0, 10.0, (0.8, 0.1, 0.1), (0.1, 0.1, 0.8))
    return w


def test_a_block_east_is_seen_at_azimuth_90_and_its_height():
    w = _one_box_world()
    W = 256
    image, depth = panorama(w, 80.0, 80.0, Condition("summer", 12.0), width=W)
    H = W // 2
    el = 90.0 - (np.arange(H) + 0.5) / H * 180.0
    east, west = W // 4, 3 * W // 4
    top = math.degrees(math.atan2(10.0 - 1.7, 20.0))  # the block's top edge seen from 20 m
    facade = (el > 1.0) & (el < top - 1.0)
    assert np.all(np.abs(depth[facade, east] - 20.0) <= 0.5 + 1e-6)
    assert np.all(np.isinf(depth[el > top + 1.0, east]))  # sky above it
    assert np.all(np.isinf(depth[el > 1.0, west]))  # nothing stands to the west
    # the facade shows its side colour (red dominates), not the roof's blue, between
    # rows of windows (dark glass by day)
    px = image[facade, east].astype(int)
    red = px[:, 0] > 2 * px[:, 2]
    glass = (px[:, 2] > px[:, 0]) & (px.sum(axis=1) < 250)  # dark bluish glass, hazed
    assert np.all(red | glass) and red.mean() > 0.5 and glass.any()
    # looking down: flat ground at the distance the eye height gives
    row = np.argmin(np.abs(el + 30.0))
    assert depth[row, west] == pytest.approx(1.7 / math.tan(math.radians(-el[row])), abs=0.6)


def test_the_aerial_tile_is_north_up_and_centred():
    w = _one_box_world()
    tile = aerial_tile(w, 80.0, 80.0, Condition("summer", 12.0), size_px=128, res_m=0.5)
    # the block covers x 100-106 (columns 104-116) and y 70-90 (rows 44-84)
    roof, grass = tile[64, 110].astype(int), tile[64, 20].astype(int)
    assert roof[2] > roof[0] and roof[2] > roof[1]  # blue roof
    assert grass[1] > grass[0] and grass[1] > grass[2]  # green grass
    assert np.all(tile[30:42, 108:112, 2] < tile[64, 110, 2])  # north of the block: not roof
    assert np.all(tile[46:82, 106:114, 2] == tile[64, 110, 2])  # the roof: rows 44-84


def _brute_force_depth(w, x, y, az, el, eye_m=1.7, max_range=150.0, step=0.05):
    """First point along the line of sight below the top of its map cell."""
    row0, col0, _ = w.to_cell(np.array([x]), np.array([y]))
    eye = float(w.ground[row0[0], col0[0]]) + eye_m
    surface = w.surface()
    for d in np.arange(step, max_range, step):
        px, py = x + d * math.sin(az), y + d * math.cos(az)
        r, c, inside = w.to_cell(np.array([px]), np.array([py]))
        if not inside[0]:
            return math.inf
        if eye + d * math.tan(el) <= surface[r[0], c[0]]:
            return d
    return math.inf


def test_panorama_depth_matches_a_brute_force_ray_cast():
    w = World.generate(3, SMALL)
    rng = np.random.default_rng(1)
    x, y = w.street_points(1, rng, 40.0)[0]
    W = 64
    _, depth = panorama(w, x, y, Condition(), width=W)
    H = W // 2
    agree = total = 0
    for j in range(0, W, 8):
        for i in range(2, H - 2, 3):
            az = (j + 0.5) / W * 2 * math.pi
            el = math.pi / 2 - (i + 0.5) / H * math.pi
            ref = _brute_force_depth(w, x, y, az, el)
            got = float(depth[i, j])
            total += 1
            # the renderer samples one point a map cell (0.5 m): allow a cell and a half
            agree += (math.isinf(ref) and math.isinf(got)) or abs(ref - got) <= 0.75
    assert agree / total >= 0.95


def test_the_same_seed_gives_the_same_city():
    a, b, c = World.generate(7, SMALL), World.generate(7, SMALL), World.generate(8, SMALL)
    for name in ("ground", "height", "kind", "top", "side", "texture"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.height, c.height)
    assert (a.kind == ROAD).mean() > 0.05 and (a.kind == BUILDING).mean() > 0.1


def test_street_points_lie_on_roads_inside_the_margin():
    w = World.generate(2, SMALL)
    pts = w.street_points(200, np.random.default_rng(0), 30.0)
    r, c, inside = w.to_cell(pts[:, 0], pts[:, 1])
    assert inside.all() and np.all(w.kind[r, c] == ROAD)
    assert pts.min() >= 30.0 - 0.25 and pts.max() <= 160.0 - 30.0 + 0.25


def test_crop_view_wraps_at_the_seam():
    pano = np.tile(np.arange(64), (32, 1))
    view = crop_view(pano, 0.0, 90.0)  # 16 columns centred on north
    assert view[0].tolist() == list(range(56, 64)) + list(range(0, 8))
    assert crop_view(pano, 90.0, 360.0).shape == (32, 64)
    with pytest.raises(PlaceprintError, match="2:1"):
        crop_view(np.zeros((30, 64)), 0.0, 90.0)
    with pytest.raises(PlaceprintError, match="field of view"):
        crop_view(pano, 0.0, 0.0)


@pytest.mark.parametrize(
    "config, message",
    [
        (WorldConfig(street_spacing_m=(50.0, 40.0)), "street_spacing_m"),
        (WorldConfig(size_m=10.0), "size_m"),
        (WorldConfig(road_width_m=(30.0, 40.0)), "narrower"),
        (WorldConfig(park_share=0.8, water_share=0.5), "park_share"),
        (WorldConfig(size_m=float("nan")), "size_m"),
    ],
)
def test_impossible_worlds_are_refused(config, message):
    with pytest.raises(PlaceprintError, match=message):
        World.generate(0, config)


def test_bad_conditions_are_refused():
    w = World.blank(SMALL)
    with pytest.raises(PlaceprintError, match="season"):
        panorama(w, 80, 80, Condition("spring", 12.0))
    with pytest.raises(PlaceprintError, match="hour"):
        aerial_tile(w, 80, 80, Condition("summer", 24.0))
    with pytest.raises(PlaceprintError, match="hour"):
        panorama(w, 80, 80, Condition("summer", -1.0))
    with pytest.raises(PlaceprintError, match="even width"):
        panorama(w, 80, 80, width=63)


def test_street_lines_run_along_road_centres():
    w = World.generate(2, SMALL)
    for axis in ("x", "y"):
        for i in range(len(w.streets[axis])):
            pts = w.street_line(axis, i, 5.0, 10.0)
            r, c, inside = w.to_cell(pts[:, 0], pts[:, 1])
            assert inside.all()
            # the centre line is a road wherever no other street's pavement cuts it
            assert np.mean(w.kind[r, c] == ROAD) > 0.95
            fixed = pts[:, 0] if axis == "x" else pts[:, 1]
            assert np.all(fixed == w.streets[axis][i])
            np.testing.assert_allclose(np.diff(pts[:, 1] if axis == "x" else pts[:, 0]), 5.0)
    with pytest.raises(PlaceprintError, match="streets"):
        w.street_line("x", 99, 5.0, 10.0)


def test_night_keeps_the_geometry_and_darkens_what_lamps_do_not_reach():
    w = World.blank(SMALL)
    w.add_box(90, 60, 100, 100, 12.0, (0.8, 0.8, 0.8))  # a wall 10 m east
    w.add_box(60, 140, 100, 150, 12.0, (0.8, 0.8, 0.8))  # a wall 60 m north
    day, depth_day = panorama(w, 80, 80, Condition("summer", 12.0), width=256)
    night, depth_night = panorama(w, 80, 80, Condition("summer", 23.0), width=256)
    np.testing.assert_array_equal(depth_day, depth_night)
    assert Condition("summer", 23.0).is_night and not Condition("summer", 12.0).is_night
    lum = night.astype(float).mean(axis=2)
    sky = ~np.isfinite(depth_night)
    assert lum[sky].mean() < 0.3 * day.astype(float).mean(axis=2)[sky].mean()
    # the near wall (east, azimuth 90) is lit by the lamps, the far one (north) hardly
    row = 60  # a little above the horizon (row 64 of 128)
    near, far = lum[row, 64], lum[row, 0]
    assert np.isfinite(depth_night[row, 64]) and np.isfinite(depth_night[row, 0])
    assert depth_night[row, 64] < 15 and depth_night[row, 0] > 55
    assert near > 2 * far

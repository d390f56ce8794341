"""The view synthesis ceilings: nearest heading and grid point, views at a known pose, and
the scoring of added views."""

import numpy as np
import pytest

from placeprint.evaluate.viewsynth_ceiling import (
    CEILINGS,
    ceiling_views,
    nearest_heading,
    nearest_offset,
    score_ceilings,
)
from placeprint.synth.views import ViewSettings


def test_nearest_heading_wraps_around_north():
    headings = np.arange(12) * 30.0
    assert nearest_heading(350.0, headings) == 0.0
    assert nearest_heading(14.0, headings) == 0.0
    assert nearest_heading(16.0, headings) == 30.0
    assert nearest_heading(-40.0, headings) == 330.0
    assert nearest_heading(196.0, headings) == 210.0


def test_nearest_offset_by_hand():
    offsets = ViewSettings(grid_step_m=4.0, grid_radius=1).offsets()
    np.testing.assert_array_equal(nearest_offset((3.1, -0.5), offsets), [4.0, 0.0])
    np.testing.assert_array_equal(nearest_offset((-1.0, 1.5), offsets), [0.0, 0.0])
    np.testing.assert_array_equal(nearest_offset((-2.5, -3.0), offsets), [-4.0, -4.0])


def test_views_at_a_panorama_own_pose_are_its_cut_out():
    """A query standing on a panorama and facing a database heading: every ceiling's view
    is that panorama's own cut-out (the warp with no offset up to resampling)."""
    from placeprint.crossview.render import panorama
    from placeprint.crossview.world import Condition, World
    from placeprint.synth.cutout import perspective_cutout
    from placeprint.synth.world_route import route_points

    world = World.generate(7)
    points = route_points(world, 1, 30.0, margin_m=20.0)[:2]
    shots = [panorama(world, x, y, Condition("summer", 12.0), width=128) for x, y in points]
    images, depths = np.stack([s[0] for s in shots]), np.stack([s[1] for s in shots])
    settings = ViewSettings(headings=8, size=(24, 32))
    poses = np.array([[*points[1], 90.0], [*points[0], 225.0]])
    made = ceiling_views(world, points, images, depths, poses, [1, 0], settings, 128)
    assert set(made) == set(CEILINGS)
    for i, (p, heading) in enumerate([(1, 90.0), (0, 225.0)]):
        own = perspective_cutout(images[p], heading, 0.0, 60.0, (24, 32)).astype(int)
        for name in ("render_at_pose", "render_nearest_heading", "render_nearest_grid"):
            np.testing.assert_array_equal(made[name][i], own)
        assert np.abs(made["warp_at_pose"][i].astype(int) - own).mean() < 3


def test_added_views_are_found_and_scored_by_their_label():
    """Queries that are the added views themselves come back first (R@1 1); labelled with
    a panorama the query is not near, they count as wrong (R@1 0)."""
    rng = np.random.default_rng(3)
    views = rng.integers(0, 256, size=(130, 48, 64, 3), dtype=np.uint8)  # the codec needs 128
    source = np.arange(130) % 5
    extra = rng.integers(0, 256, size=(5, 48, 64, 3), dtype=np.uint8)
    options = {"whiten_dims": 64, "layer": 6, "image_size": [64, 48], "grid": [4, 3]}
    queries = {"night": extra}
    correct = {"night": np.eye(5, dtype=bool)}
    right = score_ceilings({"x": extra}, np.arange(5), views, source, "cnn_gem", options,
                           queries, correct)  # fmt: skip
    assert right == {"x": {"night": pytest.approx(1.0)}}
    wrong = score_ceilings({"x": extra}, (np.arange(5) + 1) % 5, views, source, "cnn_gem",
                           options, queries, correct)  # fmt: skip
    assert wrong == {"x": {"night": pytest.approx(0.0)}}

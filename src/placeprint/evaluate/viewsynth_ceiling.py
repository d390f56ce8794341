"""How far view synthesis could lift the night: ``benchmarks/viewsynth.py --ceiling``.

Each ceiling adds one daytime view per query (in the database panoramas' light) to
the cut-outs database, made at or near the query's own pose, and labelled with the
panorama nearest the query; the night and day queries are then scored as usual:

- ``render_at_pose``: rendered at the query's position and heading: a perfect view
  synthesis, so the night R@1 the describer itself allows;
- ``warp_at_pose``: the nearest panorama warped to the query's position and cut out at its
  heading: this project's warping with a grid as dense as one could wish;
- ``render_nearest_heading``: rendered at the query's position, cut out at the nearest of
  the database headings: what the heading step alone costs;
- ``render_nearest_grid``: rendered at the nearest grid position around the nearest
  panorama, at the query's heading: what the grid step alone costs.

The synthetic renderer makes these views; no real panorama set could.
"""

from __future__ import annotations

import numpy as np

CEILINGS = (
    "render_at_pose",
    "warp_at_pose",
    "render_nearest_heading",
    "render_nearest_grid",
)


def nearest_heading(heading: float, headings: np.ndarray) -> float:
    """The one of ``headings`` (degrees) closest to ``heading`` around the circle."""
    gap = np.abs((np.asarray(headings, float) - heading + 180.0) % 360.0 - 180.0)
    return float(np.asarray(headings, float)[int(np.argmin(gap))])


def nearest_offset(east_north: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The row of ``offsets (k, 2)`` nearest the ``(east, north)`` offset."""
    offsets = np.asarray(offsets, float)
    return offsets[int(np.argmin(np.hypot(*(offsets - np.asarray(east_north, float)).T)))]


def ceiling_views(world, points, images, depths, poses, near, settings, width):
    """``{ceiling: (queries, h, w, 3) views}`` for every pose ``(x, y, heading)``, made
    as the module docstring says; ``near``: each pose's nearest panorama."""
    from placeprint.crossview.render import panorama
    from placeprint.crossview.world import Condition
    from placeprint.evaluate.viewsynth_bench import DATABASE_CONDITION
    from placeprint.synth.cutout import perspective_cutout
    from placeprint.synth.warp import warp_panorama

    noon = Condition(*DATABASE_CONDITION)
    size, fov, pitch = tuple(settings.size), settings.fov_deg, settings.pitch_deg
    headings, offsets = settings.heading_list(), settings.offsets()
    out: dict[str, list[np.ndarray]] = {name: [] for name in CEILINGS}
    for (x, y, heading), p in zip(poses, near, strict=True):
        px, py = points[p]
        at_pose, _ = panorama(world, x, y, noon, width=width)
        out["render_at_pose"].append(perspective_cutout(at_pose, heading, pitch, fov, size))
        warped = warp_panorama(images[p], depths[p], (x - px, y - py, 0.0)).image
        out["warp_at_pose"].append(perspective_cutout(warped, heading, pitch, fov, size))
        step = nearest_heading(heading, headings)
        out["render_nearest_heading"].append(perspective_cutout(at_pose, step, pitch, fov, size))
        east, north = nearest_offset((x - px, y - py), offsets)
        on_grid, _ = panorama(world, px + east, py + north, noon, width=width)
        out["render_nearest_grid"].append(perspective_cutout(on_grid, heading, pitch, fov, size))
    return {name: np.stack(views) for name, views in out.items()}


def score_ceilings(extra: dict, near, views, source, describer, options, queries, correct):
    """``{ceiling: {lighting: R@1}}``: the cut-outs ``views`` plus each ceiling's views
    (labelled ``near``), the describer fitted on them, every query scored."""
    from placeprint.evaluate.viewsynth_bench import fit_database, score_database

    out = {}
    for name, made in extra.items():
        db = fit_database(
            name,
            np.concatenate([views, made]),
            np.concatenate([source, near]),
            describer,
            options,
        )
        score_database(db, queries, correct, quiet=True)
        out[name] = {light: s["r1"] for light, s in db["row"]["lighting"].items()}
    return out

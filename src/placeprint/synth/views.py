"""Synthesized database views of one panorama (Torii et al., "24/7 place recognition by
view synthesis", CVPR 2015).

A panorama gives perspective cut-outs at ``headings`` evenly spaced headings from where
it was taken; with a depth map it also gives the same cut-outs from new positions on a
grid around it (``grid_radius`` steps of ``grid_step_m`` east and north), by forward
warping (:func:`placeprint.synth.warp.warp_panorama`). A synthesized view with more than
``max_hole_share`` of its pixels unseen from the panorama (disocclusions, a position
inside a wall) is dropped.

A panorama's ``yaw_deg`` is the heading (degrees clockwise from north) of its column 0's
left edge; 0 for panoramas made by :func:`placeprint.crossview.render.panorama`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np

from placeprint.errors import PlaceprintError
from placeprint.synth.cutout import perspective_cutout
from placeprint.synth.warp import warp_panorama


@dataclass(frozen=True)
class ViewSettings:
    """What views a panorama gives: ``headings`` cut-outs (``fov_deg`` wide, ``pitch_deg``
    up, ``size = (h, w)`` pixels) at each position; the positions are the panorama's
    own and, with depth, the ``(2 grid_radius + 1)^2 - 1`` grid points around it.

    Defaults chosen on two validation cities (``benchmarks/viewsynth.py --area val``,
    seeds 0 and 1, 2026-12-07): a describer that keeps the image's layout loses most of a
    night query between database headings and positions, so 36 headings (10 degrees apart)
    and a 7 x 7 grid 2 m apart (night R@1 gain +0.200 / +0.240, against +0.153 / +0.200
    with a 5 x 5 grid 3 m apart and +0.127 / +0.093 with 12 headings, 3 x 3, 4 m)."""

    headings: int = 36
    fov_deg: float = 60.0
    pitch_deg: float = 0.0
    size: tuple[int, int] = (120, 160)
    grid_step_m: float = 2.0
    grid_radius: int = 3
    max_hole_share: float = 0.3

    def check(self) -> None:
        """One clear error for a setting no view can have."""
        if not 1 <= self.headings <= 360:
            raise PlaceprintError(f"headings must be 1-360, got {self.headings}")
        if not (0 < self.fov_deg < 180 and math.isfinite(self.fov_deg)):
            raise PlaceprintError(f"field of view must lie in (0, 180) degrees, got {self.fov_deg}")
        if not -90 <= self.pitch_deg <= 90:
            raise PlaceprintError(f"pitch must lie in [-90, 90] degrees, got {self.pitch_deg}")
        h, w = self.size
        if not (16 <= h <= 4096 and 16 <= w <= 4096):
            raise PlaceprintError(f"view size must be 16-4096 pixels a side, got {w}x{h}")
        if not (self.grid_step_m > 0 and math.isfinite(self.grid_step_m)):
            raise PlaceprintError(f"grid step must be > 0 metres, got {self.grid_step_m}")
        if not 0 <= self.grid_radius <= 5:
            raise PlaceprintError(f"grid radius must be 0-5 steps, got {self.grid_radius}")
        if not 0 <= self.max_hole_share <= 1:
            raise PlaceprintError(f"max hole share must lie in [0, 1], got {self.max_hole_share}")

    def offsets(self) -> np.ndarray:
        """``(k, 2)`` (east, north) metres of the view positions, the panorama's own first."""
        r = self.grid_radius
        around = [(i, j) for j in range(r, -r - 1, -1) for i in range(-r, r + 1) if i or j]
        steps = [(0, 0), *around]
        return np.array(steps, float) * self.grid_step_m

    def heading_list(self) -> np.ndarray:
        """The headings (degrees clockwise from north) every position is seen at."""
        return np.arange(self.headings) * (360.0 / self.headings)

    def as_dict(self) -> dict:
        return {**asdict(self), "size": list(self.size)}


@dataclass(frozen=True)
class View:
    """One view: where it is seen from (``east_m``, ``north_m`` from its panorama), its
    ``heading_deg``, whether it was ``synthesized`` (warped) and the share of its pixels
    that were holes before filling."""

    east_m: float
    north_m: float
    heading_deg: float
    synthesized: bool
    hole_share: float


def check_panorama(pano: np.ndarray, depth: np.ndarray | None) -> None:
    """One clear error for an image that is not a 2:1 panorama or a depth map that
    does not fit it."""
    if pano.ndim not in (2, 3) or pano.shape[0] < 8 or pano.shape[1] != 2 * pano.shape[0]:
        raise PlaceprintError(
            f"an equirectangular panorama is 2:1 (width = 2 x height), got "
            f"{pano.shape[1]}x{pano.shape[0]}"
        )
    if depth is None:
        return
    if depth.shape != pano.shape[:2]:
        raise PlaceprintError(f"depth map is {depth.shape}, its panorama {pano.shape[:2]}")
    if np.isnan(depth).any() or (depth <= 0).any():
        raise PlaceprintError("a depth map holds metres > 0 (inf for sky), without NaN")


def panorama_views(
    pano: np.ndarray,
    depth: np.ndarray | None,
    settings: ViewSettings,
    yaw_deg: float = 0.0,
) -> Iterator[tuple[np.ndarray, View]]:
    """Every view of ``pano`` (``(H, 2H, 3)``): cut-outs from its own position, then, when
    ``depth`` is given, warped views from the grid around it (those with too many holes
    left out)."""
    settings.check()
    pano = np.asarray(pano)
    depth = None if depth is None else np.asarray(depth, float)
    check_panorama(pano, depth)
    if not math.isfinite(yaw_deg):
        raise PlaceprintError(f"panorama yaw must be finite, got {yaw_deg}")
    headings = settings.heading_list()
    size = tuple(settings.size)
    for k, (east, north) in enumerate(settings.offsets()):
        if k == 0:
            image, holes = pano, None
        elif depth is None:
            break
        else:
            # the offset in the panorama's own frame (its column 0 at yaw_deg)
            a = math.radians(yaw_deg)
            local_east = east * math.cos(a) - north * math.sin(a)
            local_north = east * math.sin(a) + north * math.cos(a)
            warped = warp_panorama(pano, depth, (local_east, local_north, 0.0))
            image, holes = warped.image, warped.holes
        for heading in headings:
            at = heading - yaw_deg
            share = 0.0
            if holes is not None:
                cut = perspective_cutout(
                    holes, at, settings.pitch_deg, settings.fov_deg, size, nearest=True
                )
                share = float(cut.mean())
                if share > settings.max_hole_share:
                    continue
            view = perspective_cutout(image, at, settings.pitch_deg, settings.fov_deg, size)
            yield view, View(float(east), float(north), float(heading), k > 0, share)

"""Novel viewpoints from a panorama and its depth: forward warping with a z-buffer.

Every panorama pixel with a finite depth is a 3-D point ``depth * direction`` around the
camera (east-north-up, the panorama convention of :mod:`placeprint.synth.cutout`).
Seen from a camera moved by ``offset`` metres, the point lies in direction
``point - offset``: it is splatted to the nearest pixel of that direction in the new
panorama, the nearest point winning where several land on one pixel (z-buffer).
Pixels at infinite depth (sky) keep their direction. Pixels that nothing lands on
(disocclusions, stretched surfaces) are holes, filled from the nearest warped pixel
(``scipy.ndimage.distance_transform_edt``, across the seam) and reported as a mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from placeprint.errors import PlaceprintError
from placeprint.synth.cutout import angles_of, direction_of, panorama_coords


@dataclass
class WarpedView:
    """A panorama seen from a new position: image, depth (metres, ``inf`` for sky) and
    the pixels that were holes before filling."""

    image: np.ndarray
    depth: np.ndarray
    holes: np.ndarray


def pixel_directions(height: int) -> np.ndarray:
    """Unit directions ``(H, 2H, 3)`` (east, north, up) of an ``(H, 2H)`` panorama's pixels."""
    W = 2 * height
    az = (np.arange(W) + 0.5) / W * 2 * np.pi
    el = np.pi / 2 - (np.arange(height) + 0.5) / height * np.pi
    return direction_of(*np.meshgrid(az, el))


def nearest_first(targets: np.ndarray, distances: np.ndarray, size: int) -> np.ndarray:
    """For each of ``size`` target pixels, the index of the source that lands on it with
    the smallest distance (``-1`` where none lands): the z-buffer."""
    targets = np.asarray(targets, np.int64)
    order = np.lexsort((np.asarray(distances, float), targets))  # by target, then distance
    first = np.ones(len(order), bool)
    first[1:] = targets[order][1:] != targets[order][:-1]
    winner = np.full(size, -1, np.int64)
    winner[targets[order][first]] = order[first]
    return winner


def warp_panorama(
    pano: np.ndarray, depth: np.ndarray, offset_m: tuple[float, float, float], fill: bool = True
) -> WarpedView:
    """``pano`` (``(H, 2H[, C])``) with ``depth`` (``(H, 2H)`` metres, ``inf`` for sky) as
    seen from ``offset_m`` = (east, north, up) metres away."""
    from scipy.ndimage import distance_transform_edt

    pano, depth = np.asarray(pano), np.asarray(depth, float)
    if pano.ndim not in (2, 3) or pano.shape[0] < 2 or pano.shape[1] != 2 * pano.shape[0]:
        raise PlaceprintError(f"a panorama must be 2:1 (H, 2H[, C]), got shape {pano.shape}")
    if depth.shape != pano.shape[:2]:
        raise PlaceprintError(f"depth must be {pano.shape[:2]}, got {depth.shape}")
    if np.isnan(depth).any() or (depth <= 0).any():
        raise PlaceprintError("depth must be positive (inf for sky), without NaN")
    offset = np.asarray(offset_m, float)
    if offset.shape != (3,) or not np.isfinite(offset).all():
        raise PlaceprintError(f"offset must be three finite numbers (metres), got {offset_m}")
    H, W = depth.shape
    d = pixel_directions(H).reshape(-1, 3)
    r = depth.reshape(-1)
    finite = np.isfinite(r)
    q = d.copy()  # sky keeps its direction
    q[finite] = d[finite] * r[finite, None] - offset
    dist = np.where(finite, np.linalg.norm(q, axis=1), np.inf)
    row, col = panorama_coords(*angles_of(q), H)
    target = np.clip(np.rint(row), 0, H - 1).astype(np.int64) * W + np.mod(np.rint(col), W).astype(
        np.int64
    )
    winner = nearest_first(target, dist, H * W)
    holes = (winner < 0).reshape(H, W)
    src = np.where(winner < 0, 0, winner)
    flat = pano.reshape(H * W, -1)
    image = flat[src].reshape(pano.shape)
    new_depth = dist[src].reshape(H, W)
    if fill and holes.any() and not holes.all():
        # each hole takes the nearest warped pixel on the image grid, across the seam too
        # (the mask is padded with half a panorama from each side)
        pad = W // 2
        wide = np.concatenate([holes[:, -pad:], holes, holes[:, :pad]], axis=1)
        _, (ri, ci) = distance_transform_edt(wide, return_indices=True)
        ri, ci = ri[:, pad : pad + W], np.mod(ci[:, pad : pad + W] - pad, W)
        image = image[ri, ci]
        new_depth = new_depth[ri, ci]
    return WarpedView(image, new_depth, holes)

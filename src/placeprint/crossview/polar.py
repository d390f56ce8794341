"""Polar transform of an aerial tile around its centre (Shi et al., SAFA, NeurIPS 2019).

A north-up square tile becomes an ``(height, width)`` image in which column ``j`` is
the azimuth ``(j + 0.5) / width * 360`` degrees clockwise from north (the same
convention as a ground panorama's columns, :mod:`placeprint.crossview.render`) and
row ``i`` the distance from the centre, the tile's edge at the top (row 0, where the
panorama shows the horizon) and the centre at the bottom (under the camera). The
ground panorama and the transformed tile then share their horizontal geometry: a
heading is a circular shift of columns in both.
"""

from __future__ import annotations

import numpy as np

from placeprint.errors import PlaceprintError


def polar_grid(size: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, cols)`` tile coordinates (pixel centres at ``k + 0.5``) sampled by every
    polar pixel, each ``(height, width)``."""
    radius = size / 2 * (height - np.arange(height) - 0.5) / height  # top = edge
    az = (np.arange(width) + 0.5) / width * 2 * np.pi
    cols = size / 2 + radius[:, None] * np.sin(az)[None, :]
    rows = size / 2 - radius[:, None] * np.cos(az)[None, :]  # north = up
    return rows, cols


def polar_transform(tile: np.ndarray, height: int | None = None, width: int | None = None):
    """The polar image of a square ``(S, S)`` or ``(S, S, C)`` tile: ``(height, width[, C])``,
    bilinear (defaults: ``S / 2`` rows, ``2 S`` columns); same dtype as the tile."""
    tile = np.asarray(tile)
    if tile.ndim not in (2, 3) or tile.shape[0] != tile.shape[1] or tile.shape[0] < 4:
        raise PlaceprintError(f"an aerial tile must be square (S, S[, C]), got {tile.shape}")
    from scipy.ndimage import map_coordinates

    S = tile.shape[0]
    height = height or S // 2
    width = width or 2 * S
    if height < 1 or width < 1:
        raise PlaceprintError("polar height and width must be >= 1")
    rows, cols = polar_grid(S, height, width)
    coords = [rows - 0.5, cols - 0.5]  # pixel k's centre is at k + 0.5
    planes = tile[..., None] if tile.ndim == 2 else tile
    out = np.stack(
        [
            map_coordinates(planes[..., k].astype(np.float32), coords, order=1, mode="nearest")
            for k in range(planes.shape[-1])
        ],
        axis=-1,
    )
    if np.issubdtype(tile.dtype, np.integer):
        info = np.iinfo(tile.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    out = out.astype(tile.dtype)
    return out[..., 0] if tile.ndim == 2 else out

"""Perspective cut-outs of equirectangular panoramas (gnomonic projection).

Panorama convention (that of :func:`placeprint.crossview.render.panorama`): an
``(H, 2H)`` image, column ``j`` at azimuth ``(j + 0.5) / W * 360`` degrees clockwise from
north, row ``i`` at elevation ``90 - (i + 0.5) / H * 180`` degrees (row 0 the zenith).

A pinhole camera at ``heading`` (degrees clockwise from north) and ``pitch`` (degrees
up), with a horizontal field of view ``fov``, sees output pixel ``(i, j)`` of an
``(h, w)`` view along the ray ``x R + y U + f F`` (``x`` right and ``y`` up from the
image centre in pixels, ``f = (w / 2) / tan(fov / 2)``; ``F``, ``R``, ``U`` the camera's
forward, right and up axes in east-north-up). Each ray's azimuth and elevation pick the
panorama pixel, sampled bilinearly, wrapping at the seam (azimuth 0/360) and exact at the
poles (every column of row 0 is the zenith).
"""

from __future__ import annotations

import numpy as np

from placeprint.errors import PlaceprintError


def direction_of(azimuth: np.ndarray, elevation: np.ndarray) -> np.ndarray:
    """Unit vectors ``(..., 3)`` (east, north, up) of azimuths and elevations (radians)."""
    az, el = np.asarray(azimuth, float), np.asarray(elevation, float)
    return np.stack([np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el)], axis=-1)


def angles_of(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Azimuth in ``[0, 2 pi)`` and elevation (radians) of vectors ``d (..., 3)`` (east,
    north, up; any length)."""
    azimuth = np.mod(np.arctan2(d[..., 0], d[..., 1]), 2 * np.pi)
    return azimuth, np.arctan2(d[..., 2], np.hypot(d[..., 0], d[..., 1]))


def camera_axes(heading_deg: float, pitch_deg: float) -> np.ndarray:
    """``(3, 3)`` rows forward, right, up of a camera, in east-north-up coordinates."""
    h, p = np.radians(heading_deg), np.radians(pitch_deg)
    forward = [np.sin(h) * np.cos(p), np.cos(h) * np.cos(p), np.sin(p)]
    right = [np.cos(h), -np.sin(h), 0.0]
    up = [-np.sin(h) * np.sin(p), -np.cos(h) * np.sin(p), np.cos(p)]
    return np.array([forward, right, up], float)


def focal_px(width: int, fov_deg: float) -> float:
    """Focal length in pixels of a ``width``-pixel view with horizontal field ``fov_deg``."""
    return (width / 2.0) / np.tan(np.radians(fov_deg) / 2.0)


def view_rays(
    size: tuple[int, int], heading_deg: float, pitch_deg: float, fov_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Azimuth and elevation (radians, ``(h, w)`` each) of every pixel of a view."""
    h, w = size
    f = focal_px(w, fov_deg)
    x = (np.arange(w) + 0.5) - w / 2.0
    y = h / 2.0 - (np.arange(h) + 0.5)
    forward, right, up = camera_axes(heading_deg, pitch_deg)
    return angles_of(x[None, :, None] * right + y[:, None, None] * up + f * forward)


def panorama_coords(
    azimuth: np.ndarray, elevation: np.ndarray, pano_height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Continuous ``(row, col)`` pixel coordinates (pixel centres at integers) of
    directions in an ``(H, 2H)`` panorama."""
    H, W = pano_height, 2 * pano_height
    col = np.asarray(azimuth) / (2 * np.pi) * W - 0.5
    row = (np.pi / 2 - np.asarray(elevation)) / np.pi * H - 0.5
    return row, col


def view_coords(
    azimuth: np.ndarray,
    elevation: np.ndarray,
    size: tuple[int, int],
    heading_deg: float,
    pitch_deg: float,
    fov_deg: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where directions land in a view: continuous ``(row, col)`` and whether they lie in
    front of the camera (the inverse of :func:`view_rays`)."""
    h, w = size
    d = direction_of(azimuth, elevation)
    forward, right, up = camera_axes(heading_deg, pitch_deg)
    z, x, y = d @ forward, d @ right, d @ up
    f = focal_px(w, fov_deg)
    with np.errstate(divide="ignore", invalid="ignore"):
        col = x * f / z + w / 2.0 - 0.5
        row = h / 2.0 - y * f / z - 0.5
    return row, col, z > 0


def _sample(pano: np.ndarray, row: np.ndarray, col: np.ndarray, nearest: bool) -> np.ndarray:
    H, W = pano.shape[:2]
    if nearest:
        r = np.clip(np.rint(row), 0, H - 1).astype(np.int64)
        c = np.mod(np.rint(col), W).astype(np.int64)
        return pano[r, c]
    row = np.clip(row, 0, H - 1)
    r0 = np.floor(row).astype(np.int64)
    r1 = np.minimum(r0 + 1, H - 1)
    c0f = np.floor(col)
    c0 = np.mod(c0f, W).astype(np.int64)
    c1 = np.mod(c0 + 1, W)
    fr, fc = row - r0, col - c0f
    if pano.ndim == 3:
        fr, fc = fr[..., None], fc[..., None]
    p = pano.astype(np.float64)
    top = p[r0, c0] * (1 - fc) + p[r0, c1] * fc
    bottom = p[r1, c0] * (1 - fc) + p[r1, c1] * fc
    return top * (1 - fr) + bottom * fr


def perspective_cutout(
    pano: np.ndarray,
    heading_deg: float,
    pitch_deg: float = 0.0,
    fov_deg: float = 60.0,
    size: tuple[int, int] = (240, 320),
    nearest: bool = False,
) -> np.ndarray:
    """The ``size = (h, w)`` perspective view of an equirectangular ``pano`` (``(H, 2H)``
    or ``(H, 2H, C)``) at ``heading``/``pitch`` with horizontal field of view ``fov``.

    ``nearest`` samples the nearest pixel (for depth maps, labels); otherwise bilinear,
    returned in the panorama's dtype (integers rounded).
    """
    pano = np.asarray(pano)
    if pano.ndim not in (2, 3) or pano.shape[0] < 2 or pano.shape[1] != 2 * pano.shape[0]:
        raise PlaceprintError(f"a panorama must be 2:1 (H, 2H[, C]), got shape {pano.shape}")
    if not 0 < fov_deg < 180:
        raise PlaceprintError(
            f"a perspective view's field of view must lie in (0, 180), got {fov_deg}"
        )
    if not -90 <= pitch_deg <= 90:
        raise PlaceprintError(f"pitch must lie in [-90, 90] degrees, got {pitch_deg}")
    h, w = (int(v) for v in size)
    if h < 1 or w < 1:
        raise PlaceprintError(f"a view needs a positive size, got {size}")
    if not np.isfinite([heading_deg, pitch_deg, fov_deg]).all():
        raise PlaceprintError("heading, pitch and field of view must be finite")
    az, el = view_rays((h, w), heading_deg, pitch_deg, fov_deg)
    row, col = panorama_coords(az, el, pano.shape[0])
    out = _sample(pano, row, col, nearest)
    if nearest or np.issubdtype(pano.dtype, np.floating):
        return out.astype(pano.dtype, copy=False)
    info = np.iinfo(pano.dtype)
    return np.clip(np.rint(out), info.min, info.max).astype(pano.dtype)

"""The heat map of a geolocation answer as a transparent PNG for a Leaflet image overlay.

Rows are spaced evenly in Web Mercator ``y`` (what Leaflet draws), north at the top, so
the overlay stays in place on a zoomed-out map too; colour and opacity rise with the
density, and places of (almost) no density are fully transparent.
"""

from __future__ import annotations

import base64
import io

import numpy as np

from placeprint.errors import PlaceprintError

#: Leaflet's Web Mercator stops here (degrees)
MAX_MERCATOR_LAT = 85.05112878


def mercator_lats(lat_min: float, lat_max: float, rows: int) -> np.ndarray:
    """``rows`` latitudes (degrees, north first) evenly spaced in Web Mercator ``y``."""
    lo = np.radians(np.clip(lat_min, -MAX_MERCATOR_LAT, MAX_MERCATOR_LAT))
    hi = np.radians(np.clip(lat_max, -MAX_MERCATOR_LAT, MAX_MERCATOR_LAT))
    y = np.linspace(np.arcsinh(np.tan(hi)), np.arcsinh(np.tan(lo)), rows)
    return np.degrees(np.arctan(np.sinh(y)))


def heatmap_rgba(density: np.ndarray, cmap: str = "magma_r", floor: float = 1e-3) -> np.ndarray:
    """``(H, W, 4)`` uint8: ``density`` normalised to its maximum, coloured, alpha rising with it.

    Values below ``floor`` (of the maximum) are fully transparent.
    """
    import matplotlib

    d = np.asarray(density, dtype=np.float64)
    if d.ndim != 2 or d.size == 0:
        raise PlaceprintError(f"a heat map needs a 2-D density grid, got shape {d.shape}")
    d = np.where(np.isfinite(d) & (d > 0), d, 0.0)
    top = d.max()
    v = d / top if top > 0 else d
    rgba = matplotlib.colormaps[cmap](np.sqrt(v))
    alpha = np.where(v < floor, 0.0, 0.25 + 0.55 * np.sqrt(v))
    rgba[..., 3] = alpha
    return (np.clip(rgba, 0, 1) * 255 + 0.5).astype(np.uint8)


def png_data_url(rgba: np.ndarray) -> str:
    """A ``data:image/png;base64,...`` URL of an ``(H, W, 4)`` uint8 array."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba), "RGBA").save(buf, "PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def heatmap_overlay(
    pred,
    shape: tuple[int, int] = (72, 96),
    margin_km: float | None = None,
    upscale: int = 3,
):
    """``{"bounds": [[lat_min, lon_min], [lat_max, lon_max]], "png": data URL}`` of a prediction.

    The extent is :func:`~placeprint.geo.maps.auto_extent` of the three best modes with a
    margin of ``margin_km`` (default: four times the best radius, at least 1 km); the
    density is evaluated on ``shape`` (rows, columns) and smoothly enlarged ``upscale`` times.
    """
    from placeprint.geo.maps import auto_extent

    if not pred.modes:
        return None
    if margin_km is None:
        margin_km = max(1.0, 4.0 * float(pred.best.radius_km))
    lon0, lon1, lat0, lat1 = auto_extent(pred.modes[:3], margin_km=margin_km)
    lat0, lat1 = max(lat0, -MAX_MERCATOR_LAT), min(lat1, MAX_MERCATOR_LAT)
    h, w = shape
    lat = mercator_lats(lat0, lat1, h)
    lon = np.linspace(lon0, lon1, w)
    LA, LO = np.meshgrid(lat, lon, indexing="ij")
    density = pred.density.pdf_km2(LA.ravel(), LO.ravel()).reshape(h, w)
    if upscale > 1:
        from PIL import Image

        big = Image.fromarray(density.astype(np.float32), "F").resize(
            (w * upscale, h * upscale), Image.Resampling.BILINEAR
        )
        density = np.asarray(big, dtype=np.float64)
    return {
        "bounds": [[float(lat0), float(lon0)], [float(lat1), float(lon1)]],
        "png": png_data_url(heatmap_rgba(density)),
    }

"""Maps a person looks at: probability heat maps, modes and cell partitions (matplotlib, offline).

Everything is drawn in the equirectangular projection (x = longitude, y = latitude, degrees)
over country outlines from the GeoJSON files the ``countryinfo`` package ships (no internet).
Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas (no pyplot, no
global state) and saved atomically: a temporary file in the same folder, then ``os.replace``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure

from placeprint.errors import PlaceprintError
from placeprint.geo.cells import AdaptiveCells, sphere_ring_to_lonlat
from placeprint.geo.distance import EARTH_RADIUS_KM

WORLD = (-180.0, 180.0, -90.0, 90.0)
_KM_PER_DEG = math.pi * EARTH_RADIUS_KM / 180.0


# ----------------------------------------------------------------------------- the basemap


def _countryinfo_data() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("countryinfo")
    if spec is None or not spec.submodule_search_locations:
        raise PlaceprintError("package countryinfo is not installed (pip install countryinfo)")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@lru_cache(maxsize=1)
def _outlines() -> tuple[np.ndarray, ...]:
    rings = []
    for file in sorted(_countryinfo_data().glob("*.json")):
        try:
            geo = json.loads(file.read_text(encoding="utf-8")).get("geoJSON") or {}
        except (OSError, ValueError):
            continue
        for feature in geo.get("features", []) if isinstance(geo, dict) else []:
            geom = feature.get("geometry") or {}
            polys = {"Polygon": [geom.get("coordinates")], "MultiPolygon": geom.get("coordinates")}
            for poly in polys.get(geom.get("type"), None) or []:
                for ring in poly or []:
                    arr = np.asarray(ring, np.float64)
                    if arr.ndim == 2 and arr.shape[0] >= 3 and arr.shape[1] == 2:
                        arr.setflags(write=False)
                        rings.append(arr)
    if not rings:
        raise PlaceprintError(
            f"no country outlines found in {_countryinfo_data()} (reinstall countryinfo==1.0.1)"
        )
    return tuple(rings)


def country_outlines() -> list[np.ndarray]:
    """Boundary rings (k, 2) of all countries as (lon, lat) degrees, read once and cached.

    Read from the ``geoJSON`` entry of ``countryinfo``'s per-country files (173 countries,
    Natural Earth low resolution); exterior rings and holes alike; arrays are read-only.
    """
    return list(_outlines())


SEA_RGB = (0xDC, 0xE9, 0xF2)
LAND_RGB = (0xF4, 0xF1, 0xEA)


def _draw_basemap(ax, extent=None, width: int = 600) -> None:
    """Sea, land and country borders. Land comes from the land mask (NOAA GLOBE, every
    country, lakes as land) rastered over ``extent``; the outlines add the borders (and
    the land where no extent is given)."""
    ax.set_facecolor(np.array(SEA_RGB) / 255.0)
    if extent is not None:
        from placeprint.geo.land import is_land

        lon0, lon1, lat0, lat1 = (float(v) for v in extent)
        h = int(np.clip(width * (lat1 - lat0) / max(lon1 - lon0, 1e-9), 2, 2 * width))
        lat = np.linspace(lat1, lat0, h)
        lon = np.linspace(lon0, lon1, width)
        la, lo = np.meshgrid(lat, lon, indexing="ij")
        land = is_land(la, ((lo + 180.0) % 360.0) - 180.0)
        rgb = np.where(land[..., None], np.array(LAND_RGB), np.array(SEA_RGB)).astype(np.uint8)
        ax.imshow(
            rgb,
            extent=(lon0, lon1, lat0, lat1),
            origin="upper",
            interpolation="nearest",
            aspect="auto",
            zorder=0,
        )
    else:
        ax.add_collection(
            PolyCollection(
                _outlines(), facecolors=np.array(LAND_RGB) / 255.0, edgecolors="none", zorder=0
            )
        )
    ax.add_collection(LineCollection(_outlines(), colors="#7a7a7a", linewidths=0.4, zorder=2))


# ------------------------------------------------------------------------------ the modes


def _mode_fields(mode, i: int) -> tuple[float, float, float, float, str]:
    try:
        lat, lon = float(mode.lat), float(mode.lon)
        mass = float(getattr(mode, "mass", float("nan")))
        radius = float(getattr(mode, "radius_km", 0.0))
    except (AttributeError, TypeError, ValueError):
        raise PlaceprintError(
            f"mode {i} needs numeric attributes lat, lon (and mass, radius_km)"
        ) from None
    return lat, lon, mass, radius, str(getattr(mode, "name", "") or "")


def format_km(km: float) -> str:
    """A distance for people: ``"40 m"``, ``"2.5 km"``, ``"120 km"``."""
    if km < 1.0:
        return f"{km * 1000:.0f} m"
    return f"{km:.1f} km" if km < 10 else f"{km:,.0f} km"


def circle_rings(lat: float, lon: float, radius_km: float, n: int = 72) -> list[np.ndarray]:
    """Closed (k, 2) lon/lat rings of the great-circle disc of ``radius_km`` around a point.

    Cut at the antimeridian and closed through a pole when the disc holds one.
    """
    if not radius_km > 0:
        return []
    d = min(radius_km / EARTH_RADIUS_KM, math.pi * 0.999)
    p, lam = math.radians(lat), math.radians(lon)
    centre = np.array([math.cos(p) * math.cos(lam), math.cos(p) * math.sin(lam), math.sin(p)])
    north = np.array([-math.sin(p) * math.cos(lam), -math.sin(p) * math.sin(lam), math.cos(p)])
    if np.linalg.norm(north) < 1e-12:  # centre at a pole: any tangent frame will do
        north = np.array([1.0, 0.0, 0.0])
    east = np.cross(north, centre)
    bearing = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    direction = np.cos(bearing)[:, None] * north + np.sin(bearing)[:, None] * east
    pts = math.cos(d) * centre + math.sin(d) * direction
    return sphere_ring_to_lonlat(pts[::-1])


def auto_extent(modes: Sequence, margin_km: float = 500.0) -> tuple[float, float, float, float]:
    """``(lon_min, lon_max, lat_min, lat_max)`` degrees holding every mode's disc plus a margin.

    Each mode needs ``lat``, ``lon`` and optionally ``radius_km``; no modes gives the world.
    Longitudes are not wrapped: modes on both sides of the antimeridian span the whole width.
    """
    if margin_km < 0:
        raise PlaceprintError(f"margin_km must be >= 0, got {margin_km}")
    if len(modes) == 0:
        return WORLD
    boxes = []
    for i, mode in enumerate(modes):
        lat, lon, _, radius, _ = _mode_fields(mode, i)
        dlat = (radius + margin_km) / _KM_PER_DEG
        dlon = dlat / max(math.cos(math.radians(min(abs(lat) + dlat, 89.0))), 1e-3)
        boxes.append((lon - dlon, lon + dlon, lat - dlat, lat + dlat))
    b = np.array(boxes)
    return (
        max(-180.0, float(b[:, 0].min())),
        min(180.0, float(b[:, 1].max())),
        max(-90.0, float(b[:, 2].min())),
        min(90.0, float(b[:, 3].max())),
    )


def modes_to_geojson(modes: Sequence, circles: bool = True) -> dict:
    """GeoJSON FeatureCollection of the modes: a Point each (lon, lat order) and its disc.

    Point properties: ``rank`` (1 = first), ``mass``, ``radius_km``, ``name``, ``kind="mode"``.
    With ``circles``, each mode with ``radius_km > 0`` adds a Polygon (MultiPolygon when cut
    at the antimeridian) of that radius with ``kind="radius"``.
    """
    features = []
    for i, mode in enumerate(modes):
        lat, lon, mass, radius, name = _mode_fields(mode, i)
        props = {
            "rank": i + 1,
            "mass": None if math.isnan(mass) else mass,
            "radius_km": radius,
            "name": name,
        }
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]},
                "properties": {**props, "kind": "mode"},
            }
        )
        rings = circle_rings(lat, lon, radius) if circles else []
        if rings:
            polys = [[np.round(r, 6).tolist()] for r in rings]
            geometry = (
                {"type": "Polygon", "coordinates": polys[0]}
                if len(polys) == 1
                else {"type": "MultiPolygon", "coordinates": polys}
            )
            features.append(
                {"type": "Feature", "geometry": geometry, "properties": {**props, "kind": "radius"}}
            )
    return {"type": "FeatureCollection", "features": features}


# ----------------------------------------------------------------------------- the figures


def map_size(extent: tuple[float, float, float, float], width: int = 1000) -> tuple[int, int]:
    """A figure size (pixels) whose map fills it: the extent's shape on the ground (its
    longitudes shrunk by the cosine of its mid-latitude), a colour bar beside it."""
    lon0, lon1, lat0, lat1 = (float(v) for v in extent)
    mid = math.radians(min(abs((lat0 + lat1) / 2), 80.0))
    ratio = (lat1 - lat0) / max((lon1 - lon0) * math.cos(mid), 1e-9)
    height = int(round(0.8 * width * ratio + 90))  # the map's share of the width, + title
    return int(width), int(min(max(height, 300), 2 * width))


def _new_axes(size: tuple[int, int], dpi: int = 100):
    width, height = size
    if width < 100 or height < 100:
        raise PlaceprintError(f"figure size must be at least 100x100 pixels, got {size}")
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _set_extent(ax, extent) -> None:
    lon0, lon1, lat0, lat1 = (float(v) for v in extent)
    if not (lon0 < lon1 and lat0 < lat1):
        raise PlaceprintError(f"extent must be (lon_min, lon_max, lat_min, lat_max), got {extent}")
    ax.set_xlim(lon0, lon1)
    ax.set_ylim(lat0, lat1)
    mid = math.radians(min(abs((lat0 + lat1) / 2), 80.0))
    ax.set_aspect(1.0 / math.cos(mid) if lat1 - lat0 < 90 else 1.0, adjustable="box")
    ax.set_xlabel("longitude (degrees)")
    ax.set_ylabel("latitude (degrees)")
    ax.ticklabel_format(axis="both", style="plain", useOffset=False)  # 55.70, not +5.57e1


def _save_atomic(fig: Figure, path: str | Path) -> Path:
    from placeprint.atomic import atomic_open

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    with atomic_open(path) as fh:
        fig.savefig(fh, format=fmt)
    return path


def _grid_edges(lat_grid, lon_grid, shape) -> tuple[np.ndarray, np.ndarray]:
    lat, lon = np.asarray(lat_grid, np.float64), np.asarray(lon_grid, np.float64)
    if lat.ndim == 1 and lon.ndim == 1 and (lat.size, lon.size) == shape:
        return lon, lat
    if lat.shape == shape and lon.shape == shape:
        return lon, lat
    raise PlaceprintError(
        f"lat_grid/lon_grid must be (H,) and (W,) or both (H, W) for prob of shape {shape}, "
        f"got {lat.shape} and {lon.shape}"
    )


def plot_probability_map(
    path: str | Path,
    lat_grid: np.ndarray,
    lon_grid: np.ndarray,
    prob: np.ndarray,
    modes: Sequence = (),
    truth: tuple[float, float] | None = None,
    extent: tuple[float, float, float, float] | str | None = None,
    title: str = "",
    size: tuple[int, int] = (1200, 700),
    label: str = "probability",
) -> Path:
    """Draw a probability heat map (H, W) over country outlines and save it; returns ``path``.

    ``lat_grid``/``lon_grid`` are the cell-centre degrees, (H,) and (W,) or both (H, W).
    ``modes`` (objects with ``lat``, ``lon``, ``mass``, ``radius_km``, optional ``name``) are
    marked, ringed by their radius and labelled; ``truth`` ``(lat, lon)`` is a star.
    ``extent`` is ``(lon_min, lon_max, lat_min, lat_max)``, ``None`` for the world or
    ``"auto"`` for :func:`auto_extent` around the modes (and truth) with a 500 km margin.
    ``size`` is in pixels; values below 1/1000 of the maximum are left transparent.
    """
    prob = np.asarray(prob, np.float64)
    if prob.ndim != 2 or prob.size == 0:
        raise PlaceprintError(f"prob must be a non-empty (H, W) array, got shape {prob.shape}")
    if not np.isfinite(prob).all() or prob.min() < 0:
        raise PlaceprintError("prob must be finite and non-negative")
    lon, lat = _grid_edges(lat_grid, lon_grid, prob.shape)
    fields = [_mode_fields(m, i) for i, m in enumerate(modes)]
    if isinstance(extent, str):
        if extent != "auto":
            raise PlaceprintError(f"extent must be a 4-tuple, None or 'auto', got {extent!r}")
        pts = list(modes)
        if truth is not None:
            pts.append(_Point(*truth))
        extent = auto_extent(pts)
    fig, ax = _new_axes(size)
    _draw_basemap(ax, WORLD if extent is None else extent)
    peak = prob.max()
    shown = (
        np.ma.masked_less_equal(prob, peak * 1e-3)
        if peak > 0
        else np.ma.masked_array(prob, mask=True)
    )
    mesh = ax.pcolormesh(
        lon,
        lat,
        shown,
        cmap="inferno_r",
        alpha=0.75,
        shading="auto",
        zorder=1,
        rasterized=True,
        vmin=0.0,
        vmax=peak if peak > 0 else 1.0,
    )
    fig.colorbar(mesh, ax=ax, shrink=0.8, label=label)
    for rank, (mlat, mlon, mass, radius, name) in enumerate(fields, start=1):
        for ring in circle_rings(mlat, mlon, radius):
            ax.plot(ring[:, 0], ring[:, 1], color="#1565c0", lw=1.2, zorder=3)
        ax.plot(mlon, mlat, "o", ms=7, mfc="#1565c0", mec="white", zorder=4)
        parts = [f"{rank}.", name, "" if math.isnan(mass) else f"{mass:.0%}"]
        text = " ".join(p for p in parts if p) + f" ±{format_km(radius)}"
        ax.annotate(
            text,
            (mlon, mlat),
            xytext=(6, 6),
            textcoords="offset points",
            fontsize=9,
            zorder=5,
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.8, "lw": 0},
        )
    if truth is not None:
        tlat, tlon = (float(v) for v in truth)
        ax.plot(tlon, tlat, "*", ms=16, mfc="#2e7d32", mec="white", zorder=6, label="truth")
        ax.legend(loc="lower left", fontsize=9)
    _set_extent(ax, WORLD if extent is None else extent)
    if title:
        ax.set_title(title)
    return _save_atomic(fig, path)


class _Point:
    """A bare position used as a zero-radius mode."""

    def __init__(self, lat: float, lon: float) -> None:
        self.lat, self.lon, self.radius_km = lat, lon, 0.0


def plot_cells(
    path: str | Path,
    cells: AdaptiveCells,
    values: np.ndarray | None = None,
    title: str = "",
    extent: tuple[float, float, float, float] | None = None,
    size: tuple[int, int] = (1200, 700),
    label: str = "value",
) -> Path:
    """Draw the cell partition over country outlines, coloured by S2 level or by ``values``.

    ``values`` is (m,) one number per cell (e.g. a probability); ``extent`` as in
    :func:`plot_probability_map` (``None`` = world). Saved atomically; returns ``path``.
    """
    n = cells.n_cells
    if values is not None:
        values = np.asarray(values, np.float64)
        if values.shape != (n,):
            raise PlaceprintError(
                f"values must have shape ({n},), one per cell; got {values.shape}"
            )
    polys, owner = [], []
    for j in range(n):
        for ring in cells.rings(j):
            polys.append(ring)
            owner.append(j)
    owner = np.array(owner, np.int64)
    fig, ax = _new_axes(size)
    _draw_basemap(ax, WORLD if extent is None else extent)
    if values is None:
        levels = cells.levels_[owner]
        lo, hi = int(cells.levels_.min()), int(cells.levels_.max())
        coll = PolyCollection(polys, cmap="viridis", edgecolors="#303030", linewidths=0.3)
        coll.set_array(levels.astype(np.float64))
        coll.set_clim(lo - 0.5, hi + 0.5)
        label = "S2 level"
    else:
        coll = PolyCollection(polys, cmap="inferno_r", edgecolors="#303030", linewidths=0.3)
        coll.set_array(values[owner])
    coll.set_alpha(0.6)
    coll.set_zorder(1)
    ax.add_collection(coll)
    cbar = fig.colorbar(coll, ax=ax, shrink=0.8, label=label)
    if values is None:
        cbar.set_ticks(range(int(cells.levels_.min()), int(cells.levels_.max()) + 1))
    _set_extent(ax, WORLD if extent is None else extent)
    ax.set_title(title or f"{n} adaptive S2 cells")
    return _save_atomic(fig, path)

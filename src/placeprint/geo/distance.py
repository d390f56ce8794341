"""Great-circle distances on the WGS84 sphere approximation (R = 6371.0088 km)."""

from __future__ import annotations

import numpy as np

EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in km between points given in degrees (broadcasting arrays)."""
    p1, p2 = np.radians(np.asarray(lat1, float)), np.radians(np.asarray(lat2, float))
    dphi = p2 - p1
    dlmb = np.radians(np.asarray(lon2, float) - np.asarray(lon1, float))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def pairwise_km(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """``(n, n)`` great-circle distances in km between ``n`` points (degrees)."""
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    return haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])


def offset_latlon(lat, lon, east_m, north_m) -> tuple[np.ndarray, np.ndarray]:
    """The position ``east_m``/``north_m`` metres from ``(lat, lon)`` (degrees), on the
    local tangent plane (exact to well under 1 mm for offsets of a few hundred metres)."""
    r = EARTH_RADIUS_KM * 1000.0
    lat = np.asarray(lat, float)
    dlat = np.degrees(np.asarray(north_m, float) / r)
    dlon = np.degrees(np.asarray(east_m, float) / (r * np.cos(np.radians(lat))))
    return lat + dlat, np.asarray(lon, float) + dlon


def local_metres(lat, lon, lat0, lon0) -> tuple[np.ndarray, np.ndarray]:
    """``(east, north)`` metres of ``(lat, lon)`` from ``(lat0, lon0)`` on the local tangent
    plane at ``lat0`` (the inverse of :func:`offset_latlon`)."""
    r = EARTH_RADIUS_KM * 1000.0
    north = np.radians(np.asarray(lat, float) - lat0) * r
    east = np.radians(np.asarray(lon, float) - lon0) * r * np.cos(np.radians(lat0))
    return east, north

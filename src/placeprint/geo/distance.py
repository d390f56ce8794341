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

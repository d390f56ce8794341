"""Geolocation metrics: great-circle error, accuracy at the usual scales, calibration.

The thresholds follow the IM2GPS / PlaNet protocol: the share of queries whose predicted
position lies within 1 km (street), 25 km (city), 200 km (region), 750 km (country) and
2500 km (continent) of the truth.

>>> acc = accuracy_at(np.array([0.5, 10.0, 100.0, 1000.0, 5000.0]))
>>> acc["street"], acc["city"], acc["continent"]
(0.2, 0.4, 0.8)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from placeprint.errors import PlaceprintError
from placeprint.geo.distance import haversine_km

THRESHOLDS_KM: dict[str, float] = {
    "street": 1.0,
    "city": 25.0,
    "region": 200.0,
    "country": 750.0,
    "continent": 2500.0,
}


def _vector(values, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise PlaceprintError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise PlaceprintError(f"{name} is empty: give at least one value")
    if not np.all(np.isfinite(arr)):
        raise PlaceprintError(f"{name} contains NaN or infinite values")
    return arr


def geolocation_errors_km(pred_lat, pred_lon, true_lat, true_lon) -> np.ndarray:
    """``(n,)`` great-circle distance in km between predicted and true positions (degrees)."""
    arrays = [
        _vector(v, name)
        for v, name in [
            (pred_lat, "pred_lat"),
            (pred_lon, "pred_lon"),
            (true_lat, "true_lat"),
            (true_lon, "true_lon"),
        ]
    ]
    if len({a.shape for a in arrays}) != 1:
        raise PlaceprintError(
            "pred_lat, pred_lon, true_lat, true_lon must have the same length, got "
            + ", ".join(str(a.size) for a in arrays)
        )
    for lat, name in [(arrays[0], "pred_lat"), (arrays[2], "true_lat")]:
        if np.any(np.abs(lat) > 90):
            raise PlaceprintError(f"{name} must be latitudes in degrees within [-90, 90]")
    return haversine_km(*arrays)


def accuracy_at(errors_km, thresholds: Mapping[str, float] = THRESHOLDS_KM) -> dict[str, float]:
    """Share of queries with error ``<=`` each threshold (km), keyed like ``thresholds``."""
    err = _vector(errors_km, "errors_km")
    if np.any(err < 0):
        raise PlaceprintError("errors_km must be non-negative distances in km")
    return {name: float(np.mean(err <= float(t))) for name, t in thresholds.items()}


def calibration(levels, ps: Sequence[float] = (0.5, 0.9)) -> dict[str, float]:
    """Observed share of truths inside the ``p``-credible region, for each ``p``.

    ``levels[i]`` is the credible level at which query ``i``'s truth enters the predicted
    region (inside the ``p``-credible region iff ``levels[i] <= p``). A calibrated
    predictor gives about ``p`` for every ``p``. Keys are ``f"{p:g}"`` (``"0.5"``).
    """
    lv = _vector(levels, "levels")
    if np.any((lv < 0) | (lv > 1 + 1e-9)):
        raise PlaceprintError("levels must be credible levels in [0, 1]")
    out = {}
    for p in ps:
        if not 0 < float(p) <= 1:
            raise PlaceprintError(f"credible level p must be in (0, 1], got {p}")
        out[f"{float(p):g}"] = float(np.mean(lv <= float(p)))
    return out


def discrete_credible_level(probs, true_cell) -> np.ndarray:
    """``(n,)`` credible level of the true cell under discrete distributions ``(n, C)``.

    The level is the mass of the smallest highest-probability set of cells that contains
    the true cell: the mass of every cell strictly more probable than it, plus its own
    mass. Tie rule: cells other than the true one with exactly the same probability count
    with half their mass (the expected level under a random tie order). A ``true_cell`` of
    ``-1`` (truth in no cell) gets level 1.0. Rows are used as given (not renormalised);
    the result is clipped to ``[0, 1]``.
    """
    p = np.asarray(probs, dtype=float)
    t = np.asarray(true_cell)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] == 0:
        raise PlaceprintError(f"probs must be a non-empty (n, C) array, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise PlaceprintError("probs must be finite and non-negative")
    if t.ndim != 1 or t.shape[0] != p.shape[0] or not np.issubdtype(t.dtype, np.integer):
        raise PlaceprintError(f"true_cell must be ({p.shape[0]},) integers, got {t.shape}")
    if np.any((t < -1) | (t >= p.shape[1])):
        raise PlaceprintError(f"true_cell must be in [0, {p.shape[1]}) or -1 (outside)")
    missing = t == -1
    rows = np.arange(p.shape[0])
    pt = p[rows, np.where(missing, 0, t)][:, None]
    above = np.where(p > pt, p, 0.0).sum(axis=1)
    ties = np.where(p == pt, p, 0.0).sum(axis=1) - pt[:, 0]  # other cells only
    level = np.clip(above + pt[:, 0] + 0.5 * ties, 0.0, 1.0)
    level[missing] = 1.0
    return level


def summarise(errors_km, levels=None) -> dict:
    """Summary of a geolocation run: ``{"n", "median_km", "mean_km", "accuracy": {...}}``.

    ``accuracy`` maps each :data:`THRESHOLDS_KM` name to its share; with ``levels`` (one
    credible level per query) a ``"calibration"`` entry from :func:`calibration` is added.
    """
    err = _vector(errors_km, "errors_km")
    out: dict = {
        "n": int(err.size),
        "median_km": float(np.median(err)),
        "mean_km": float(np.mean(err)),
        "accuracy": accuracy_at(err),
    }
    if levels is not None:
        lv = _vector(levels, "levels")
        if lv.size != err.size:
            raise PlaceprintError(
                f"levels has {lv.size} values but errors_km has {err.size}: give one per query"
            )
        out["calibration"] = calibration(lv)
    return out

"""Probability on the sphere: von Mises-Fisher kernel densities and mean-shift modes.

This is the kNN-density view of IM2GPS ("Revisiting IM2GPS", Vo et al. 2017): the GPS tags
of the retrieved neighbours, each smoothed by a von Mises-Fisher (vMF) kernel on the unit
sphere S^2, give a density over the Earth; its modes are the candidate places and its
highest-density regions are the credible regions that calibration checks.

Positions are latitude/longitude in degrees; densities are per steradian (``log_pdf``) or
per km^2 (``pdf_km2``); distances are great-circle km on a sphere of radius
``EARTH_RADIUS_KM``. Everything works on plain arrays.

>>> import numpy as np
>>> m = VmfMixture(kappa_for_km(50.0)).fit([48.86, 51.51], [2.35, -0.13])
>>> lat, lon = m.sample(3, rng=0)
>>> m.credible_level([48.86], [2.35]).shape
(1,)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from placeprint.errors import PlaceprintError
from placeprint.geo.distance import EARTH_RADIUS_KM, haversine_km

__all__ = [
    "Mode",
    "VmfMixture",
    "kappa_for_km",
    "mean_shift_modes",
    "to_latlon",
    "to_unit",
]

_CHUNK_ELEMENTS = 1 << 20  # query x kernel entries held at once (8 MiB per float64 array)


def _as_rng(rng: int | np.random.Generator | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _check_latlon(lat, lon) -> tuple[np.ndarray, np.ndarray]:
    """1-D float64 ``(lat, lon)`` in degrees after broadcasting; raise on bad values."""
    try:
        lat, lon = np.broadcast_arrays(np.asarray(lat, float), np.asarray(lon, float))
    except (TypeError, ValueError) as exc:
        raise PlaceprintError(f"lat/lon must be numeric arrays of the same shape: {exc}") from exc
    lat, lon = lat.reshape(-1).astype(float), lon.reshape(-1).astype(float)
    if not (np.all(np.isfinite(lat)) and np.all(np.isfinite(lon))):
        raise PlaceprintError("lat/lon contain NaN or infinity; drop those points first")
    if np.any(np.abs(lat) > 90.0):
        raise PlaceprintError("latitude outside [-90, 90] degrees; are lat and lon swapped?")
    return lat, lon


def _check_weights(weights, n: int) -> np.ndarray:
    """Weights normalised to sum 1 (uniform when None); raise on negative, NaN or all zero."""
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(weights, float).reshape(-1)
    if w.shape != (n,):
        raise PlaceprintError(f"weights must have one value per point ({n}), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise PlaceprintError("weights must be finite and >= 0")
    total = w.sum()
    if total <= 0:
        raise PlaceprintError("weights are all zero; give at least one point a positive weight")
    return w / total


def to_unit(lat, lon) -> np.ndarray:
    """``(n, 3)`` float64 unit vectors (x towards lon 0, z towards the north pole) from degrees."""
    lat, lon = _check_latlon(lat, lon)
    phi, lam = np.radians(lat), np.radians(lon)
    c = np.cos(phi)
    return np.stack([c * np.cos(lam), c * np.sin(lam), np.sin(phi)], axis=1)


def to_latlon(xyz) -> tuple[np.ndarray, np.ndarray]:
    """``(lat, lon)`` in degrees (lon in [-180, 180]) of ``(n, 3)`` or ``(3,)`` vectors.

    Rows are normalised first, so any non-zero vector works; at the poles lon is arbitrary.
    """
    v = np.atleast_2d(np.asarray(xyz, float))
    if v.ndim != 2 or v.shape[1] != 3:
        raise PlaceprintError(f"xyz must have shape (n, 3), got {np.shape(xyz)}")
    if not np.all(np.isfinite(v)):
        raise PlaceprintError("xyz contains NaN or infinity")
    norm = np.linalg.norm(v, axis=1)
    if np.any(norm == 0):
        raise PlaceprintError("xyz contains a zero vector, which has no direction")
    v = v / norm[:, None]
    lat = np.degrees(np.arctan2(v[:, 2], np.hypot(v[:, 0], v[:, 1])))
    lon = np.degrees(np.arctan2(v[:, 1], v[:, 0]))
    return lat, lon


def kappa_for_km(bandwidth_km: float) -> float:
    """vMF concentration whose kernel has angular scale ``bandwidth_km`` (km on the Earth).

    ``kappa = 1 / sigma^2`` with ``sigma = bandwidth_km / EARTH_RADIUS_KM`` in radians: near its
    centre the kernel is a 2-D Gaussian with standard deviation ``bandwidth_km`` per axis.
    """
    try:
        b = float(bandwidth_km)
    except (TypeError, ValueError) as exc:
        raise PlaceprintError(f"bandwidth_km must be a number, got {bandwidth_km!r}") from exc
    if not np.isfinite(b) or b <= 0:
        raise PlaceprintError(f"bandwidth_km must be finite and > 0, got {bandwidth_km!r}")
    return float((EARTH_RADIUS_KM / b) ** 2)


def _log_norm(kappa: np.ndarray) -> np.ndarray:
    """``log C(k) + k`` of the vMF on S^2, ``C(k) = k / (4 pi sinh k)``; the density is then
    ``exp(_log_norm(k) + k (x . mu - 1))``, stable from ``k -> 0`` up to ``k ~ 1e9`` and beyond."""
    return np.log(kappa) - np.log(2 * np.pi) - np.log(-np.expm1(-2.0 * kappa))


def _check_kappa(kappa, n: int | None = None) -> np.ndarray:
    k = np.asarray(kappa, float)
    if k.ndim > 1 or (k.ndim == 1 and n is not None and k.shape != (n,)):
        raise PlaceprintError(f"kappa must be a scalar or one value per point, got {k.shape}")
    if not np.all(np.isfinite(k)) or np.any(k <= 0):
        raise PlaceprintError("kappa must be finite and > 0 (use kappa_for_km(km))")
    return k


class VmfMixture:
    """A weighted mixture of von Mises-Fisher kernels on S^2, one per point (a kernel density).

    ``kappa`` is one concentration for all kernels or one per point (see ``kappa_for_km``).
    After ``fit``: ``mu_`` ``(n, 3)`` kernel centres, ``weights_`` ``(n,)`` summing to 1 (zero-
    weight points are dropped), ``kappa_`` ``(n,)``, ``lat_``/``lon_`` the centres in degrees.
    """

    def __init__(self, kappa: float | np.ndarray) -> None:
        self.kappa = kappa

    def fit(self, lat, lon, weights=None) -> VmfMixture:
        """Place a kernel on each point (degrees) with ``weights >= 0`` (uniform when None)."""
        lat, lon = _check_latlon(lat, lon)
        if lat.size == 0:
            raise PlaceprintError("need at least one point to fit a VmfMixture")
        w = _check_weights(weights, lat.size)
        k = np.broadcast_to(_check_kappa(self.kappa, lat.size), lat.shape).astype(float)
        keep = w > 0
        self.lat_, self.lon_ = lat[keep], lon[keep]
        self.mu_ = to_unit(self.lat_, self.lon_)
        self.weights_ = w[keep] / w[keep].sum()
        self.kappa_ = k[keep]
        self._log_coef = np.log(self.weights_) + _log_norm(self.kappa_)
        return self

    def _require_fit(self) -> None:
        if not hasattr(self, "mu_"):
            raise PlaceprintError("VmfMixture is not fitted; call fit(lat, lon) first")

    def log_pdf(self, lat, lon) -> np.ndarray:
        """``(m,)`` natural log of the density per steradian (integrates to 1 over the sphere)."""
        self._require_fit()
        return self._log_pdf_xyz(to_unit(lat, lon))

    def _log_pdf_xyz(self, x: np.ndarray) -> np.ndarray:
        # x . mu - 1 = -|x - mu|^2 / 2 for unit vectors. From a dot product it is off by
        # ~1e-16, times kappa (up to ~1e10 for 50 m kernels): so |x - mu|^2 is expanded
        # about a local origin c (the kernels' mean direction), |x'|^2 + |mu'|^2 - 2 x'.mu'
        # with x' = x - c, whose rounding scales with how far x and mu lie from c
        # (~1e-24 for a city's photos) instead of 1
        n = self.mu_.shape[0]
        rows = max(1, _CHUNK_ELEMENTS // n)
        c = self.mu_.mean(axis=0)
        norm = np.linalg.norm(c)
        c = c / norm if norm > 1e-12 else self.mu_[0]
        mu = self.mu_ - c
        mu_sq = (mu**2).sum(axis=1)
        out = np.empty(x.shape[0])
        for s in range(0, x.shape[0], rows):
            xs = x[s : s + rows] - c
            d2 = (xs**2).sum(axis=1)[:, None] + mu_sq - 2.0 * (xs @ mu.T)
            a = self._log_coef - 0.5 * self.kappa_ * np.clip(d2, 0.0, 4.0)
            top = a.max(axis=1)
            out[s : s + rows] = top + np.log(np.exp(a - top[:, None]).sum(axis=1))
        return out

    def pdf_km2(self, lat, lon) -> np.ndarray:
        """``(m,)`` density per km^2 of the Earth's surface (per steradian / R^2)."""
        return np.exp(self.log_pdf(lat, lon)) / EARTH_RADIUS_KM**2

    def sample(
        self, n: int, rng: int | np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``n`` exact draws ``(lat, lon)`` in degrees (Wood 1994 vMF sampler, p = 3)."""
        self._require_fit()
        if int(n) != n or n < 0:
            raise PlaceprintError(f"n must be a non-negative integer, got {n!r}")
        return to_latlon(self._sample_xyz(int(n), _as_rng(rng)))

    def _sample_xyz(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if n == 0:
            return np.empty((0, 3))
        comp = rng.choice(self.mu_.shape[0], size=n, p=self.weights_)
        mu, k = self.mu_[comp], self.kappa_[comp]
        u = 1.0 - rng.random(n)  # in (0, 1]
        # 1 - w, with w = 1 + log(u + (1 - u) exp(-2k)) / k the cosine to the centre
        one_minus_w = np.clip(-np.log(u + (1.0 - u) * np.exp(-2.0 * k)) / k, 0.0, 2.0)
        w = 1.0 - one_minus_w
        sin_t = np.sqrt(np.clip(one_minus_w * (2.0 - one_minus_w), 0.0, 1.0))
        # orthonormal tangent basis (e1, e2) at each centre
        helper = np.where(np.abs(mu[:, [0]]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
        e1 = np.cross(mu, helper)
        e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
        e2 = np.cross(mu, e1)
        phi = rng.uniform(0.0, 2 * np.pi, n)
        tangent = np.cos(phi)[:, None] * e1 + np.sin(phi)[:, None] * e2
        x = w[:, None] * mu + sin_t[:, None] * tangent
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def _sample_log_pdf(self, samples: int, rng) -> np.ndarray:
        if int(samples) != samples or samples < 1:
            raise PlaceprintError(f"samples must be a positive integer, got {samples!r}")
        return np.sort(self._log_pdf_xyz(self._sample_xyz(int(samples), _as_rng(rng))))

    def credible_level(
        self, lat, lon, samples: int = 4000, rng: int | np.random.Generator | None = 0
    ) -> np.ndarray:
        """``(m,)`` mass of the highest-density region whose boundary passes through each point.

        Monte-Carlo estimate: the share of ``samples`` draws ``s`` with ``pdf(s) >= pdf(x)``.
        The truth lies inside the p-credible region iff its level is ``<= p``; under a
        calibrated model the levels of the truths are uniform on [0, 1].
        """
        self._require_fit()
        lx = self.log_pdf(lat, lon)
        ls = self._sample_log_pdf(samples, rng)
        return (ls.size - np.searchsorted(ls, lx, side="left")) / ls.size

    def hpd_threshold(
        self, p: float, samples: int = 4000, rng: int | np.random.Generator | None = 0
    ) -> float:
        """Log-density (per steradian) above which the mixture holds mass ``p`` (the p-HPD)."""
        self._require_fit()
        if not 0.0 < float(p) <= 1.0:
            raise PlaceprintError(f"p must be in (0, 1], got {p!r}")
        return float(np.quantile(self._sample_log_pdf(samples, rng), 1.0 - float(p)))


@dataclass(frozen=True, eq=False)
class Mode:
    """A mean-shift mode: position (degrees), ``mass`` (share of all weight), ``members``
    (indices of the input points that converged to it), ``radius_km`` (weighted 90th-percentile
    great-circle distance of the members to the mode, km; may be 0)."""

    lat: float
    lon: float
    mass: float
    members: np.ndarray
    radius_km: float


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    v, w = values[order], weights[order]
    if w.sum() <= 0:
        w = np.ones_like(w)
    cum = np.cumsum(w) / w.sum()
    return float(v[min(np.searchsorted(cum, q - 1e-12), v.size - 1)])


def _shift(y: np.ndarray, x: np.ndarray, w: np.ndarray, kappa: float) -> np.ndarray:
    """One mean-shift step of the positions ``y`` towards the vMF-weighted mean of ``x``."""
    out = np.empty_like(y)
    rows = max(1, _CHUNK_ELEMENTS // x.shape[0])
    for s in range(0, y.shape[0], rows):
        k = w * np.exp(kappa * (np.clip(y[s : s + rows] @ x.T, -1.0, 1.0) - 1.0))
        m = k @ x
        norm = np.linalg.norm(m, axis=1, keepdims=True)
        ok = norm[:, 0] > 0
        out[s : s + rows] = np.where(
            ok[:, None], m / np.where(ok, norm[:, 0], 1.0)[:, None], y[s : s + rows]
        )
    return out


def mean_shift_modes(
    lat,
    lon,
    weights=None,
    bandwidth_km: float = 25.0,
    min_members: int = 4,
    max_iter: int = 100,
    tol_km: float = 0.01,
) -> list[Mode]:
    """Modes of the weighted vMF kernel density of points (degrees), sorted by mass, heaviest first.

    Each point climbs by mean shift on 3-D unit vectors (moves to the kernel-weighted mean of the
    data, re-projected on the sphere; kernel ``kappa_for_km(bandwidth_km)``) until it moves less
    than ``tol_km``; end points within ``bandwidth_km / 4`` of each other (chained) form one mode.
    Modes with fewer than ``min_members`` points are dropped (the IM2GPS rule: fewer than 4
    matches), except that when no mode would survive the heaviest one is kept, so the result is
    never empty. ``mass`` counts all input weight in its denominator, so dropped modes make the
    masses sum below 1. Cost is O(n^2) per iteration in time (memory is bounded by chunking):
    fine for n up to about 2000 points.
    """
    lat, lon = _check_latlon(lat, lon)
    if lat.size == 0:
        raise PlaceprintError("mean_shift_modes needs at least one point")
    w = _check_weights(weights, lat.size)
    kappa = kappa_for_km(bandwidth_km)
    if int(min_members) != min_members or min_members < 1:
        raise PlaceprintError(f"min_members must be an integer >= 1, got {min_members!r}")
    if int(max_iter) != max_iter or max_iter < 1:
        raise PlaceprintError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    if not (np.isfinite(tol_km) and tol_km > 0):
        raise PlaceprintError(f"tol_km must be finite and > 0, got {tol_km!r}")

    x = to_unit(lat, lon)
    y = x.copy()
    active = np.arange(x.shape[0])
    tol_chord = 2 * np.sin(tol_km / EARTH_RADIUS_KM / 2)
    for _ in range(int(max_iter)):
        new = _shift(y[active], x, w, kappa)
        moved = np.linalg.norm(new - y[active], axis=1)
        y[active] = new
        active = active[moved >= tol_chord]
        if active.size == 0:
            break

    merge_rad = min(bandwidth_km / 4.0 / EARTH_RADIUS_KM, np.pi)
    pairs = cKDTree(y).query_pairs(2 * np.sin(merge_rad / 2), output_type="ndarray")
    n = x.shape[0]
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    n_comp, label = connected_components(graph, directed=False)

    modes = []
    for c in range(n_comp):
        members = np.flatnonzero(label == c)
        wm = w[members]
        centre = (wm if wm.sum() > 0 else np.ones_like(wm)) @ y[members]
        mlat, mlon = to_latlon(centre)
        dist = haversine_km(lat[members], lon[members], mlat[0], mlon[0])
        radius = _weighted_quantile(dist, wm, 0.9)
        modes.append(Mode(float(mlat[0]), float(mlon[0]), float(wm.sum()), members, radius))
    modes.sort(key=lambda m: (-m.mass, -m.members.size))
    kept = [m for m in modes if m.members.size >= min_members]
    return kept if kept else modes[:1]

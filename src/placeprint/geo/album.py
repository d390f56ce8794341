"""PlaNet's album model: smooth per-photo cell distributions along an album with an HMM.

Each photo of an album (or sequence) has a likelihood over ``C`` discrete cells (a row of the
emission matrix, e.g. a classifier's softmax or a retrieval density integrated per cell). The
hidden state is the photo's cell; between consecutive photos (ordered by time) the traveller
moves from cell ``i`` to cell ``j`` with probability

    P(j | i) = (1 - teleport) * exp(-d_ij / s) / sum_j' exp(-d_ij' / s) + teleport / C,
    s = max(min_km, speed_kmh * dt_hours),

a distance-and-time decay: with little time between shots only nearby cells are likely, with a
long gap anything goes; the ``teleport`` share keeps every move possible (wrong timestamps, a
flight). Scaled forward-backward then gives each photo's posterior given the whole album.
Distances are great-circle km between cell centres (degrees); times are seconds.

>>> import numpy as np
>>> lik = np.array([[0.9, 0.1], [0.5, 0.5]])  # photo 1 says nothing
>>> smooth_album(lik, [48.85, 40.71], [2.35, -74.0], timestamps=[0.0, 600.0]).round(3)
array([[0.9, 0.1],
       [0.9, 0.1]])
"""

from __future__ import annotations

import numpy as np

from placeprint.errors import PlaceprintError
from placeprint.geo.distance import pairwise_km

__all__ = ["DEFAULT_SCALE_KM", "forward_backward", "smooth_album", "transition_matrix"]

DEFAULT_SCALE_KM = 1000.0
"""Decay scale in km used when the time between two photos is unknown (None or NaN)."""


def _check_cells(cell_lat, cell_lon) -> tuple[np.ndarray, np.ndarray]:
    lat, lon = np.asarray(cell_lat, float), np.asarray(cell_lon, float)
    if lat.ndim != 1 or lat.shape != lon.shape or lat.size == 0:
        raise PlaceprintError(
            f"cell_lat and cell_lon must be 1-D of equal, non-zero length, got "
            f"{lat.shape} and {lon.shape}"
        )
    if not (np.all(np.isfinite(lat)) and np.all(np.isfinite(lon))) or np.any(np.abs(lat) > 90):
        raise PlaceprintError("cell centres must be finite with latitude in [-90, 90] degrees")
    return lat, lon


def _check_options(speed_kmh: float, min_km: float, teleport: float) -> None:
    if not (np.isfinite(speed_kmh) and speed_kmh > 0):
        raise PlaceprintError(f"speed_kmh must be finite and > 0, got {speed_kmh!r}")
    if not (np.isfinite(min_km) and min_km > 0):
        raise PlaceprintError(f"min_km must be finite and > 0, got {min_km!r}")
    if not 0.0 <= teleport < 1.0:
        raise PlaceprintError(f"teleport must be in [0, 1), got {teleport!r}")


def _scale_km(dt_seconds: float | None, speed_kmh: float, min_km: float) -> float:
    if dt_seconds is None:
        return DEFAULT_SCALE_KM
    try:
        dt_seconds = float(dt_seconds)
    except (TypeError, ValueError) as exc:
        raise PlaceprintError(f"dt_seconds must be a number or None, got {dt_seconds!r}") from exc
    if np.isnan(dt_seconds):
        return DEFAULT_SCALE_KM
    if dt_seconds < 0:
        raise PlaceprintError(f"dt_seconds must be >= 0 (or None), got {dt_seconds!r}")
    return max(min_km, speed_kmh * dt_seconds / 3600.0)


def _transition_from_km(dist_km: np.ndarray, scale_km: float, teleport: float) -> np.ndarray:
    # the diagonal is exp(0) = 1, so no row sum underflows even for a tiny scale
    k = np.exp(-dist_km / scale_km)
    c = dist_km.shape[0]
    return (1.0 - teleport) * k / k.sum(axis=1, keepdims=True) + teleport / c


def transition_matrix(
    cell_lat,
    cell_lon,
    dt_seconds: float | None,
    speed_kmh: float = 80.0,
    min_km: float = 1.0,
    teleport: float = 1e-3,
) -> np.ndarray:
    """``(C, C)`` row-stochastic move probabilities between cells (centres in degrees).

    ``P(j | i)`` is proportional to ``exp(-d_ij / s)`` (great-circle km) with scale
    ``s = max(min_km, speed_kmh * dt_seconds / 3600)`` km, mixed with a uniform ``teleport``
    share: ``(1 - teleport) * decay + teleport / C``. An unknown gap (``dt_seconds`` None or
    NaN) uses ``s = DEFAULT_SCALE_KM`` (1000 km).
    """
    lat, lon = _check_cells(cell_lat, cell_lon)
    _check_options(speed_kmh, min_km, teleport)
    scale = _scale_km(dt_seconds, speed_kmh, min_km)
    return _transition_from_km(pairwise_km(lat, lon), scale, teleport)


def _check_likelihoods(likelihoods) -> np.ndarray:
    lik = np.asarray(likelihoods, float)
    if lik.ndim != 2 or lik.shape[0] == 0 or lik.shape[1] == 0:
        raise PlaceprintError(f"likelihoods must have shape (T, C) with T, C >= 1, got {lik.shape}")
    if not np.all(np.isfinite(lik)) or np.any(lik < 0):
        raise PlaceprintError("likelihoods must be finite and >= 0")
    top = lik.max(axis=1, keepdims=True)
    if np.any(top <= 0):
        raise PlaceprintError("a photo has zero likelihood in every cell; give it a flat row")
    return lik / top  # rescaling a row leaves the posteriors unchanged and avoids underflow


def _check_prior(prior, c: int) -> np.ndarray:
    if prior is None:
        return np.full(c, 1.0 / c)
    p = np.asarray(prior, float)
    if p.shape != (c,):
        raise PlaceprintError(f"prior must have shape ({c},), got {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise PlaceprintError("prior must be finite, >= 0 and not all zero")
    return p / p.sum()


def _normalise(v: np.ndarray, what: str) -> np.ndarray:
    total = v.sum()
    if not total > 0:
        raise PlaceprintError(
            f"{what}: the likelihoods are zero in every cell the model can reach; "
            "use teleport > 0 or check the likelihood rows"
        )
    return v / total


def forward_backward(likelihoods, transitions, prior=None) -> np.ndarray:
    """``(T, C)`` posteriors of an HMM by scaled forward-backward.

    ``likelihoods`` ``(T, C)`` are ``p(photo_t | cell)`` (any positive scale per row),
    ``transitions`` a sequence of ``T - 1`` row-stochastic ``(C, C)`` matrices (``[t][i, j]`` =
    ``P(cell_{t+1} = j | cell_t = i)``), ``prior`` ``(C,)`` for the first photo (uniform when
    None). Each returned row sums to 1.
    """
    lik = _check_likelihoods(likelihoods)
    t_len, c = lik.shape
    p0 = _check_prior(prior, c)
    trans = list(transitions)
    if len(trans) != t_len - 1:
        raise PlaceprintError(f"need {t_len - 1} transition matrices for {t_len} photos")
    for t, a in enumerate(trans):
        a = np.asarray(a, float)
        if a.shape != (c, c) or not np.all(np.isfinite(a)) or np.any(a < 0):
            raise PlaceprintError(f"transition {t} must be a finite, non-negative ({c}, {c}) array")
        if not np.allclose(a.sum(axis=1), 1.0, atol=1e-6):
            raise PlaceprintError(f"transition {t} must be row-stochastic (rows summing to 1)")
        trans[t] = a

    alpha = np.empty((t_len, c))
    alpha[0] = _normalise(p0 * lik[0], "photo 0")
    for t in range(1, t_len):
        alpha[t] = _normalise((alpha[t - 1] @ trans[t - 1]) * lik[t], f"photo {t}")
    post = np.empty((t_len, c))
    beta = np.ones(c)
    post[-1] = alpha[-1]
    for t in range(t_len - 2, -1, -1):
        beta = _normalise(trans[t] @ (lik[t + 1] * beta), f"photo {t} (backward)")
        post[t] = _normalise(alpha[t] * beta, f"photo {t}")
    return post


def smooth_album(
    likelihoods,
    cell_lat,
    cell_lon,
    timestamps=None,
    prior=None,
    *,
    speed_kmh: float = 80.0,
    min_km: float = 1.0,
    teleport: float = 1e-3,
) -> np.ndarray:
    """``(T, C)`` posterior of each photo's cell given its whole album, rows in input order.

    ``likelihoods`` ``(T, C)`` per photo over cells centred at ``cell_lat``/``cell_lon``
    (degrees); ``timestamps`` ``(T,)`` seconds (photos are ordered by them; None keeps the
    input order and treats every gap as unknown); ``prior`` ``(C,)`` for the first photo.
    Each step uses ``transition_matrix`` for the time between consecutive photos with the
    given ``speed_kmh``, ``min_km`` and ``teleport``. One photo gives ``prior * likelihood``
    normalised.
    """
    lik = _check_likelihoods(likelihoods)
    lat, lon = _check_cells(cell_lat, cell_lon)
    if lik.shape[1] != lat.size:
        raise PlaceprintError(
            f"likelihoods have {lik.shape[1]} cells but {lat.size} cell centres were given"
        )
    _check_options(speed_kmh, min_km, teleport)
    t_len = lik.shape[0]
    if timestamps is None:
        order = np.arange(t_len)
        gaps: list[float | None] = [None] * (t_len - 1)
    else:
        ts = np.asarray(timestamps, float)
        if ts.shape != (t_len,) or not np.all(np.isfinite(ts)):
            raise PlaceprintError(f"timestamps must be {t_len} finite values in seconds")
        order = np.argsort(ts, kind="stable")
        gaps = list(np.diff(ts[order]))
    dist = pairwise_km(lat, lon)
    cache: dict[float, np.ndarray] = {}
    trans = []
    for dt in gaps:
        scale = _scale_km(dt, speed_kmh, min_km)
        if scale not in cache:
            cache[scale] = _transition_from_km(dist, scale, teleport)
        trans.append(cache[scale])
    post_sorted = forward_backward(lik[order], trans, prior)
    post = np.empty_like(post_sorted)
    post[order] = post_sorted
    return post

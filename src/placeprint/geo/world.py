"""A simulated worldwide photo collection: real photo positions, synthetic descriptors.

No worldwide image benchmark is available offline, so global-scale experiments use this
generator. POSITIONS are real: drawn (with replacement) from the 100,000 photo locations
in ``world/photo_locations_100k.csv`` (the MP-16 / YFCC distribution), plus a small
jitter. DESCRIPTORS are simulated with a controllable amount of geographic signal::

    descriptor = normalise(signal * field(position) + noise * N(0, I_dim))

``field`` is a :class:`WorldField`: a smooth random function of the 3-D unit vector of a
position, the sum over length scales (km) of random Fourier features of a Gaussian kernel
with that scale, each scale contributing equally. Every coordinate of ``field`` has
variance about 1, so ``signal**2 / noise**2`` is the per-coordinate signal-to-noise
ratio; nearby places get similar descriptors, places far beyond the largest scale
unrelated ones, and ``signal=0`` gives descriptors that say nothing about the position.

Database and queries must share one field (same ``seed``): use :func:`split_world`, which
draws both from one field and takes their positions from disjoint rows of the location
table (same distribution, no query sits on a database photo), or build a
:class:`WorldField` once and pass it to :func:`simulate_world` as ``field=``.

>>> lat, lon = np.array([0.0, 10.0, 50.0]), np.array([0.0, 20.0, 8.0])
>>> world = simulate_world(5, dim=8, lat=lat, lon=lon, seed=1)
>>> world.descriptors.shape, world.descriptors.dtype
((5, 8), dtype('float32'))
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field

import numpy as np

from placeprint.errors import PlaceprintError
from placeprint.geo.cells import read_photo_locations
from placeprint.geo.distance import EARTH_RADIUS_KM
from placeprint.geo.sphere import to_latlon, to_unit

__all__ = ["WorldCollection", "WorldField", "read_photo_locations", "simulate_world", "split_world"]

DEFAULT_SCALES_KM: tuple[float, ...] = (1.0, 25.0, 200.0, 750.0, 2500.0)
_CHUNK = 8192  # rows per block when evaluating the field (bounds memory)


class WorldField:
    """A smooth random map from positions to ``(dim,)`` vectors, fixed by ``seed``.

    For each length scale ``s`` (km) it draws ``n_features`` random Fourier features
    ``sqrt(2 / F) * cos(w . x + b)`` of the unit vector ``x``, with ``w ~ N(0, I_3 / sigma^2)``,
    ``sigma = s / R`` and ``b ~ U(0, 2 pi)`` (they approximate the Gaussian kernel
    ``exp(-|x - y|^2 / (2 sigma^2))``), and projects them to ``dim`` with a ``N(0, 1)``
    matrix. The scales are summed and divided by ``sqrt(len(scales_km))``, so each scale
    contributes equally and every output coordinate has variance about 1; the expected
    inner product of two outputs, divided by ``dim``, is the mean of the scales' kernels.
    """

    def __init__(
        self,
        dim: int = 64,
        scales_km: tuple[float, ...] = DEFAULT_SCALES_KM,
        seed: int = 0,
        n_features: int = 256,
    ) -> None:
        if int(dim) < 1 or int(n_features) < 1:
            raise PlaceprintError(f"dim and n_features must be >= 1, got {dim}, {n_features}")
        scales = tuple(float(s) for s in scales_km)
        if not scales or any(not np.isfinite(s) or s <= 0 for s in scales):
            raise PlaceprintError(f"scales_km must be positive lengths in km, got {scales_km}")
        self.dim, self.scales_km, self.seed = int(dim), scales, int(seed)
        self.n_features = int(n_features)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0]))
        f = self.n_features
        self.freqs_ = [rng.normal(0.0, EARTH_RADIUS_KM / s, size=(3, f)) for s in scales]
        self.phases_ = [rng.uniform(0.0, 2 * np.pi, size=f) for _ in scales]
        self.proj_ = [rng.normal(0.0, 1.0, size=(f, self.dim)) for _ in scales]

    def __call__(self, lat, lon) -> np.ndarray:
        """``(n, dim) float64`` field values at positions in degrees (noiseless)."""
        lat, lon = np.atleast_1d(np.asarray(lat, float)), np.atleast_1d(np.asarray(lon, float))
        if lat.shape != lon.shape or lat.ndim != 1:
            raise PlaceprintError(f"lat and lon must be 1-D of equal length: {lat.shape}")
        if not (np.all(np.isfinite(lat)) and np.all(np.isfinite(lon))):
            raise PlaceprintError("lat and lon must be finite degrees")
        xyz = to_unit(lat, lon)
        out = np.zeros((len(lat), self.dim))
        amp = np.sqrt(2.0 / self.n_features) / np.sqrt(len(self.scales_km))
        for start in range(0, len(lat), _CHUNK):
            block = xyz[start : start + _CHUNK]
            for w, b, p in zip(self.freqs_, self.phases_, self.proj_, strict=True):
                out[start : start + _CHUNK] += (amp * np.cos(block @ w + b)) @ p
        return out

    def describe(self, lat, lon, signal: float, noise: float, rng) -> np.ndarray:
        """``(n, dim) float32`` L2-normalised ``signal * field + noise * N(0, I)``."""
        if not (signal >= 0 and noise >= 0) or signal + noise == 0:
            raise PlaceprintError(f"signal and noise must be >= 0, not both 0: {signal}, {noise}")
        x = float(signal) * self(lat, lon) if signal > 0 else np.zeros((len(lat), self.dim))
        x = x + float(noise) * rng.normal(size=x.shape)
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return (x / np.maximum(norms, 1e-12)).astype(np.float32)


@dataclass
class WorldCollection:
    """Simulated photos: positions (degrees), descriptors ``(n, dim) float32`` (unit norm).

    ``source_rows`` are the rows of the location table each photo was drawn from
    (before jitter); the remaining fields record how the collection was made.
    """

    lat: np.ndarray
    lon: np.ndarray
    descriptors: np.ndarray
    source_rows: np.ndarray
    signal: float
    noise: float
    scales_km: tuple[float, ...]
    jitter_km: float
    seed: int
    meta: dict = dc_field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.lat)

    @property
    def dim(self) -> int:
        """Descriptor length."""
        return int(self.descriptors.shape[1])

    @property
    def place_scale_km(self) -> float:
        """Finest length scale (km) of the field: below it, descriptors barely change."""
        return float(min(self.scales_km))


def _pool(lat, lon) -> tuple[np.ndarray, np.ndarray]:
    if lat is None and lon is None:
        return read_photo_locations()
    if lat is None or lon is None:
        raise PlaceprintError("give both lat and lon (degrees) or neither (real locations)")
    lat, lon = np.asarray(lat, float).ravel(), np.asarray(lon, float).ravel()
    if lat.shape != lon.shape or lat.size == 0:
        raise PlaceprintError(
            f"lat and lon must be non-empty and equal length: {lat.size}, {lon.size}"
        )
    if not (np.all(np.isfinite(lat)) and np.all(np.isfinite(lon)) and np.all(np.abs(lat) <= 90)):
        raise PlaceprintError("lat must be finite degrees within [-90, 90], lon finite degrees")
    return lat, lon


def _jitter(lat, lon, jitter_km: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Move each position by a 2-D Gaussian step of std ``jitter_km`` per tangent axis."""
    if jitter_km < 0 or not np.isfinite(jitter_km):
        raise PlaceprintError(f"jitter_km must be a finite distance >= 0, got {jitter_km}")
    xyz = to_unit(lat, lon)
    step = rng.normal(0.0, jitter_km / EARTH_RADIUS_KM, size=xyz.shape)
    step -= np.sum(step * xyz, axis=1, keepdims=True) * xyz  # tangent plane only
    if jitter_km == 0:
        return np.asarray(lat, float).copy(), np.asarray(lon, float).copy()
    return to_latlon(xyz + step)


def _draw(
    rows, n, field, signal, noise, jitter_km, seed, stream, pool, replace: bool = True
) -> WorldCollection:
    if int(n) < 1:
        raise PlaceprintError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), stream]))
    if replace:
        chosen = rows[rng.integers(0, len(rows), size=int(n))]
    elif int(n) <= len(rows):
        chosen = rows[rng.permutation(len(rows))[: int(n)]]
    else:
        raise PlaceprintError(
            f"cannot draw {n} photos without replacement from {len(rows)} locations"
        )
    lat, lon = _jitter(pool[0][chosen], pool[1][chosen], float(jitter_km), rng)
    desc = field.describe(lat, lon, float(signal), float(noise), rng)
    return WorldCollection(
        lat=lat,
        lon=lon,
        descriptors=desc,
        source_rows=chosen.astype(np.int64),
        signal=float(signal),
        noise=float(noise),
        scales_km=field.scales_km,
        jitter_km=float(jitter_km),
        seed=int(seed),
    )


def _check_field(field, dim, scales_km, seed) -> WorldField:
    if field is None:
        return WorldField(dim, tuple(scales_km), seed)
    if field.dim != int(dim) or field.scales_km != tuple(float(s) for s in scales_km):
        raise PlaceprintError(
            f"field has dim={field.dim}, scales_km={field.scales_km} but dim={dim}, "
            f"scales_km={tuple(scales_km)} were asked: pass matching values"
        )
    return field


def simulate_world(
    n: int,
    dim: int = 64,
    signal: float = 1.0,
    noise: float = 1.0,
    scales_km: tuple[float, ...] = DEFAULT_SCALES_KM,
    jitter_km: float = 0.5,
    seed: int = 0,
    lat=None,
    lon=None,
    field: WorldField | None = None,
) -> WorldCollection:
    """``n`` simulated photos: positions drawn with replacement from ``(lat, lon)``.

    Positions (degrees) come from ``lat, lon`` when given, else from
    :func:`read_photo_locations`, each moved by a Gaussian jitter of ``jitter_km`` per
    tangent axis. Descriptors follow the module docstring; the field is
    ``WorldField(dim, scales_km, seed)`` unless ``field`` is given (it must then match
    ``dim`` and ``scales_km``). Same arguments, same collection. ``seed`` also drives the
    positions, jitter and noise: when drawing queries for a database with a shared
    ``field``, give them another ``seed`` (or use :func:`split_world`, which also keeps
    their rows apart).
    """
    pool = _pool(lat, lon)
    fld = _check_field(field, dim, scales_km, seed)
    rows = np.arange(len(pool[0]))
    return _draw(rows, n, fld, signal, noise, jitter_km, seed, 1, pool)


def split_world(
    n_db: int,
    n_query: int,
    dim: int = 64,
    signal: float = 1.0,
    noise: float = 1.0,
    scales_km: tuple[float, ...] = DEFAULT_SCALES_KM,
    jitter_km: float = 0.5,
    seed: int = 0,
    lat=None,
    lon=None,
    query_share: float | None = None,
    replace: bool = True,
) -> tuple[WorldCollection, WorldCollection]:
    """``(database, queries)`` sharing one :class:`WorldField` (``seed``).

    The location table (``lat, lon`` or the real locations) is shuffled and split into
    disjoint rows: a share ``query_share`` (default ``n_query / (n_db + n_query)``) is
    held out for queries, the rest serves the database; each side then draws its photos
    with replacement from its own rows. Queries thus follow the photo distribution but
    never reuse a database row (rows repeated in the table itself may still coincide).
    ``replace=False`` draws each side's rows without replacement, so no two database
    photos come from one row (a held-out database photo then has no twin a query lacks).
    """
    pool = _pool(lat, lon)
    share = n_query / max(n_db + n_query, 1) if query_share is None else float(query_share)
    n_rows = len(pool[0])
    n_held = int(round(share * n_rows))
    if not 0 < share < 1 or n_held < 1 or n_held >= n_rows:
        raise PlaceprintError(
            f"cannot hold out a query share of {share:g} from {n_rows} locations: "
            "give more locations or a share strictly between 0 and 1"
        )
    perm = np.random.default_rng(np.random.SeedSequence([int(seed), 3])).permutation(n_rows)
    fld = WorldField(dim, tuple(scales_km), seed)
    db = _draw(perm[n_held:], n_db, fld, signal, noise, jitter_km, seed, 1, pool, replace)
    queries = _draw(perm[:n_held], n_query, fld, signal, noise, jitter_km, seed, 2, pool, replace)
    return db, queries

"""Land and sea, and where people take photos: priors for geolocation.

The land-sea mask is ``global-land-mask``'s 1/120 degree grid (NOAA GLOBE; most lakes
count as land). The photo-density prior turns per-cell photo counts (e.g. from
``photo_locations_100k.csv``) into a smoothed distribution over cells.
"""

from __future__ import annotations

import numpy as np

from placeprint.errors import PlaceprintError
from placeprint.geo.distance import EARTH_RADIUS_KM

#: default radius (km) of the disc whose land share weights a position
LAND_RADIUS_KM = 25.0
_CHUNK = 16384


def _positions(lat, lon) -> tuple[np.ndarray, np.ndarray]:
    """Broadcast and check degrees; longitudes wrapped to [-180, 180)."""
    try:
        lat, lon = np.broadcast_arrays(
            np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
        )
    except ValueError:
        raise PlaceprintError("lat and lon have shapes that do not broadcast") from None
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90))
    if bad.any():
        i = int(np.flatnonzero(bad.reshape(-1))[0])
        raise PlaceprintError(
            f"invalid position at row {i}: ({lat.reshape(-1)[i]}, {lon.reshape(-1)[i]}) "
            "(need finite degrees, |lat| <= 90)"
        )
    return lat, (lon + 180.0) % 360.0 - 180.0


class _PackedMask:
    """``global-land-mask``'s grid, one bit a cell (117 MB instead of the package's 933 MB).

    The package's ``.npz`` is decompressed row block by row block and packed as it is
    read, so the full boolean array never sits in memory; lookups index the bits with
    the package's own lat/lon axes (the same cells ``globe.is_land`` reads; the stored
    bit is "ocean"). Decompressing takes about 2 s, so the packed bits are kept under
    ``cache_root()/land`` (keyed by the package file's size and time) and later processes
    map that file instead (milliseconds; only the pages a lookup touches are read).
    """

    def __init__(self) -> None:
        import importlib.util
        import zipfile
        from pathlib import Path

        from placeprint.derived_cache import derived_path, keep

        spec = importlib.util.find_spec("global_land_mask")
        if spec is None or spec.origin is None:
            raise PlaceprintError(
                "global-land-mask is not installed (pip install global-land-mask)"
            )
        npz = Path(spec.origin).parent / "globe_combined_mask_compressed.npz"
        with zipfile.ZipFile(npz) as z:
            with z.open("lat.npy") as fh:
                self.lat = np.lib.format.read_array(fh)
            with z.open("lon.npy") as fh:
                self.lon = np.lib.format.read_array(fh)
            shape = (len(self.lat), (len(self.lon) + 7) // 8)
            cached = derived_path(npz, "land", "globe-mask", ".npy")
            self.bits = _load_cached_bits(cached, shape)
            if self.bits is None:
                with z.open("mask.npy") as fh:
                    bits = self.bits = _packed_bits(fh, npz)
                keep(cached, lambda out: np.save(out, bits))
        self.lat0, self.dlat = float(self.lat[0]), float(self.lat[1] - self.lat[0])
        self.lon0, self.dlon = float(self.lon[0]), float(self.lon[1] - self.lon[0])

    def lookup(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Land (bool) at positions already checked and wrapped by :func:`_positions`."""
        lat = np.clip(lat, self.lat.min(), self.lat.max())
        lon = np.clip(lon, self.lon.min(), self.lon.max())
        i = ((lat - self.lat0) / self.dlat).astype(np.int64)
        j = ((lon - self.lon0) / self.dlon).astype(np.int64)
        ocean = (self.bits[i, j >> 3] >> (7 - (j & 7))) & 1  # the package stores "is ocean"
        return ocean == 0


def _packed_bits(fh, npz) -> np.ndarray:
    """The package's boolean ``mask.npy`` (an open member) packed 8 cells a byte."""
    version = np.lib.format.read_magic(fh)
    read_header = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    shape, fortran, dtype = read_header(fh)
    if fortran or dtype != np.bool_ or len(shape) != 2:
        raise PlaceprintError(f"unexpected land mask layout in {npz}")
    rows, cols = shape
    bits = np.empty((rows, (cols + 7) // 8), np.uint8)
    step = 512
    for start in range(0, rows, step):
        n = min(step, rows - start)
        block = np.frombuffer(fh.read(n * cols), np.bool_).reshape(n, cols)
        bits[start : start + n] = np.packbits(block, axis=1)
    return bits


def _load_cached_bits(path, shape: tuple[int, int]) -> np.ndarray | None:
    """The kept bits, mapped read-only; None when absent or not what they should be."""
    if path is None:
        return None
    try:
        bits = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    return bits if bits.shape == shape and bits.dtype == np.uint8 else None


_MASK: _PackedMask | None = None


def _mask() -> _PackedMask:
    global _MASK
    if _MASK is None:
        _MASK = _PackedMask()
    return _MASK


def is_land(lat, lon) -> np.ndarray:
    """Whether each position (degrees, broadcasting) is on land: bool array of that shape.

    Longitudes are wrapped to [-180, 180) first, so 190 means -170. The mask is
    ``global-land-mask``'s 1/120 degree grid, held one bit a cell.

    >>> is_land([52.52, 30.0], [13.405, -40.0]).tolist()
    [True, False]
    """
    lat, lon = _positions(lat, lon)
    return _mask().lookup(lat, lon)


def _disc_offsets(samples: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """``(distance / R, bearing)`` in radians of ``samples`` points uniform in a unit disc."""
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise PlaceprintError(f"samples must be a positive integer, got {samples!r}")
    gen = np.random.default_rng(rng)
    return np.sqrt(gen.random(samples)), gen.random(samples) * 2 * np.pi


def land_fraction(lat, lon, radius_km: float, samples: int = 64, rng=0) -> np.ndarray:
    """Share of land (0..1) in the disc of ``radius_km`` around each position: ``(n,)``.

    ``samples`` points are drawn uniformly in the tangent plane of each position (the same
    offsets for every position, from ``rng``: a seed or a ``numpy.random.Generator``) and
    carried onto the sphere along great circles (azimuthal equidistant), so the estimate
    is sound near the poles and across the antimeridian; the disc is a good model of the
    area for ``radius_km`` below about 1000 km. Standard error <= 0.5 / sqrt(samples).
    """
    lat, lon = _positions(lat, lon)
    lat, lon = lat.reshape(-1), lon.reshape(-1)
    if not (np.isfinite(radius_km) and radius_km > 0):
        raise PlaceprintError(f"radius_km must be > 0, got {radius_km!r}")
    if radius_km > 0.5 * np.pi * EARTH_RADIUS_KM:
        raise PlaceprintError(f"radius_km {radius_km} is more than a quarter of the globe")
    r, bearing = _disc_offsets(samples, rng)
    delta = r * (radius_km / EARTH_RADIUS_KM)
    sin_d, cos_d = np.sin(delta), np.cos(delta)
    sin_b, cos_b = np.sin(bearing), np.cos(bearing)
    out = np.empty(len(lat))
    for s in range(0, len(lat), _CHUNK):
        phi = np.radians(lat[s : s + _CHUNK])[:, None]
        lmb = np.radians(lon[s : s + _CHUNK])[:, None]
        sin_p2 = np.clip(np.sin(phi) * cos_d + np.cos(phi) * sin_d * cos_b, -1.0, 1.0)
        phi2 = np.arcsin(sin_p2)
        lmb2 = lmb + np.arctan2(sin_b * sin_d * np.cos(phi), cos_d - np.sin(phi) * sin_p2)
        land = is_land(np.degrees(phi2), np.degrees(lmb2))
        out[s : s + _CHUNK] = land.mean(axis=1)
    return out


def land_weights(
    lat, lon, radius_km: float = LAND_RADIUS_KM, floor: float = 0.05, samples: int = 64, rng=0
) -> np.ndarray:
    """Weights ``floor + (1 - floor) * land_fraction`` in [floor, 1]: ``(n,)``.

    Multiply a probability map over positions by these to move mass off the open ocean.
    The ``floor`` (0..1) keeps photos from ships, ferries and coasts possible: the ocean is
    made unlikely, never impossible, so strong visual evidence can still win there.
    """
    if not (0.0 <= floor <= 1.0):
        raise PlaceprintError(f"floor must be in [0, 1], got {floor!r}")
    frac = land_fraction(lat, lon, radius_km, samples=samples, rng=rng)
    return floor + (1.0 - floor) * frac


def photo_density_prior(cell_counts, smoothing: float = 1.0) -> np.ndarray:
    """Prior over ``C`` cells from their photo counts: ``(counts + smoothing) / total``.

    ``cell_counts`` is ``(C,)`` non-negative (e.g. photos of a reference set per cell);
    additive ``smoothing`` (>= 0, photos per cell) keeps cells without photos possible.
    Returns ``(C,)`` float64 summing to 1.

    >>> photo_density_prior([3, 0, 1], smoothing=1.0).tolist()
    [0.5714285714285714, 0.14285714285714285, 0.2857142857142857]
    """
    counts = np.asarray(cell_counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0:
        raise PlaceprintError(f"cell_counts must be a non-empty (C,) array, got {counts.shape}")
    if not np.all(np.isfinite(counts)) or (counts < 0).any():
        raise PlaceprintError("cell_counts must be finite and >= 0")
    if not (np.isfinite(smoothing) and smoothing >= 0):
        raise PlaceprintError(f"smoothing must be >= 0, got {smoothing!r}")
    mass = counts + smoothing
    total = mass.sum()
    if total <= 0:
        raise PlaceprintError("all cell counts are 0 and smoothing is 0: no prior to make")
    return mass / total

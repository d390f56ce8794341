"""`placeprint index build` from geotagged photos and `placeprint locate`, end to end."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error
from conftest import run_cli as run
from PIL import Image

from placeprint.geo.distance import haversine_km
from placeprint.geo.exif import read_gps
from placeprint.locate import geo_path_for
from placeprint.serve.store import store_path_for


@pytest.fixture(scope="module")
def lund_index(lund_tiny_index):
    """``(root, lund)``: 26 Lund photos (03, 13, 23 held out) indexed with the tiny describer."""
    return lund_tiny_index.root, lund_tiny_index.photos


def test_index_build_reports_its_geolocator(lund_tiny_index):
    assert "geolocator of 26 geotagged images" in lund_tiny_index.build_output
    # 26 places share the codec's projection: the build says why it is over the budget
    assert "above the 8-byte budget because the codec's projection" in lund_tiny_index.build_output


def test_locate_held_out_lund_photos(lund_index):
    root, lund = lund_index
    queries = [lund / f"{n}.jpg" for n in ("03", "13", "23")]
    proc = run("locate", *queries, "--index", root / "lund.idx", "--json", "--out", root / "maps")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert len(report) == 3
    for q, entry in zip(queries, report, strict=True):
        truth = read_gps(q)
        best = entry["modes"][0]
        assert haversine_km(best["lat"], best["lon"], truth.lat, truth.lon) < 1.0
        assert "Lund" in best["name"] and "Sweden" in best["name"]
        assert 0 < best["probability"] <= 1 and best["radius_km"] >= 0
        png, geojson = entry["files"]["map"], entry["files"]["geojson"]
        with Image.open(png) as im:
            assert im.size[0] > 300
        gj = json.loads(open(geojson).read())
        assert gj["type"] == "FeatureCollection"
        point = next(f for f in gj["features"] if f["geometry"]["type"] == "Point")
        lon, lat = point["geometry"]["coordinates"]  # GeoJSON order: lon, lat
        assert abs(lat - best["lat"]) < 1e-6 and abs(lon - best["lon"]) < 1e-6


def test_locate_text_output_and_env_index(lund_index, tmp_path):
    root, lund = lund_index
    proc = run(
        "locate",
        lund / "13.jpg",
        "--no-map",
        "--top",
        "1",
        cwd=tmp_path,
        env={"PLACEPRINT_INDEX": str(root / "lund.idx")},
    )
    assert proc.returncode == 0, proc.stderr
    assert "Lund, Skane, Sweden" in proc.stdout and "13.jpg" in proc.stdout
    assert not (tmp_path / "locate").exists()


def test_build_from_manifest(lund_index, tmp_path):
    """A manifest with positions replaces EXIF: its positions are the ones kept."""
    root, lund = lund_index
    files = sorted(lund.glob("*.jpg"))[:20]
    fixes = [read_gps(f) for f in files]
    manifest = tmp_path / "m.csv"
    rows = ["path,lat,lon"]
    rows += [f"{f},{x.lat + 1.0:.8f},{x.lon:.8f}" for f, x in zip(files, fixes, strict=True)]
    manifest.write_text("\n".join(rows) + "\n")
    idx = tmp_path / "m.idx"
    proc = run("index", "build", manifest, "-o", idx, "--describer", "tiny", "--verify-top", "3",
               "-q")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    from placeprint.geo.geolocator import Geolocator

    geo = Geolocator.load(geo_path_for(idx))
    np.testing.assert_allclose(geo.lat_, [x.lat + 1.0 for x in fixes], atol=1e-7)
    assert geo.user_meta_["describer"]["name"] == "tiny"
    assert len(geo.user_meta_["paths"]) == 20
    # --verify-top is recorded (and sizes the answers' shortlist); locate verifies that
    # many neighbours, not the default
    assert geo.user_meta_["verify_top"] == geo.shortlist == 3
    assert geo.user_meta_["verify_upright"] is True  # upright RootSIFT, recorded
    out = run("locate", lund / "23.jpg", "--index", idx, "--no-map", "--json")
    assert json.loads(out.stdout)["verification"]["checked"] == 3
    bad = run("index", "build", manifest, "-o", tmp_path / "x.idx", "--verify-top", "0")
    assert_one_line_error(bad, "--verify-top must be 1-1000")
    assert not (tmp_path / "x.idx").exists()


def test_locate_errors(lund_index, tmp_path):
    root, lund = lund_index
    env = {"PLACEPRINT_INDEX": ""}
    assert_one_line_error(run("locate", lund / "01.jpg", env=env), "--index")
    assert_one_line_error(
        run("locate", lund / "01.jpg", "--index", tmp_path / "none.idx"), "no geolocator"
    )
    assert_one_line_error(
        run("locate", tmp_path / "missing.jpg", "--index", root / "lund.idx"), "not found"
    )
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    assert_one_line_error(run("locate", bad, "--index", root / "lund.idx"), "no image")
    assert_one_line_error(
        run("locate", lund / "01.jpg", "--index", root / "lund.idx", "--top", "0"), "--top"
    )


def test_match_reports_positions_of_geotagged_routes(lund_index, tmp_path):
    """A route index built from geotagged photos gives each matched place its lat/lon."""
    root, lund = lund_index
    query = tmp_path / "q"
    query.mkdir()
    for name in ("10", "11", "12", "14", "15"):
        shutil.copy(lund / f"{name}.jpg", query / f"{name}.jpg")
    proc = run("match", root / "lund.idx", query, "--json", "-k", "3")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert 1 <= len(data["answers"]) <= 3
    files = sorted(p for p in (root / "db").glob("*.jpg"))
    for answer in data["answers"]:
        fix = read_gps(files[answer["position"]])
        assert answer["lat_lon"] == pytest.approx([fix.lat, fix.lon], abs=1e-6)
        assert Path(answer["file"]).name == files[answer["position"]].name


def test_index_build_writes_the_place_store(lund_index):
    """INDEX.<generation>.places.sqlite: one row a route position with the photo's path,
    EXIF fix and time."""
    from placeprint.serve.store import PlaceStore

    root, _ = lund_index
    files = sorted((root / "db").glob("*.jpg"))
    store = PlaceStore.open(store_path_for(root / "lund.idx"))
    assert len(store) == len(files) == 26
    for i in (0, 7, 25):
        row, fix = store.get(i), read_gps(files[i])
        assert row["path"] == f"db/{files[i].name}"
        assert row["lat"] == pytest.approx(fix.lat, abs=1e-9)
        assert row["lon"] == pytest.approx(fix.lon, abs=1e-9)
        assert row["timestamp"] > 1.4e9 and store.image_file(i) == files[i].resolve()
    store.close()


def test_build_from_parquet_manifest(lund_index, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow not installed (make installs it)")
    import pyarrow as pa

    root, lund = lund_index
    files = sorted(lund.glob("*.jpg"))[:18]
    fixes = [read_gps(f) for f in files]
    table = pa.table(
        {
            "path": [str(f) for f in files],
            "latitude": [x.lat for x in fixes],
            "longitude": [x.lon for x in fixes],
        }
    )
    pq.write_table(table, tmp_path / "m.parquet")
    proc = run("index", "build", tmp_path / "m.parquet", "-o", tmp_path / "p.idx", "-q",
               "--verify-top", "3")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    from placeprint.geo.geolocator import Geolocator

    geo = Geolocator.load(geo_path_for(tmp_path / "p.idx"))
    np.testing.assert_allclose(geo.lat_, [x.lat for x in fixes], atol=1e-9)
    assert geo.user_meta_["describer"]["name"] == "cnn_netvlad"  # default for geotagged photos


def test_flat_or_tiny_photos_and_calibration_are_said(lund_index, tmp_path):
    root, _ = lund_index
    Image.new("RGB", (640, 480), (0, 200, 0)).save(tmp_path / "green.png")
    Image.new("RGB", (1, 1), (10, 20, 30)).save(tmp_path / "dot.png")
    proc = run(
        "locate",
        tmp_path / "green.png",
        tmp_path / "dot.png",
        "--index",
        root / "lund.idx",
        "--no-map",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert "one flat colour" in data[0]["warning"] and "1 x 1 pixels" in data[1]["warning"]
    # 26 photos: each located from the other 25 calibrates the probabilities
    assert "not calibrated" not in proc.stderr
    assert all(e["calibrated"] is True and e["calibration_photos"] == 26 for e in data)
    kinds = {"verified", "failed verification", "all"}  # which photos calibrated each answer
    assert all(e["calibrated_on"]["answers"] in kinds for e in data)
    assert all(m["probability"] <= 27 / 28 + 1e-6 for e in data for m in e["modes"])
    ok = run("locate", root / "db" / "05.jpg", "--index", root / "lund.idx", "--no-map", "--json")
    assert "warning" not in json.loads(ok.stdout)


def test_answers_are_verified_against_the_matched_photos(lund_index):
    """A held-out Lund photo shares a facade with its neighbours: verification pins it."""
    root, lund = lund_index
    photo = lund / "23.jpg"  # retrieval alone puts it ~110 m off (tiny describer)
    truth = read_gps(photo)
    args = ("locate", photo, "--index", root / "lund.idx", "--no-map", "--json")
    checked = json.loads(run(*args).stdout)
    plain = json.loads(run(*args, "--no-verify").stdout)
    best, base = checked["modes"][0], plain["modes"][0]
    assert best["verified"] and best["inliers"] >= 15
    assert checked["verification"]["verified"]
    assert checked["verification"]["checked"] == 10  # the fixture's --verify-top, of 25 neighbours
    assert "verification" not in plain and not base["verified"]
    err = haversine_km(best["lat"], best["lon"], truth.lat, truth.lon)
    err_plain = haversine_km(base["lat"], base["lon"], truth.lat, truth.lon)
    assert err < 0.03 and err < err_plain  # within 30 m, closer than without
    assert err <= best["radius_km"] or best["probability"] < 0.95
    # index build calibrated verified answers on its own photos, each against the others
    from placeprint.geo.geolocator import Geolocator
    from placeprint.locate import geo_path_for

    geo = Geolocator.load(geo_path_for(root / "lund.idx"))
    assert geo.verified_calibrated and len(geo.verified_level_table_) >= 10
    n = len(geo.verified_level_table_)
    assert best["probability"] <= (n + 1) / (n + 2) + 1e-6


def test_build_from_manifest_with_bad_rows_and_duplicates(lund_index, tmp_path):
    """Rows with a missing or out-of-range position and copies of a photo get one warning
    each; the rest of the collection is indexed and geolocated."""
    root, lund = lund_index
    files = sorted(lund.glob("*.jpg"))[:20]
    fixes = [read_gps(f) for f in files]
    copy = tmp_path / "copy_of_01.jpg"
    shutil.copy(files[0], copy)
    rows = ["path,lat,lon"]
    rows += [f"{f},{x.lat:.8f},{x.lon:.8f}" for f, x in zip(files, fixes, strict=True)]
    rows[3] = f"{files[2]},,{fixes[2].lon:.8f}"  # latitude missing
    rows[5] = f"{files[4]},{fixes[4].lat:.8f},999"  # longitude out of range
    rows.append(f"{copy},{fixes[0].lat:.8f},{fixes[0].lon:.8f}")  # the same bytes again
    rows.append(f"{files[6]},{fixes[6].lat:.8f},{fixes[6].lon:.8f}")  # the same file again
    manifest = tmp_path / "m.csv"
    manifest.write_text("\n".join(rows) + "\n")
    proc = run("index", "build", manifest, "-o", tmp_path / "m.idx", "--describer", "tiny", "-q",
               "--verify-top", "3")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 4, proc.stderr
    assert any(files[2].name in w and "missing latitude" in w for w in warnings)
    assert any(files[4].name in w and "out of range" in w for w in warnings)
    assert any("copy_of_01.jpg is a copy of" in w and files[0].name in w for w in warnings)
    assert sum(files[6].name in w and "is a copy of" in w for w in warnings) == 1
    assert "Traceback" not in proc.stderr
    from placeprint.geo.geolocator import Geolocator

    geo = Geolocator.load(geo_path_for(tmp_path / "m.idx"))
    kept = [f for i, f in enumerate(files) if i not in (2, 4)]
    assert [Path(p).name for p in geo.user_meta_["paths"]] == [f.name for f in kept]
    np.testing.assert_allclose(geo.lat_, [read_gps(f).lat for f in kept], atol=1e-7)


def test_indexes_built_before_verify_top_verify_10():
    """A geolocator that does not record --verify-top was calibrated checking 10 photos."""
    from types import SimpleNamespace

    from placeprint.locate import PhotoLocator

    loc = PhotoLocator.__new__(PhotoLocator)  # only its geolocator's settings are read
    loc.geo = SimpleNamespace(user_meta_={})
    assert loc.verify_top == 10
    loc.geo.user_meta_["verify_top"] = 7
    assert loc.verify_top == 7


def test_indexes_built_before_upright_features_verify_without_them(tmp_path):
    """A geolocator that does not record verify_upright was calibrated with
    rotation-invariant features; locate checks its answers with the same."""
    from types import SimpleNamespace

    from placeprint.locate import PhotoLocator

    loc = PhotoLocator.__new__(PhotoLocator)  # only its geolocator's settings are read
    loc.geo = SimpleNamespace(user_meta_={"paths": []})
    loc.path, loc._verifier = tmp_path / "old.geo", None
    assert loc.verifier.reranker.upright is False
    loc.geo.user_meta_["verify_upright"] = True
    loc._verifier = None
    assert loc.verifier.reranker.upright is True

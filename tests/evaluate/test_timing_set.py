"""The made photo set that times the photos benchmark at a city collection's scale."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from placeprint.errors import PlaceprintError
from placeprint.evaluate import timing_set as ts
from placeprint.geo.distance import haversine_km


def _rows(manifest):
    with open(manifest, newline="") as fh:
        return list(csv.DictReader(fh))


def test_set_is_made_as_described_and_the_same_for_a_seed(tmp_path):
    manifest = ts.make_timing_set(tmp_path / "a", 16, seed=3)
    rows = _rows(manifest)
    assert len(rows) == 16 and len({r["path"] for r in rows}) == 16
    for r in rows:
        with Image.open(manifest.parent / r["path"]) as im:
            assert im.size == ts.SIZE and im.format == "JPEG"
    # every photo lies within 5 sigma of the GPS noise of a scene, or in the 1 km box
    scenes = ts._scenes(np.random.default_rng(3))
    s_lat = np.array([s[1] for s in scenes])
    s_lon = np.array([s[2] for s in scenes])
    for r in rows:
        lat, lon = float(r["lat"]), float(r["lon"])
        nearest_m = 1000 * haversine_km(s_lat, s_lon, lat, lon).min()
        box_m = 1000 * haversine_km(s_lat[0], s_lon[0], lat, lon)
        assert nearest_m <= 5 * ts.GPS_NOISE_M or box_m <= 1000 * np.sqrt(2) + 1
    again = ts.make_timing_set(tmp_path / "b", 16, seed=3)
    assert _rows(again) == rows
    a = (manifest.parent / rows[0]["path"]).read_bytes()
    assert a == (again.parent / rows[0]["path"]).read_bytes()
    with pytest.raises(PlaceprintError, match="at least 8"):
        ts.make_timing_set(tmp_path / "c", 7)


def test_crops_of_a_scene_verify_and_drawn_scenes_do_not():
    import skimage.data

    from placeprint.verify import GeometricReranker

    rng = np.random.default_rng(0)
    scene = Image.fromarray(skimage.data.astronaut())
    r = GeometricReranker()
    a, b = (r.features(np.asarray(ts._crop(rng, scene))) for _ in range(2))
    c, d = (r.features(np.asarray(ts._drawn(rng))) for _ in range(2))
    assert r.verify(a, b).inliers >= r.min_inliers
    assert r.verify(c, d).inliers < r.min_inliers
    assert r.verify(a, c).inliers < r.min_inliers


def test_photos_benchmark_times_a_made_set(tmp_path):
    from placeprint.evaluate.photos_bench import photos_main

    with pytest.raises(PlaceprintError, match="at least 8"):
        photos_main(["--no-lund-berlin", "--timing-set", "3"])
    photos_main(
        ["--no-lund-berlin", "--timing-set", "24", "--describer", "tiny", "--json",
         str(tmp_path / "t.json")]
    )  # fmt: skip
    (block,) = json.loads((tmp_path / "t.json").read_text())["blocks"]
    assert block["name"].startswith("timing set of 24") and block["queries"] == 6
    p = block["estimators"]["placeprint"]
    groups = p["by_verification"]
    assert groups["verified"]["queries"] + groups["failed"]["queries"] == 6
    assert groups["verified"]["queries"] == round(6 * p["verified_share"])
    # the coverage of all answers is the two groups' coverage weighted by their size
    for key in ("in_50_region", "in_90_region"):
        parts = [g[key] * g["queries"] for g in groups.values() if g["queries"]]
        assert sum(parts) / 6 == pytest.approx(p[key])

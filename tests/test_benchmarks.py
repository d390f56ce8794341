"""Benchmarks and the demo run end to end on small inputs (correctness, not timing)."""

import copy
import json

import numpy as np
import pytest
from conftest import require_real_data

from placeprint.demo import run as run_demo
from placeprint.errors import PlaceprintError
from placeprint.evaluate.bench import headline_main, validate_main

REQUIRED = (
    "places",
    "bytes_per_place",
    "recall_at_1",
    "ops_per_query",
    "latency_ms_p50",
    "build_seconds",
    "peak_rss_mb",
    "baseline_ops_ratio",
    "command",
)


def test_demo_on_a_generated_route(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PLACEPRINT_DATA", str(tmp_path / "absent"))
    result = run_demo(20_000, tmp_path / "out", quiet=True)
    out = capsys.readouterr().out
    assert "GENERATED" in out and "recall plot" in out
    assert "\n\n\n" not in out  # no blank lines left by progress bars before the table
    assert "R at 100% P: the share of queries answered" in out
    assert result["places"] == 22_500 and result["route"] == "generated route"
    assert (tmp_path / "out" / "demo_generated_recall_vs_L.png").stat().st_size > 1000
    assert json.loads((tmp_path / "out" / "demo_generated.json").read_text())["places"] == 22_500
    # the generated route is easy: long sequences must be found
    assert result["recall_at_1"]["100"] >= 0.9


def _validate_small(tmp_path, route=None):
    """The validation tool on a small map, two folds, one codec and two matcher budgets."""
    from placeprint.evaluate.validate import validate

    return validate(
        route,
        n_distractors=20_000,
        folds=2,
        stride=10,
        codec_grid={"pca_dims": (128,), "regularisation": (0.1,)},
        matcher_grid={"entry_budget": (6000, 10000)},
        matcher_distractors=30_000,
    )


def test_validation_reads_no_test_frame(nordland_route):
    """Scrambling every winter frame after 20000 changes nothing validate.py chooses."""
    route = nordland_route
    first = _validate_small(None, route)
    scrambled = copy.copy(route)
    queries = route.queries.copy()
    test = route.frames > 20000
    queries[test] = np.random.default_rng(0).permutation(queries[test])[::-1]
    scrambled.queries = queries
    second = _validate_small(None, scrambled)
    assert first["codec"] == second["codec"] and first["matcher"] == second["matcher"]
    assert first["candidates"] == second["candidates"]
    # and the folds' scores are real measurements: recall well above chance
    assert min(first["validation_recall_at_1"].values()) > 0.3


def test_headline_on_real_data_small(tmp_path):
    require_real_data("nordland")
    settings = tmp_path / "v.json"
    validate_main(
        [
            "--distractors",
            "20000",
            "--matcher-distractors",
            "30000",
            "--folds",
            "2",
            "--quick",
            "--stride",
            "10",
            "--json",
            str(settings),
            "--quiet",
        ]
    )
    out = headline_main(
        [
            "--distractors",
            "30000",
            "--settings",
            str(settings),
            "--stride",
            "10",
            "--lengths",
            "25,50,100",
            "--no-curve",
            "--peer-distractors",
            "20000",
            "--json",
            str(tmp_path / "h.json"),
            "--quiet",
        ]
    )
    saved = json.loads((tmp_path / "h.json").read_text())
    for key in REQUIRED:
        assert key in saved
    assert saved["places"] == 32_500
    assert set(saved["recall_at_1"]) == {"25", "50", "100"}
    assert saved["validation_recall_at_1"] and saved["settings_source"] == str(settings)
    # recall floor on the test frames (measured 0.55 / 0.72 / 0.86 at this size)
    r1 = saved["recall_at_1"]
    assert r1["25"] >= 0.35 and r1["50"] >= 0.55 and r1["100"] >= 0.7
    # accounting: the counted parts are the index file, projection included
    parts = out["details"]["bytes"]
    assert sum(parts.values()) == saved["index_file_bytes"]
    assert abs(saved["index_file_bytes"] / 32_500 - saved["bytes_per_place"]) < 1e-9
    # the peer table: every peer and the exhaustive ceiling on the same test windows
    peers = saved["peers"]
    assert peers["places"] == 22_500
    assert set(peers["peers"]) == {
        "placeprint",
        "ivfpq_voting",
        "binary_hash_rescore",
        "pq_rescore",
        "exhaustive_own_codes",
    }
    for row in peers["peers"].values():
        assert row["bytes_per_place"] > 7 and 0 <= row["100"]["r1"] <= 1
        assert row["100"]["n"] == peers["peers"]["placeprint"]["100"]["n"] > 0
    # exhaustive search on the same codes is the ceiling of the index on them
    assert (
        peers["peers"]["exhaustive_own_codes"]["100"]["r1"]
        >= peers["peers"]["placeprint"]["100"]["r1"] - 0.1
    )
    assert parts["codec_state"] > 4096 * 56 * 2  # the raw 4096-d -> 56-d projection
    # every counted step adds up to the reported operations
    for L in ("25", "50", "100"):
        assert sum(saved["ops_breakdown"][L].values()) == pytest.approx(saved["ops_per_query"][L])
    r = out["details"]["lengths"][-1]
    assert np.isclose(r["baseline_ops_ratio"], 100 * 32_500 / r["ops_mean"])
    assert np.isclose(r["baseline_ops_ratio_x_velocities"], 5 * r["baseline_ops_ratio"])
    # the distractors are as confusable as wrong real places in the tail
    radii = saved["distractor_realism"]["radii"]
    for bits in ("12", "14"):
        assert 1 / 1.5 <= radii[bits]["ratio"] <= 1.5


def test_geolocation_benchmark_small(tmp_path):
    """Every estimator reports accuracy at each threshold, median km and calibration."""
    require_real_data("world")
    from placeprint.evaluate.geolocation_bench import geolocation_main

    out = geolocation_main(
        [
            "--no-real",
            "--database",
            "600",
            "--albums",
            "6",
            "--album-size",
            "3",
            "--signals",
            "3",
            "--calibration-rows",
            "20",
            "--json",
            str(tmp_path / "g.json"),
            "--plots",
            str(tmp_path),
            "--quiet",
        ]
    )
    saved = json.loads((tmp_path / "g.json").read_text())
    assert saved["partition"]["cells"] == out["partition"]["cells"] > 100
    assert sum(saved["partition"]["cells_per_level"].values()) == out["partition"]["cells"]
    (block,) = saved["datasets"].values()
    assert block["queries"] == 18
    for name in ("density_mode", "nearest_neighbour", "knn", "classifier", "combined", "album"):
        r = block["estimators"][name]
        assert set(r["accuracy"]) == {"street", "city", "region", "country", "continent"}
        assert r["median_km"] >= 0 and r["n"] == 18
        acc = list(r["accuracy"].values())
        assert acc == sorted(acc)  # a looser threshold never holds fewer queries
    for name in ("knn", "combined", "album"):
        cal = block["estimators"][name]["calibration"]
        assert 0 <= cal["0.5"] <= cal["0.9"] <= 1
    assert (tmp_path / "geolocation.png").stat().st_size > 1000
    assert (tmp_path / "s2_cells.png").stat().st_size > 1000


def test_demo_locates_held_out_street_photos(tmp_path):
    """The demo's second part: held-out Lund and Berlin photos land within 1 km."""
    require_real_data("geotagged")
    from placeprint.demo import locate_demo

    rows = locate_demo(tmp_path)
    assert [r["name"].split(",")[0] for r in rows] == ["Lund", "Berlin"]
    assert all(r["error_km"] < 1.0 for r in rows)
    for stem in ("13", "02"):
        for suffix in (".png", "_overview.png", ".geojson"):
            assert (tmp_path / f"{stem}{suffix}").stat().st_size > 500


def test_photos_benchmark_on_a_manifest(tmp_path):
    """Every 4th Lund photo located against the rest, scored against an independent count."""
    lund = require_real_data("geotagged", "lund")
    from placeprint.evaluate.photos_bench import photos_main
    from placeprint.geo.distance import haversine_km
    from placeprint.geo.exif import read_gps

    files = sorted(f.resolve() for f in lund.glob("*.jpg"))
    fixes = [read_gps(f) for f in files]
    manifest = tmp_path / "lund.csv"
    rows = [f"{f},{g.lat!r},{g.lon!r}" for f, g in zip(files, fixes, strict=True)]
    manifest.write_text("path,lat,lon\n" + "\n".join(rows) + "\n")
    with pytest.raises(PlaceprintError, match="nothing to measure"):
        photos_main(["--no-lund-berlin"])
    with pytest.raises(PlaceprintError, match="not found"):
        photos_main(["--no-lund-berlin", "--photos", str(tmp_path / "missing")])
    out = photos_main(
        [
            "--no-lund-berlin",
            "--photos",
            str(manifest),
            "--describer",
            "tiny",
            "--json",
            str(tmp_path / "p.json"),
            "--plots",
            str(tmp_path),
        ]
    )
    (block,) = json.loads((tmp_path / "p.json").read_text())["blocks"]
    queries = files[::4]
    assert (
        block["queries"]
        == len(queries)
        == len(out["blocks"][0]["estimators"]["placeprint"]["errors_m"])
    )
    centre = block["estimators"]["collection_centre"]
    db = [g for i, g in enumerate(fixes) if i % 4]
    c_lat = np.mean([g.lat for g in db])  # a 180 m walk: the sphere's centre is the plain mean
    c_lon = np.mean([g.lon for g in db])
    expected = [1000 * haversine_km(c_lat, c_lon, g.lat, g.lon) for g in fixes[::4]]
    np.testing.assert_allclose(centre["errors_m"], expected, atol=0.5)
    for r in block["estimators"].values():
        shares = [r[f"within_{m}m"] for m in (25, 100, 250, 1000)]
        assert shares == sorted(shares) and r["median_m"] == pytest.approx(np.median(r["errors_m"]))
    p = block["estimators"]["placeprint"]
    assert 0 <= p["in_50_region"] <= p["in_90_region"] <= 1 and 0 < p["stated_probability"] < 1
    assert p["median_m"] < 100  # a street walk: every query has neighbours metres away
    # an answer checks at most every database photo (21 here, fewer than --verify-top 100)
    assert 1 <= p["checked_mean"] <= len(db) and 0 <= p["verified_share"] <= 1
    assert (tmp_path / "photos_error_cdf.png").stat().st_size > 1000
    command = json.loads((tmp_path / "p.json").read_text())["command"]
    assert "--json <outside>/p.json" in command and str(tmp_path) not in command


def test_photo_set_leaves_out_bad_rows_and_unreadable_photos_with_a_warning(tmp_path, capsys):
    from PIL import Image

    from placeprint.evaluate.photos_bench import read_photo_set

    rng = np.random.default_rng(0)
    good = []
    for i in range(9):
        path = tmp_path / f"{i:02d}.png"
        Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(path)
        good.append((path, 55.70 + i * 1e-4, 13.19))
    (tmp_path / "broken.jpg").write_text("not an image")
    lines = [f"{p.name},{a},{b}" for p, a, b in reversed(good)]  # read back in path order
    lines += ["broken.jpg,55.7,13.19", "nopos.png,,", "far.png,95.0,13.19"]
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,lat,lon\n" + "\n".join(lines) + "\n")
    ps = read_photo_set(manifest)
    assert ps.paths == [p for p, _, _ in good]
    np.testing.assert_allclose(ps.lat, [a for _, a, _ in good])
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(line.startswith("warning: m.csv: skipped ") for line in err)
    assert any("broken.jpg" in line for line in err)
    # too few readable photos to split is one clear error
    manifest.write_text("path,lat,lon\n" + "\n".join(lines[:3]) + "\n")
    with pytest.raises(PlaceprintError, match="too few to split"):
        read_photo_set(manifest)


def test_retrieval_benchmark_options_fail_before_work():
    from placeprint.evaluate.retrieval_bench import retrieval_main

    with pytest.raises(PlaceprintError, match="nothing to measure"):
        retrieval_main(["--no-nordland", "--no-lund-berlin"])
    with pytest.raises(PlaceprintError, match="unknown describer"):
        retrieval_main(["--second", "bogus"])
    with pytest.raises(PlaceprintError, match="--radius"):
        retrieval_main(["--radius", "0"])


def _absolute_paths(value) -> list[str]:
    """Every string in a JSON value (command tokens one by one) that is an absolute path."""
    if isinstance(value, dict):
        return [p for v in value.values() for p in _absolute_paths(v)]
    if isinstance(value, list):
        return [p for v in value for p in _absolute_paths(v)]
    if isinstance(value, str):
        return [t for t in value.split() if t.startswith(("/", "--json=/", "--plots=/"))]
    return []


def test_committed_results_hold_no_machine_paths():
    from pathlib import Path

    results = sorted((Path(__file__).parent.parent / "benchmarks" / "results").glob("*.json"))
    assert results
    for path in results:
        data = json.loads(path.read_text())
        found = _absolute_paths(
            {k: data.get(k) for k in ("command", "plots")}
            | {"reused": [f.get("reused_from") for f in data.get("families", []) or []]}
        )
        assert found == [], f"{path.name}: {found}"


def test_finish_writes_portable_figure_paths(tmp_path, monkeypatch, capsys):
    from placeprint.evaluate.benchargs import finish

    monkeypatch.chdir(tmp_path)
    out = {"command": "x", "plots": [str(tmp_path / "figs" / "a.png"), "/elsewhere/b.png"]}
    finish(out, tmp_path / "r.json")
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["plots"] == ["figs/a.png", "<outside>/b.png"]
    assert out["plots"][1] == "/elsewhere/b.png"  # the caller's own paths are kept
    assert "wrote /elsewhere/b.png" in capsys.readouterr().out


def test_pair_verification_counts_every_pair_once():
    """Pairs of four Lund photos, counted by distance, against a direct check of each."""
    lund = require_real_data("geotagged", "lund")
    from placeprint.evaluate.photos_bench import UNRELATED, PhotoSet, pair_verification
    from placeprint.geo.distance import haversine_km
    from placeprint.geo.exif import read_gps
    from placeprint.verify import GeometricReranker

    files = sorted(lund.glob("*.jpg"))[10:14]
    fixes = [read_gps(f) for f in files]
    ps = PhotoSet("four", files, np.array([g.lat for g in fixes]), np.array([g.lon for g in fixes]))
    out = pair_verification(ps)
    for name, upright in (("upright", True), ("rotation-invariant", False)):
        r = GeometricReranker(upright=upright)
        feats = [r.features(f) for f in files]
        near = ok = 0
        for i in range(4):
            for j in range(i + 1, 4):
                d = 1000 * haversine_km(ps.lat[i], ps.lon[i], ps.lat[j], ps.lon[j])
                near += d < 30
                ok += d < 30 and r.verify(feats[i], feats[j]).inliers >= 15
        bins = out[name]["by_distance"]
        assert sum(b["pairs"] for b in bins.values()) == 6  # a 180 m walk: every pair binned
        assert bins["0-30 m"] == {"pairs": near, "verified": ok}
        assert out[name]["unrelated"] == {"pairs": 4 * len(UNRELATED), "verified": 0}
        assert out[name]["view_offsets"]["pairs"] == sum(b["verified"] for b in bins.values())

"""A bounded load test on loopback: concurrent uploads, no errors, memory stable."""

import json

from conftest import require_real_data

from placeprint.evaluate.serve_bench import main


def test_concurrent_locate_requests_all_succeed(tmp_path):
    require_real_data("geotagged", "lund")
    out = main(
        ["--requests", "32", "--clients", "4", "--warmup", "4", "--json", str(tmp_path / "s.json")]
    )
    saved = json.loads((tmp_path / "s.json").read_text())
    assert saved["requests"] == out["requests"] == 32
    assert out["errors"] == 0 and out["server_alive_after"]
    lat = out["latency_ms"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["max"]
    assert out["rss_growth_mb"] is not None and out["rss_growth_mb"] < 100  # no leak per request

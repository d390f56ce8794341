"""A bounded load test on loopback: concurrent uploads, no errors, memory stable."""

import json

import pytest

from placeprint.evaluate.serve_bench import HELD_OUT, main


@pytest.fixture(scope="module")
def lund(lund_tiny_index):
    """The session's Lund index (the benchmark's own build: tiny describer, the same 26
    photos) and its held-out photos."""
    queries = [lund_tiny_index.photos / f"{name}.jpg" for name in HELD_OUT]
    return ["--index", str(lund_tiny_index.index), "--photos", *map(str, queries)]


def test_concurrent_locate_requests_all_succeed(tmp_path, lund):
    out = main(
        ["--requests", "16", "--clients", "4", "--warmup", "2", "--json", str(tmp_path / "s.json"),
         *lund]
    )  # fmt: skip
    saved = json.loads((tmp_path / "s.json").read_text())
    assert saved["requests"] == out["requests"] == 16
    assert out["errors"] == 0 and out["server_alive_after"]
    lat = out["latency_ms"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["max"]
    assert out["rss_growth_mb"] is not None and out["rss_growth_mb"] < 100  # no leak per request


def test_soak_of_good_and_hostile_requests(tmp_path, lund):
    """8 clients mixing good and hostile requests: no good one fails, every hostile one is
    a one-sentence 4xx, memory stays under 2 GiB and /health answers throughout."""
    out = main(["--soak", "8", "--clients", "8", "--json", str(tmp_path / "soak.json"), *lund])
    assert out["good_failures"] == 0 and out["hostile_not_4xx"] == 0
    assert out["health"]["failed"] == 0 and out["health"]["asked"] > 10
    assert out["rss_peak_mb"] < 2048 and out["server_alive_after"]
    statuses = out["outcomes"]
    assert any(k.startswith("16 x 49 MP frames -> 413") for k in statuses)  # per-request budget
    assert any(k.startswith("nested json -> 400") for k in statuses)
    assert any(k.startswith("49 MP png -> 200") for k in statuses)  # heavy, but answered

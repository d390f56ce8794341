"""The distributed benchmark runs end to end on a few frames and checks its own codes."""

import pytest
from conftest import require_real_data

from placeprint.errors import PlaceprintError
from placeprint.evaluate.distributed_bench import distributed_main

pytest.importorskip("distributed")


def test_small_run(tmp_path):
    require_real_data("nordland")
    out = distributed_main(
        ["--images", "150", "--describer", "seqslam", "--workers", "1", "--shard-size", "50",
         "--query-shards", "2", "--shard-places", "20000", "--query-length", "50",
         "--settings", "defaults",
         "--quiet", "--json", str(tmp_path / "d.json")]
    )  # fmt: skip
    plain, one = out["rows"]
    assert one["identical_codes"] is True and plain["path"] == "one process"
    assert out["projection"][0]["places"] == 10_000_000
    assert out["projection"][2]["index_gb_at_8_bytes"] == pytest.approx(8.0)
    assert (tmp_path / "d.json").is_file()
    serving = out["serving"]
    assert [r["places"] for r in serving["rows"]] == [20_000, 40_000]
    assert serving["queries"] > 5 and serving["shards_one_machine_serves"] >= 1
    assert all(0 < r["ms_p50"] <= r["ms_p95"] and 0 <= r["r1"] <= 1 for r in serving["rows"])


def test_bad_options():
    with pytest.raises(PlaceprintError, match="workers"):
        distributed_main(["--workers", "two"])
    with pytest.raises(PlaceprintError, match="describer"):
        distributed_main(["--describer", "nope"])
    with pytest.raises(PlaceprintError, match="threads"):
        distributed_main(["--threads", "0"])
    with pytest.raises(PlaceprintError, match="shard-places"):
        distributed_main(["--shard-places", "100"])

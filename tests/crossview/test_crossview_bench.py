"""The cross-view benchmark end to end on a tiny run: rows, per-row epochs, JSON keys."""

import json

import pytest

pytest.importorskip("torch")

from placeprint.errors import PlaceprintError  # noqa: E402
from placeprint.evaluate.crossview_bench import crossview_main  # noqa: E402


def test_tiny_crossview_benchmark(tmp_path):
    from placeprint.crossview.pairs import make_pairs

    rows = "DSM, 90-degree training"
    # the benchmark caches pair sets in --work and reads validation pairs from a set of
    # 300 (its first --val); a small set under that name keeps this run short
    (tmp_path / "work").mkdir()
    make_pairs(12, "val", 0).save(tmp_path / "work" / "val_300_seed0.npz")
    out = crossview_main(
        [
            "--work",
            str(tmp_path / "work"),
            "--train",
            "24",
            "--val",
            "12",
            "--test",
            "12",
            "--epochs",
            "1",
            "--rows",
            rows,
            "--json",
            str(tmp_path / "cv.json"),
            "--quiet",
        ]
    )
    saved = json.loads((tmp_path / "cv.json").read_text())
    for key in ("best_model", "r1_fov90", "heading_error_median_deg_fov90", "ablations"):
        assert key in saved
    by_name = {row["name"]: row for row in out["ablations"]}
    # the 90-degree DSM row trains epoch_scale (6) times --epochs
    assert len(by_name["DSM, 90-degree training"]["val_r1_by_epoch"]) == 6
    assert by_name["DSM, 90-degree training"]["training"]["epochs"] == 6
    assert out["r1_fov90"] == by_name["DSM, 90-degree training"]["test"]["90"]["r1"]
    # 12 candidate tiles: recall is a share of them, heading error in degrees
    dsm = by_name["DSM, 90-degree training"]["test"]["90"]
    assert 0.0 <= dsm["r1"] <= dsm["r5"] <= 1.0
    assert 0.0 <= dsm["heading_error_median_deg"] <= 180.0
    with pytest.raises(PlaceprintError, match="unknown row"):
        crossview_main(["--rows", "no such row", "--work", str(tmp_path / "work")])

"""The view synthesis benchmark: its query poses, rankings and a small end-to-end run."""

import json

import numpy as np
import pytest

from placeprint.errors import PlaceprintError
from placeprint.evaluate.viewsynth_bench import (
    _recall,
    hamming_rank,
    street_queries,
    viewsynth_main,
)
from placeprint.evaluate.viewsynth_ceiling import CEILINGS


def test_street_queries_lie_off_the_path_between_panoramas():
    # two streets: x = 100 (north-south) and y = 50 (east-west), panoramas every 10 m
    ns = np.column_stack([np.full(5, 100.0), np.arange(5) * 10.0 + 20])
    ew = np.column_stack([np.arange(4) * 10.0 + 30, np.full(4, 50.0)])
    points = np.vstack([ns, ew])
    poses = street_queries(points, 400, (2.0, 5.0), np.random.default_rng(1))
    on_ns = np.abs(poses[:, 0] - 100.0) <= 5 + 1e-9
    on_ew = np.abs(poses[:, 1] - 50.0) <= 5 + 1e-9
    assert (on_ns | on_ew).all()
    off = np.where(on_ns, np.abs(poses[:, 0] - 100.0), np.abs(poses[:, 1] - 50.0))
    assert off.min() >= 2 - 1e-9 and off.max() <= 5 + 1e-9
    # never between the last point of one street and the first of the next
    assert (poses[on_ns, 1] >= 20 - 1e-9).all() and (poses[on_ns, 1] <= 60 + 1e-9).all()
    assert (poses[on_ew & ~on_ns, 0] <= 60 + 1e-9).all()
    assert ((poses[:, 2] >= 0) & (poses[:, 2] < 360)).all()


def test_hamming_rank_matches_brute_force():
    rng = np.random.default_rng(0)
    db = rng.integers(0, 256, size=(50, 8), dtype=np.uint8)
    q = rng.integers(0, 256, size=(7, 8), dtype=np.uint8)
    got = hamming_rank(db, q, 5)
    for i in range(7):
        dist = [sum(bin(int(a) ^ int(b)).count("1") for a, b in zip(q[i], row, strict=True))
                for row in db]  # fmt: skip
        expect = np.argsort(dist, kind="stable")[:5]
        np.testing.assert_array_equal(got[i], expect)


def test_recall_by_hand():
    ranked = np.array([[0, 1], [2, 0], [1, 1]])
    correct = np.array([[True, False, False], [True, False, False], [False, False, True]])
    assert _recall(ranked, correct, 1) == pytest.approx(1 / 3)
    assert _recall(ranked, correct, 2) == pytest.approx(2 / 3)


def test_small_run_end_to_end(tmp_path):
    out = viewsynth_main(
        [
            "--area", "val", "--streets", "1", "--spacing", "30", "--width", "256",
            "--queries", "6", "--headings", "8", "--grid-radius", "1", "--ceiling",
            "--work", str(tmp_path / "work"),
            "--describers", "densevlad,cnn_gem", "--describer-options",
            '{"densevlad": {"k": 8, "whiten_dims": 64, "fit_images": 120, "vocab_images": 20, '
            '"min_side": 48, "max_side": 64, "sizes": [4.0]}, "cnn_gem": {"whiten_dims": 64, '
            '"layer": 6, "image_size": [64, 48], "grid": [4, 3]}}',
            "--json", str(tmp_path / "v.json"), "--plots", str(tmp_path / "fig"), "--quiet",
        ]
    )  # fmt: skip
    saved = json.loads((tmp_path / "v.json").read_text())
    assert saved["r1_gain_night_offpath"] == pytest.approx(out["r1_gain_night_offpath"])
    assert out["describer"] == "densevlad" and list(out["by_describer"]) == ["densevlad", "cnn_gem"]
    assert [(r["describer"], r["database"]) for r in out["rows"]] == [
        (d, db) for d in ("densevlad", "cnn_gem") for db in ("cut-outs", "+ synthesized")
    ]
    base, synth = out["rows"][:2]
    assert synth["views"] > base["views"] == base["places"] * 8
    for name, gain in out["by_describer"].items():  # each describer's gain from its own rows
        b, s = (r["lighting"]["night"]["r1"] for r in out["rows"] if r["describer"] == name)
        assert gain["r1_gain_night_offpath"] == pytest.approx(s - b)
        for lighting in ("night", "day"):  # an interval around the measured gain
            low, high = gain[f"r1_gain_{lighting}_offpath_ci95"]
            assert -1 <= low <= gain[f"r1_gain_{lighting}_offpath"] <= high <= 1
    # a network's weights count in what a query needs, whitening alone would be far less
    cnn = out["rows"][2]["bytes_per_place"]["describer_state"] * out["rows"][2]["places"]
    assert cnn > 100_000
    for row in out["rows"]:
        for s in row["lighting"].values():
            assert s["r1"] <= s["r5"] and s["recall_at"][0] == s["r1"]
    assert out["query_time_ratio"] > 0
    ceiling = out["ceiling_r1"]  # the first describer, cut-outs plus one view per query
    assert ceiling["describer"] == "densevlad"
    assert set(ceiling) - {"describer"} == set(CEILINGS)
    assert all(0 <= r[light] <= 1 for n, r in ceiling.items() if n != "describer"
               for light in ("night", "day"))  # fmt: skip
    assert saved["ceiling_r1"] == ceiling
    assert all((tmp_path / "fig" / n).stat().st_size > 1000 for n in
               ("viewsynth_recall.png", "viewsynth_queries.png"))  # fmt: skip


def test_bad_options_fail_before_work():
    with pytest.raises(PlaceprintError, match="--lateral"):
        viewsynth_main(["--lateral", "5"])
    with pytest.raises(PlaceprintError, match="--area"):
        viewsynth_main(["--area", "moon"])
    with pytest.raises(PlaceprintError, match="--describers"):
        viewsynth_main(["--describers", "densevlad,nope"])
    with pytest.raises(PlaceprintError, match="--describer-options"):
        viewsynth_main(["--describers", "densevlad", "--describer-options", '{"k": 8}'])
    with pytest.raises(PlaceprintError, match="cnn_gem"):
        viewsynth_main(["--describer-options", '{"cnn_gem": {"layer": 99}}'])

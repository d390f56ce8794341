"""Pair sets: deterministic, disjoint areas, saved and loaded whole; the `crossview`
commands."""

import json

import numpy as np
import pytest
from conftest import assert_one_line_error
from conftest import run_cli as run

from placeprint.crossview.pairs import PairSet, PairSettings, area_seed, make_pairs
from placeprint.crossview.world import WorldConfig
from placeprint.errors import PlaceprintError

CONFIG = WorldConfig(size_m=128.0)
SETTINGS = PairSettings(tile_px=64, tile_res_m=0.5, pano_width=64)


@pytest.fixture(scope="module")
def pairs():
    return make_pairs(6, "train", 0, CONFIG, SETTINGS)


def test_pairs_are_deterministic_and_areas_differ(pairs):
    again = make_pairs(6, "train", 0, CONFIG, SETTINGS)
    np.testing.assert_array_equal(pairs.aerial, again.aerial)
    np.testing.assert_array_equal(pairs.ground, again.ground)
    test = make_pairs(6, "test", 0, CONFIG, SETTINGS)
    assert not set(pairs.meta["city_seeds"]) & set(test.meta["city_seeds"])
    assert not np.array_equal(pairs.aerial, test.aerial)
    assert len({area_seed(0, a) for a in ("train", "val", "test")}) == 3
    assert pairs.aerial.shape == (6, 64, 64, 3) and pairs.ground.shape == (6, 32, 64, 3)
    with pytest.raises(PlaceprintError, match="area"):
        area_seed(0, "elsewhere")


def test_save_load_round_trip_and_foreign_files(pairs, tmp_path):
    path = pairs.save(tmp_path / "p.npz")
    back = PairSet.load(path)
    np.testing.assert_array_equal(back.ground, pairs.ground)
    np.testing.assert_allclose(back.xy, pairs.xy)
    assert back.meta["settings"]["pano_width"] == 64 and list(back.seasons) == list(pairs.seasons)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(3))
    cut = tmp_path / "cut.npz"
    cut.write_bytes(path.read_bytes()[:1000])
    for bad in (foreign, cut, tmp_path / "missing.npz"):
        with pytest.raises(PlaceprintError):
            PairSet.load(bad)


def test_pairs_are_spaced_and_span_cities():
    settings = PairSettings(tile_px=64, pano_width=64, spacing_m=10.0, per_city=5)
    p = make_pairs(12, "val", 1, CONFIG, settings)
    assert p.meta["cities"] == [0] * 5 + [1] * 5 + [2] * 2 and len(p.meta["city_seeds"]) == 3
    for c in range(3):
        pts = p.xy[np.array(p.meta["cities"]) == c]
        d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1)) + np.eye(len(pts)) * 99
        assert d.min() >= 10.0 - 0.75  # a cell's jitter either way


def test_a_tile_larger_than_the_city_is_refused():
    with pytest.raises(PlaceprintError, match="does not fit"):
        make_pairs(1, "train", 0, WorldConfig(size_m=64.0), PairSettings(tile_px=128))


def test_crossview_world_command(tmp_path):
    out, sheet = tmp_path / "p.npz", tmp_path / "s.png"
    args = ["--size-m", "128", "--tile-px", "64", "--pano-width", "64", "--count", "3"]
    proc = run("crossview", "world", "-o", out, *args, "--samples", sheet, "--area", "val")
    assert proc.returncode == 0, proc.stderr
    assert len(PairSet.load(out)) == 3 and sheet.stat().st_size > 1000
    assert PairSet.load(out).meta["area"] == "val"
    assert_one_line_error(run("crossview", "world", "-o", out, "--area", "moon"), "--area")
    assert_one_line_error(run("crossview", "world", "-o", tmp_path / "p.csv"), ".npz")
    assert_one_line_error(
        run("crossview", "world", "-o", tmp_path / "q.npz", "--size-m", "-5"), "size_m"
    )
    assert_one_line_error(
        run("crossview", "world", "-o", tmp_path / "r.npz", "--pano-width", "33"), "pano_width"
    )
    assert not (tmp_path / "q.npz").exists() and not (tmp_path / "r.npz").exists()


def test_crossview_train_and_eval_commands(tmp_path):
    pytest.importorskip("torch", reason="torch not installed (make installs it)")
    common = ["--size-m", "128", "--tile-px", "32", "--pano-width", "64", "-q"]
    for area, n in (("train", "8"), ("val", "30")):
        proc = run(
            "crossview",
            "world",
            "-o",
            tmp_path / f"{area}.npz",
            "--area",
            area,
            "--count",
            n,
            *common,
        )
        assert proc.returncode == 0, proc.stderr
    model, curves = tmp_path / "m.pt", tmp_path / "c.png"
    args = [tmp_path / "train.npz", tmp_path / "val.npz", "-o", model]
    proc = run("crossview", "train", *args, "--epochs", "2", "--batch", "4", "--curves", curves)
    assert proc.returncode == 0, proc.stderr
    assert "epoch 2/2" in proc.stderr and model.exists() and curves.stat().st_size > 1000
    proc = run("crossview", "eval", model, tmp_path / "val.npz", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["tiles"] == 30 and 0 <= out["r1"] <= out["r5"] <= 1
    assert_one_line_error(run("crossview", "train", *args[:2], "-o", tmp_path / "m.txt"), ".pt")
    assert_one_line_error(
        run("crossview", "eval", tmp_path / "val.npz", tmp_path / "val.npz"), "checkpoint"
    )
    # locate two panoramas of the validation area among its tiles, then through an index
    from PIL import Image

    val = PairSet.load(tmp_path / "val.npz")
    views = []
    for i in (0, 3):
        views.append(tmp_path / f"view{i}.png")
        Image.fromarray(val.ground[i]).save(views[-1])
    proc = run(
        "crossview",
        "locate",
        *views,
        "--model",
        model,
        "--aerial",
        tmp_path / "val.npz",
        "--top",
        "6",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert len(found) == 2 and all(len(e["tiles"]) == 6 for e in found)
    # distinct tiles, scores best first, positions those of the pair set
    tiles = found[0]["tiles"]
    assert len({t["tile"] for t in tiles}) == 6
    assert [t["score"] for t in tiles] == sorted((t["score"] for t in tiles), reverse=True)
    t0 = tiles[0]
    assert [t0["x_m"], t0["y_m"]] == pytest.approx(val.xy[int(t0["tile"])].tolist())
    npy = tmp_path / "aerial.npy"
    proc = run("crossview", "describe", model, tmp_path / "val.npz", "-o", npy)
    assert proc.returncode == 0, proc.stderr
    assert np.load(npy).shape[0] == 30
    proc = run("index", "build", npy, "-o", tmp_path / "tiles.ppidx", "-q")
    assert proc.returncode == 0, proc.stderr
    proc = run(
        "crossview",
        "locate",
        views[0],
        "--model",
        model,
        "--aerial",
        tmp_path / "tiles.ppidx",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    e = json.loads(proc.stdout)[0]
    assert e["ops"] > 0 and e["bytes_per_place"] > 0 and len(e["tiles"]) >= 1
    assert_one_line_error(
        run(
            "crossview",
            "locate",
            views[0],
            "--model",
            model,
            "--aerial",
            tmp_path / "val.npz",
            "--fov",
            "90",
        ),
        "DSM",
    )
    Image.fromarray(val.ground[0][:, :40]).save(tmp_path / "narrow.png")
    assert_one_line_error(
        run(
            "crossview",
            "locate",
            tmp_path / "narrow.png",
            "--model",
            model,
            "--aerial",
            tmp_path / "val.npz",
        ),
        "2:1",
    )

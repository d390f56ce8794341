"""placeprint crossview panoramas -> placeprint synth -> placeprint index build."""

import csv
import json

import numpy as np
import pytest
from conftest import assert_one_line_error, run_cli

from placeprint.geo.distance import haversine_km


@pytest.fixture(scope="module")
def panoramas(tmp_path_factory):
    root = tmp_path_factory.mktemp("panos")
    proc = run_cli(
        "crossview", "panoramas", "-o", root / "p", "--streets", "1", "--spacing", "200",
        "--width", "128", "-q",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return root / "p"


def _rows(folder):
    with open(folder / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_panoramas_have_depth_and_positions(panoramas):
    rows = _rows(panoramas)
    assert len(rows) >= 3
    for r in rows:
        assert (panoramas / r["path"]).is_file()
        stem = r["path"].rsplit(".", 1)[0]
        depth = np.load(panoramas / f"{stem}.depth.npy")
        assert depth.shape == (64, 128) and (depth > 0).all()
        assert float(r["heading"]) == 180.0


def test_synth_views_positions_and_index_build(panoramas, tmp_path):
    out = tmp_path / "views"
    proc = run_cli(
        "synth", panoramas / "manifest.csv", "-o", out, "--headings", "2", "--size", "64x48",
        "--grid-step", "3", "--grid-radius", "1", "--max-holes", "1", "-q",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "synth.json").read_text())
    rows = _rows(out)
    n_pano = len(_rows(panoramas))
    assert summary["views"] == len(rows) == n_pano * 9 * 2  # nothing dropped at max-holes 1
    assert summary["synthesized_views"] == n_pano * 8 * 2
    by_pano = {}
    for r in rows:
        if r["synthesized"] == "0":
            by_pano[r["group"]] = (float(r["lat"]), float(r["lon"]))
    for r in rows:  # every view sits its offset away from its panorama
        lat0, lon0 = by_pano[r["group"]]
        metres = 1000 * haversine_km(lat0, lon0, float(r["lat"]), float(r["lon"]))
        assert metres == pytest.approx(np.hypot(float(r["east_m"]), float(r["north_m"])), abs=1e-3)
    from PIL import Image

    with Image.open(out / rows[-1]["path"]) as im:
        assert im.size == (64, 48)
    idx = tmp_path / "views.ppidx"
    proc = run_cli(
        "index", "build", out / "manifest.csv", "-o", idx, "--describer", "tiny",
        "--describer-options", '{"size": 8}', "--cells", "none", "-q",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    from placeprint.index import OverloadedIndex

    index = OverloadedIndex.load(idx)
    assert index.describer["name"] == "tiny" and index.describer["size"] == 8
    assert index.ntotal == len(rows)
    # options are checked before any work: one line each, the index left as it was
    before = idx.read_bytes()
    build = ("index", "build", out / "manifest.csv", "-o", idx, "--cells", "none")
    for options, message in [
        (["--describer", "tiny", "--describer-options", "{size: 8"], "JSON object"),
        (["--describer", "tiny", "--describer-options", '{"sise": 8}'], "sise"),
    ]:
        assert_one_line_error(run_cli(*build, *options), message)
    from placeprint.cli import _describer_options
    from placeprint.errors import PlaceprintError

    for args, message in [  # the same check, in process
        (("[8]", "tiny", None), "JSON object"),
        (('{"size": 1}', "tiny", None), ">= 2"),
        (('{"size": 8}', None, None), "needs --describer"),
        (('{"size": 8}', "tiny", "--codec-from"), "--codec-from"),
    ]:
        with pytest.raises(PlaceprintError, match=message):
            _describer_options(*args)
    assert _describer_options('{"size": 8}', "tiny", None) == {"size": 8}
    assert idx.read_bytes() == before


def test_threads_write_the_same_views_as_one(panoramas, tmp_path):
    from placeprint.synth.folder import synthesize_folder
    from placeprint.synth.views import ViewSettings

    settings = ViewSettings(headings=3, size=(48, 64), grid_step_m=3, grid_radius=1)
    one = synthesize_folder(panoramas, tmp_path / "one", settings, workers=1)
    done = []
    two = synthesize_folder(panoramas, tmp_path / "two", settings, lambda k, n: done.append(k), 2)
    assert one == two and done == list(range(1, one["panoramas"] + 1))  # in order
    rows = _rows(tmp_path / "one")
    assert rows == _rows(tmp_path / "two") and len(rows) > 3 * one["panoramas"]
    for r in rows:
        written = [(tmp_path / folder / r["path"]).read_bytes() for folder in ("one", "two")]
        assert written[0] == written[1]


def test_failed_run_leaves_previous_views(panoramas, tmp_path):
    out = tmp_path / "views"
    ok = run_cli("synth", panoramas, "-o", out, "--headings", "2", "--grid-radius", "0", "-q")
    assert ok.returncode == 0, ok.stderr
    before = (out / "manifest.csv").read_bytes()
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in sorted(panoramas.glob("pano_*.png"))[:2]:
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "pano_zz.png").write_bytes(b"not a png")
    proc = run_cli("synth", broken, "-o", out, "-q")
    assert_one_line_error(proc, "pano_zz.png")
    assert (out / "manifest.csv").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".views.")]
    # a killed run's leftover is cleaned up by the next
    (tmp_path / ".views.dead.part").mkdir()
    again = run_cli("synth", panoramas, "-o", out, "--headings", "3", "--grid-radius", "0", "-q")
    assert again.returncode == 0, again.stderr
    assert not (tmp_path / ".views.dead.part").exists()
    assert len(_rows(out)) == 3 * len(_rows(panoramas))


def test_bad_input(panoramas, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert_one_line_error(run_cli("synth", panoramas, "-o", other), "holds other files")
    assert (other / "keep.txt").read_text() == "mine"
    afile = tmp_path / "f.txt"
    afile.write_text("x")
    assert_one_line_error(run_cli("synth", panoramas, "-o", afile), "is a file")
    v = tmp_path / "v"
    assert_one_line_error(run_cli("synth", panoramas, "-o", v, "--size", "big"), "--size")
    assert_one_line_error(run_cli("synth", panoramas, "-o", v, "--fov", "200"), "field of view")
    assert_one_line_error(run_cli("synth", tmp_path / "nope", "-o", tmp_path / "v"), "not found")
    flat = tmp_path / "flat"
    flat.mkdir()
    from PIL import Image

    Image.new("RGB", (100, 100)).save(flat / "square.png")
    assert_one_line_error(run_cli("synth", flat, "-o", tmp_path / "v"), "2:1")
    assert not (tmp_path / "v").exists()

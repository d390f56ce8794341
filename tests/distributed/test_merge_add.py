"""index merge / index add: parts built with one codec join into the index of all of them."""

from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, require_real_data, run_cli
from test_dask_build import same_index_bytes


@pytest.fixture(scope="module")
def halves(tmp_path_factory):
    root = require_real_data("nordland", "summer").resolve()
    base = tmp_path_factory.mktemp("halves")
    files = sorted(root.iterdir())[:150]
    for name, chunk in (("a", files[:75]), ("b", files[75:]), ("all", files)):
        (base / name).mkdir()
        for f in chunk:
            (base / name / f.name).symlink_to(f)
    return base


def test_merge_of_two_parts_is_the_build_of_both(halves, tmp_path):
    a, b, both, merged = (tmp_path / f"{n}.ppidx" for n in ("a", "b", "both", "m"))
    assert run_cli("index", "build", halves / "a", "-o", a, "-q").returncode == 0
    for src, out in ((halves / "b", b), (halves / "all", both)):
        proc = run_cli("index", "build", src, "-o", out, "--codec-from", a, "-q")
        assert proc.returncode == 0, proc.stderr
    proc = run_cli("index", "merge", a, b, "-o", merged)
    assert proc.returncode == 0, proc.stderr
    assert same_index_bytes(merged, both)
    # the same matches for a winter query sequence
    winter = require_real_data("nordland", "winter").resolve()
    query = tmp_path / "q"
    query.mkdir()
    for f in sorted(winter.iterdir())[100:110]:
        (query / f.name).symlink_to(f)
    outs = [run_cli("match", idx, query, "--json") for idx in (merged, both)]
    assert all(o.returncode == 0 for o in outs), outs[0].stderr
    import json

    def matches(out):  # positions and scores (the files differ: a/, b/ against all/)
        data = json.loads(out.stdout)
        return json.dumps(data, sort_keys=True, default=str).count('"position"'), [
            (m["position"], m["score"]) for m in _all_matches(data)
        ]

    assert matches(outs[0]) == matches(outs[1])
    # ids renumbered: place 75 of the merged store is b's first image
    from placeprint.indexfiles import side_path
    from placeprint.serve.store import PlaceStore

    with PlaceStore.open(side_path(merged, "places")) as store:
        assert store.get(75)["path"].endswith(sorted((halves / "b").iterdir())[0].name)
        assert len(store) == 150
        # a and b searched side by side: global positions, each answer's file from its shard
        side = run_cli("match", a, query, "--shard", b, "--json")
        assert side.returncode == 0, side.stderr
        answers = json.loads(side.stdout)["answers"]
        assert answers and abs(answers[0]["position"] - 109) <= 2  # the query's last frame
        for m in answers:
            assert Path(m["file"]).name == Path(store.get(m["position"])["path"]).name
    assert_one_line_error(run_cli("match", a, query, "--shard", tmp_path / "no.ppidx"), "not found")
    assert_one_line_error(run_cli("match", a, query, "--shard", b, "--sliding"), "--sliding")


def _all_matches(data):
    """Every dict with a ``position`` anywhere in ``data``."""
    if isinstance(data, dict):
        found = [data] if "position" in data else []
        return found + [m for v in data.values() for m in _all_matches(v)]
    if isinstance(data, list):
        return [m for v in data for m in _all_matches(v)]
    return []


def test_add_appends_a_segment(halves, tmp_path):
    a, both = tmp_path / "a.ppidx", tmp_path / "both.ppidx"
    assert run_cli("index", "build", halves / "a", "-o", a, "-q").returncode == 0
    assert run_cli("index", "build", halves / "all", "-o", both, "--codec-from", a,
                   "-q").returncode == 0  # fmt: skip
    proc = run_cli("index", "add", a, halves / "b")
    assert proc.returncode == 0, proc.stderr
    assert "75 places added" in proc.stdout
    assert same_index_bytes(a, both)


def test_parts_with_other_codecs_are_refused(halves, tmp_path):
    a, b = tmp_path / "a.ppidx", tmp_path / "b.ppidx"
    assert run_cli("index", "build", halves / "a", "-o", a, "-q").returncode == 0
    assert run_cli("index", "build", halves / "b", "-o", b, "-q").returncode == 0  # own codec
    assert_one_line_error(run_cli("index", "merge", a, b, "-o", tmp_path / "m.ppidx"), "codec")
    assert not (tmp_path / "m.ppidx").exists()
    assert_one_line_error(run_cli("index", "merge", a, "-o", tmp_path / "m.ppidx"), "two")
    assert_one_line_error(
        run_cli("index", "build", halves / "b", "-o", b, "--codec-from", tmp_path / "no.ppidx"),
        "not found",
    )
    np.testing.assert_equal(a.is_file(), True)


def test_a_shard_list_builds_the_index_of_its_shards_in_order(halves, tmp_path):
    shards = tmp_path / "shards.txt"
    shards.write_text(f"# route segments, in order\n{halves / 'a'}\n\n{halves / 'b'}\n")
    listed, whole = tmp_path / "listed.ppidx", tmp_path / "whole.ppidx"
    proc = run_cli("index", "build", shards, "-o", listed, "--workers", "1", "-q")
    assert proc.returncode == 0, proc.stderr
    assert run_cli("index", "build", halves / "all", "-o", whole, "-q").returncode == 0
    assert same_index_bytes(listed, whole)
    (tmp_path / "bad.txt").write_text(f"{halves / 'a'}\n{tmp_path / 'missing'}\n")
    assert_one_line_error(
        run_cli("index", "build", tmp_path / "bad.txt", "-o", tmp_path / "x.ppidx"),
        "line 2",
        "not found",
    )


def test_geotagged_parts_join_into_the_geolocator_of_one_build(tmp_path):
    """A geotagged part carries its geolocator: merged or added, it is the one a build of
    all the photos fits (same rows, positions, calibration)."""
    import shutil

    from placeprint.distributed.merge import add_segment, merge_indexes
    from placeprint.locate import load_geolocator

    lund = require_real_data("geotagged", "lund").resolve()
    photos = sorted(lund.glob("*.jpg"))[:20]  # a codec needs 16 photos: a has them
    for name, chunk in (("a", photos[:16]), ("b", photos[16:]), ("all", photos)):
        (tmp_path / name).mkdir()
        for f in chunk:
            (tmp_path / name / f.name).symlink_to(f)
    a, both, merged = (tmp_path / f"{n}.ppidx" for n in ("a", "both", "m"))
    top = ("--verify-top", "3")  # carried by merge and add (and fewer checks: a faster test)
    proc = run_cli("index", "build", tmp_path / "a", "-o", a, "--describer", "tiny", *top, "-q")
    assert proc.returncode == 0, proc.stderr
    for src, out in ((tmp_path / "b", tmp_path / "b.ppidx"), (tmp_path / "all", both)):
        proc = run_cli("index", "build", src, "-o", out, "--codec-from", a, *top, "-q")
        assert proc.returncode == 0, proc.stderr
    merge_indexes([a, tmp_path / "b.ppidx"], merged)
    shutil.copy(a, tmp_path / "grown.ppidx")
    for side in a.parent.glob("a.ppidx.*"):  # the index set: the index and its side files
        shutil.copy(side, tmp_path / side.name.replace("a.ppidx", "grown.ppidx"))
    add_segment(tmp_path / "grown.ppidx", tmp_path / "b", progress=False)
    want, _ = load_geolocator(both)
    for joined in (merged, tmp_path / "grown.ppidx"):
        got, _ = load_geolocator(joined)
        np.testing.assert_array_equal(got.descriptors_, want.descriptors_)
        np.testing.assert_array_equal(got.lat_, want.lat_)
        assert got.user_meta_["paths"] == want.user_meta_["paths"]
        assert got.user_meta_["route_rows"] == list(range(20))
        assert got.user_meta_["verify_top"] == want.user_meta_["verify_top"] == 3
        np.testing.assert_array_equal(got.level_table_, want.level_table_)
        np.testing.assert_array_equal(got.verified_level_table_, want.verified_level_table_)


def test_geotagged_parts_with_other_settings_are_refused():
    from placeprint.distributed.merge import _join_geotagged
    from placeprint.errors import PlaceprintError

    def part(name, cells="auto", verify_top=10):
        return {"X": np.zeros((1, 4), np.float32), "lat": np.zeros(1), "lon": np.zeros(1),
                "paths": [name], "rows": [0], "cells": cells, "describer": None,
                "verify_top": verify_top}  # fmt: skip

    joined = _join_geotagged([part("/a.jpg"), None, part("/b.jpg")])
    assert joined["paths"] == ["/a.jpg", "/b.jpg"] and joined["verify_top"] == 10
    with pytest.raises(PlaceprintError, match="different cells"):
        _join_geotagged([part("/a.jpg"), part("/b.jpg", cells="none")])
    with pytest.raises(PlaceprintError, match="--verify-top"):
        _join_geotagged([part("/a.jpg"), part("/b.jpg", verify_top=25)])

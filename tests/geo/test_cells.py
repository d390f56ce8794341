"""Adaptive S2 cells checked against s2sphere itself and a plain recursive PlaNet build."""

from __future__ import annotations

import json
import time
from collections import defaultdict

import numpy as np
import pytest
import s2sphere
from conftest import require_real_data
from matplotlib.path import Path as MplPath

from placeprint.errors import PlaceprintError
from placeprint.geo.cells import (
    AdaptiveCells,
    from_photo_locations,
    leaf_ids,
    levels_of,
    parent_ids,
    read_photo_locations,
)
from placeprint.index.fileformat import write_container


def _sphere_points(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points on the sphere (degrees)."""
    z = rng.uniform(-1, 1, n)
    return np.degrees(np.arcsin(z)), rng.uniform(-180, 180, n)


def _clustered(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Photo-like data: dense cities, a sparse background, and 150 photos at one spot."""
    rng = np.random.default_rng(seed)
    cities = [(52.52, 13.40), (48.85, 2.35), (40.71, -74.0), (35.68, 139.69), (-33.87, 151.2)]
    lat, lon = [], []
    for (clat, clon), n in zip(cities, [900, 600, 400, 200, 50], strict=True):
        lat.append(clat + rng.normal(0, 0.3, n))
        lon.append(clon + rng.normal(0, 0.3, n))
    blat, blon = _sphere_points(400, rng)
    lat += [blat, np.full(150, 64.1466)]
    lon += [blon, np.full(150, -21.9426)]
    return np.concatenate(lat), np.concatenate(lon)


def _planet_reference(lat, lon, t1, t2, min_level, max_level) -> dict[int, list[int]]:
    """Kept cell id -> photo indices, by recursion with s2sphere's own parent()."""
    cells = [
        s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(a, b))
        for a, b in zip(lat, lon, strict=True)
    ]
    out: dict[int, list[int]] = {}

    def build(level: int, idx: list[int]) -> None:
        groups = defaultdict(list)
        for i in idx:
            groups[cells[i].parent(level).id()].append(i)
        for cid, members in groups.items():
            if len(members) > t1 and level < max_level:
                build(level + 1, members)
            else:
                out[cid] = members

    build(min_level, list(range(len(lat))))
    return {cid: m for cid, m in out.items() if len(m) >= t2}


def test_parent_and_level_arithmetic_match_s2sphere():
    rng = np.random.default_rng(1)
    lat, lon = _sphere_points(200, rng)
    leaves = leaf_ids(lat, lon)
    for i in range(0, 200, 7):
        ref = s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(lat[i], lon[i]))
        assert int(leaves[i]) == ref.id()
    for level in range(31):
        ours = parent_ids(leaves, level)
        ref = [s2sphere.CellId(int(c)).parent(level).id() for c in leaves[::5]]
        assert ours[::5].tolist() == ref
        assert (levels_of(ours) == level).all()
        # a parent of a parent at a coarser level is the coarser parent
        if level:
            assert (parent_ids(ours, level - 1) == parent_ids(leaves, level - 1)).all()


def test_fit_equals_recursive_planet_reference():
    lat, lon = _clustered()
    t1, t2 = 120, 8
    cells = AdaptiveCells(max_photos=t1, min_photos=t2, min_level=2, max_level=9).fit(lat, lon)
    ref = _planet_reference(lat, lon, t1, t2, 2, 9)
    assert cells.cell_ids_.tolist() == sorted(ref)
    for j, cid in enumerate(cells.cell_ids_.tolist()):
        assert np.flatnonzero(cells.photo_cell_ == j).tolist() == sorted(ref[cid])
        assert cells.counts_[j] == len(ref[cid])
    kept_ref = np.zeros(len(lat), bool)
    for members in ref.values():
        kept_ref[members] = True
    assert (cells.kept_ == kept_ref).all()


def test_planet_invariants():
    lat, lon = _clustered(2)
    t1, t2, top = 100, 5, 10
    cells = AdaptiveCells(max_photos=t1, min_photos=t2, max_level=top).fit(lat, lon)
    assert np.all(cells.cell_ids_[1:] > cells.cell_ids_[:-1])
    assert cells.levels_.tolist() == [s2sphere.CellId(int(c)).level() for c in cells.cell_ids_]
    over = cells.counts_ > t1
    assert over.any(), "the 150 identical photos must give a max-level cell above t1"
    assert (cells.levels_[over] == top).all()
    assert (cells.counts_ >= t2).all()
    assert cells.counts_.sum() == cells.kept_.sum()
    assert (
        np.bincount(cells.photo_cell_[cells.kept_], minlength=cells.n_cells) == cells.counts_
    ).all()
    assert (cells.photo_cell_[~cells.kept_] == -1).all() and (
        cells.photo_cell_[cells.kept_] >= 0
    ).all()
    assert sum(cells.counts_per_level().values()) == cells.n_cells
    # a discarded photo sits in a final (unsplit) cell that holds fewer than t2 photos:
    # its ancestor at the first level where the group is <= t1 (or at max level) is small
    leaves = leaf_ids(lat, lon)
    for i in np.flatnonzero(~cells.kept_):
        for level in range(1, top + 1):
            group = parent_ids(leaves, level) == parent_ids(leaves[i : i + 1], level)[0]
            if group.sum() <= t1 or level == top:
                assert group.sum() < t2
                break


def test_cells_do_not_overlap_and_assign_matches_brute_force():
    lat, lon = _clustered(3)
    cells = AdaptiveCells(max_photos=80, min_photos=3, max_level=11).fit(lat, lon)
    ids = [s2sphere.CellId(int(c)) for c in cells.cell_ids_]
    for a in range(len(ids)):  # pairwise: no kept cell contains another
        for b in range(a + 1, len(ids)):
            assert not ids[a].contains(ids[b]) and not ids[b].contains(ids[a])
            assert ids[a].range_max().id() < ids[b].range_min().id()
    rng = np.random.default_rng(4)
    slat, slon = _sphere_points(150, rng)
    qlat = np.concatenate([slat, lat[::10] + rng.normal(0, 0.05, len(lat[::10]))])
    qlon = np.concatenate([slon, lon[::10]])
    qlat = np.clip(qlat, -90, 90)
    got = cells.assign(qlat, qlon)
    assert (got >= 0).sum() > 100
    for k, (a, b) in enumerate(zip(qlat, qlon, strict=True)):
        leaf = s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(a, b))
        holders = [j for j, c in enumerate(ids) if c.contains(leaf)]
        assert len(holders) <= 1
        assert got[k] == (holders[0] if holders else -1)
    assert (cells.assign(lat, lon) == cells.photo_cell_).all()


def test_centres_and_vertices():
    lat, lon = _clustered(5)
    cells = AdaptiveCells(max_photos=200, min_photos=2).fit(lat, lon)
    assert (cells.assign(cells.centres_lat_, cells.centres_lon_) == np.arange(cells.n_cells)).all()
    v = cells.vertices(np.arange(cells.n_cells))
    assert v.shape == (cells.n_cells, 4, 2)
    assert cells.vertices(3).shape == (4, 2)
    cell = s2sphere.Cell(s2sphere.CellId(int(cells.cell_ids_[3])))
    ll = s2sphere.LatLng.from_point(cell.get_vertex(2))
    assert np.allclose(v[3, 2], [ll.lat().degrees, ll.lng().degrees])
    # corners are equidistant-ish from the centre (S2 cells are near-square)
    from placeprint.geo.distance import haversine_km

    d = haversine_km(cells.centres_lat_[:, None], cells.centres_lon_[:, None], v[..., 0], v[..., 1])
    assert (d.max(axis=1) / d.min(axis=1) < 2.0).all()
    with pytest.raises(PlaceprintError):
        cells.vertices(cells.n_cells)


def _ring_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]))


@pytest.mark.parametrize("level", [0, 1])
def test_rings_tile_the_map_and_contain_their_points(level):
    rng = np.random.default_rng(6)
    lat, lon = _sphere_points(6000, rng)
    cells = AdaptiveCells(max_photos=10**9, min_photos=1, min_level=level, max_level=level)
    cells.fit(lat, lon)
    assert cells.n_cells == 6 * 4**level
    rings = [cells.rings(j) for j in range(cells.n_cells)]
    # the pieces cover the lon/lat rectangle exactly once: areas add up to 360 x 180
    areas = [_ring_area(r) for rs in rings for r in rs]
    assert min(areas) > 0  # counter-clockwise, non-degenerate
    assert sum(areas) == pytest.approx(360.0 * 180.0, rel=2e-3)
    for rs in rings:
        for r in rs:
            assert (np.abs(r[:, 0]) <= 180).all() and (np.abs(r[:, 1]) <= 90).all()
            assert (r[0] == r[-1]).all()
    paths = [[MplPath(r) for r in rs] for rs in rings]
    inside = [
        any(p.contains_point((b, a)) for p in paths[j])
        for a, b, j in zip(lat[:1500], lon[:1500], cells.photo_cell_[:1500], strict=True)
    ]
    assert np.mean(inside) > 0.995


def test_geojson_structure_values_and_antimeridian():
    rng = np.random.default_rng(7)
    lat, lon = _sphere_points(3000, rng)
    cells = AdaptiveCells(max_photos=10**9, min_photos=1, min_level=0, max_level=0).fit(lat, lon)
    prob = np.linspace(0, 1, cells.n_cells)
    gj = json.loads(json.dumps(cells.to_geojson({"probability": prob})))
    assert gj["type"] == "FeatureCollection" and len(gj["features"]) == 6
    types = {}
    for f in gj["features"]:
        props = f["properties"]
        j = props["index"]
        assert s2sphere.CellId.from_token(props["token"]).id() == int(cells.cell_ids_[j])
        assert props["level"] == 0 and props["count"] == int(cells.counts_[j])
        assert props["probability"] == pytest.approx(prob[j])
        geom = f["geometry"]
        polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
        for poly in polys:
            ring = np.array(poly[0])
            assert ring.shape[1] == 2 and (ring[0] == ring[-1]).all()
            assert (np.abs(ring[:, 0]) <= 180).all() and (np.abs(ring[:, 1]) <= 90).all()
        types[s2sphere.CellId(int(cells.cell_ids_[j])).face()] = geom["type"]
    # face 3 is centred on lon 180 and faces 2/5 hold the poles: they are cut in two
    assert types == {
        0: "Polygon",
        1: "Polygon",
        2: "MultiPolygon",
        3: "MultiPolygon",
        4: "Polygon",
        5: "MultiPolygon",
    }
    # lon-lat order: face 0 is centred at lon 0, lat 0 and spans lon -45..45
    face0 = next(
        f
        for f in gj["features"]
        if s2sphere.CellId.from_token(f["properties"]["token"]).face() == 0
    )
    ring = np.array(face0["geometry"]["coordinates"][0])
    assert ring[:, 0].min() == pytest.approx(-45) and ring[:, 0].max() == pytest.approx(45)
    with pytest.raises(PlaceprintError, match="one value per cell"):
        cells.to_geojson({"p": prob[:-1]})


def test_save_load_round_trip_and_bad_files(tmp_path):
    lat, lon = _clustered(8)
    cells = AdaptiveCells(max_photos=150, min_photos=4, max_level=12).fit(lat, lon)
    path = tmp_path / "cells.plp"
    assert cells.save(path) == path.stat().st_size
    back = AdaptiveCells.load(path)
    for name in [
        "cell_ids_",
        "levels_",
        "counts_",
        "kept_",
        "photo_cell_",
        "centres_lat_",
        "centres_lon_",
    ]:
        assert np.array_equal(getattr(back, name), getattr(cells, name)), name
    assert (back.max_photos, back.min_photos, back.max_level) == (150, 4, 12)
    assert (back.assign(lat, lon) == cells.photo_cell_).all()
    assert [p.name for p in tmp_path.iterdir()] == ["cells.plp"]

    foreign = tmp_path / "foreign.plp"
    write_container(foreign, "something-else", {}, {"x": np.zeros(3)})
    with pytest.raises(PlaceprintError, match="not a 'adaptive-cells'"):
        AdaptiveCells.load(foreign)
    truncated = tmp_path / "cut.plp"
    truncated.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(PlaceprintError, match="truncated"):
        AdaptiveCells.load(truncated)
    garbage = tmp_path / "garbage.plp"
    garbage.write_bytes(b"hello world, not cells at all" * 4)
    with pytest.raises(PlaceprintError):
        AdaptiveCells.load(garbage)
    empty_kind = tmp_path / "wrong.plp"
    write_container(empty_kind, "adaptive-cells", {"format": 1}, {})
    with pytest.raises(PlaceprintError, match="not a valid adaptive cells file"):
        AdaptiveCells.load(empty_kind)
    with pytest.raises(PlaceprintError, match="not found"):
        AdaptiveCells.load(tmp_path / "missing.plp")
    with pytest.raises(PlaceprintError, match="not fitted"):
        AdaptiveCells().save(tmp_path / "x.plp")


@pytest.mark.parametrize(
    ("lat", "lon", "match"),
    [
        ([91.0], [0.0], "lat must lie"),
        ([0.0], [200.0], "lat must lie"),
        ([np.nan], [0.0], "NaN"),
        ([0.0, 1.0], [0.0], "one length"),
        ([], [], "at least one"),
    ],
)
def test_bad_points_raise(lat, lon, match):
    with pytest.raises(PlaceprintError, match=match):
        AdaptiveCells(min_photos=0).fit(lat, lon)


def test_bad_params_and_state_raise(tmp_path, monkeypatch):
    lat, lon = _clustered(9)
    for params in [
        dict(min_level=5, max_level=3),
        dict(max_level=31),
        dict(max_photos=0),
        dict(min_photos=-1),
    ]:
        with pytest.raises(PlaceprintError):
            AdaptiveCells(**params).fit(lat, lon)
    with pytest.raises(PlaceprintError, match="min_photos"):
        AdaptiveCells(max_photos=10**6, min_photos=10**6).fit(lat, lon)
    with pytest.raises(PlaceprintError, match="not fitted"):
        AdaptiveCells().assign([0.0], [0.0])
    monkeypatch.setenv("PLACEPRINT_DATA", str(tmp_path))
    with pytest.raises(PlaceprintError, match="real data not found"):
        read_photo_locations()
    bad = tmp_path / "bad.csv"
    bad.write_text("X,Y\n1,2\n")
    with pytest.raises(PlaceprintError, match="LAT and LON"):
        read_photo_locations(bad)
    good = tmp_path / "good.csv"
    good.write_text("LAT,LON\n52.5,13.4\n-33.9,151.2\n")
    glat, glon = read_photo_locations(good)
    assert glat.tolist() == [52.5, -33.9] and glon.tolist() == [13.4, 151.2]


def test_real_photo_locations_partition():
    require_real_data("world", "photo_locations_100k.csv")
    lat, lon = read_photo_locations()
    assert lat.shape == (100_000,)
    t1, t2 = 1000, 20
    start = time.perf_counter()
    cells = from_photo_locations(max_photos=t1, min_photos=t2)
    seconds = time.perf_counter() - start
    per_level = cells.counts_per_level()
    print(
        f"\n100K photos, t1={t1}, t2={t2}: {cells.n_cells} cells in {seconds:.2f} s; "
        f"per level {per_level}"
    )
    print(f"kept {cells.kept_.mean():.2%} of photos")
    assert seconds < 20
    assert 100 < cells.n_cells < 2000
    assert min(per_level) >= 1 and max(per_level) <= 13
    assert (cells.counts_ >= t2).all()
    assert (cells.counts_[cells.levels_ < 13] <= t1).all()
    assert cells.counts_.sum() == cells.kept_.sum() > 0.98 * len(lat)
    # dense places get fine cells: the cell holding central Paris is finer than one in the Sahara
    paris, sahara = cells.assign([48.8566, 23.0], [2.3522, 12.0])
    assert paris >= 0 and cells.levels_[paris] >= 8
    assert sahara == -1 or cells.levels_[sahara] <= 5
    sample = np.random.default_rng(0).choice(len(lat), 2000, replace=False)
    assert (cells.assign(lat[sample], lon[sample]) == cells.photo_cell_[sample]).all()


def test_threshold_boundaries_are_inclusive():
    # exactly t1 photos: not split; exactly t2 photos: kept; t2 - 1: dropped
    lat = np.array([52.52, 52.53, 52.54, -33.87, -33.88, 40.7])
    lon = np.array([13.40, 13.41, 13.42, 151.2, 151.21, -74.0])
    cells = AdaptiveCells(max_photos=3, min_photos=2, min_level=1, max_level=10).fit(lat, lon)
    assert cells.n_cells == 2 and sorted(cells.counts_.tolist()) == [2, 3]
    berlin = cells.photo_cell_[0]
    assert cells.levels_[berlin] == 1 and cells.counts_[berlin] == 3
    assert cells.kept_.tolist() == [True] * 5 + [False]


def test_assign_at_the_ends_of_each_cell_range():
    lat, lon = _clustered(10)
    cells = AdaptiveCells(max_photos=100, min_photos=3, max_level=12).fit(lat, lon)
    for j, cid in enumerate(cells.cell_ids_.tolist()):
        cell = s2sphere.CellId(cid)
        for leaf in (cell.range_min(), cell.range_max()):
            ll = leaf.to_lat_lng()
            assert cells.assign([ll.lat().degrees], [ll.lng().degrees])[0] == j
        # the leaves just outside the range belong to no kept cell or to another one
        for leaf in (cell.range_min().prev(), cell.range_max().next()):
            if leaf.is_valid():
                ll = leaf.to_lat_lng()
                assert cells.assign([ll.lat().degrees], [ll.lng().degrees])[0] != j

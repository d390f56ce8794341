"""Place store: exact round trips, path handling, read-only access, damaged files, traversal."""

import math
import os
import sqlite3
import threading

import numpy as np
import pytest

from placeprint.errors import PlaceprintError
from placeprint.serve import store as store_mod
from placeprint.serve.store import PlaceStore, store_path_for, write_place_store


def _expected(value):
    """What the store should give back for one input value: NaN/None -> None, else float."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


@pytest.fixture
def thousand(tmp_path):
    """A store of 1000 places with unknown positions, headings and groups, and its inputs."""
    rng = np.random.default_rng(0)
    n = 1000
    lat = rng.uniform(-90, 90, n)
    lon = rng.uniform(-180, 180, n)
    lat[rng.random(n) < 0.1] = np.nan
    lon[rng.random(n) < 0.1] = np.nan
    lat[:2], lon[:2] = [90.0, -90.0], [180.0, -180.0]  # the range's edges are allowed
    timestamp = rng.uniform(1.5e9, 1.8e9, n)
    heading = rng.uniform(0, 360, n)
    heading[rng.random(n) < 0.3] = np.nan
    group = [None if i % 7 == 0 else f"drive-{i // 50}" for i in range(n)]
    paths = [str(tmp_path / "db" / f"{i:04d}.jpg") for i in range(n)]
    out = write_place_store(
        tmp_path / "x.idx.places.sqlite", paths, lat, lon, timestamp, heading, group
    )
    return out, dict(lat=lat, lon=lon, timestamp=timestamp, heading=heading, group=group)


def test_round_trip_of_1000_places(thousand):
    path, inp = thousand
    with PlaceStore.open(path) as store:
        assert len(store) == 1000
        for i in range(1000):
            got = store.get(i)
            assert set(got) == {"id", "path", "lat", "lon", "heading", "timestamp", "sequence"}
            assert got["id"] == i and got["path"] == f"db/{i:04d}.jpg"
            known = not (np.isnan(inp["lat"][i]) or np.isnan(inp["lon"][i]))
            assert got["lat"] == (float(inp["lat"][i]) if known else None)
            assert got["lon"] == (float(inp["lon"][i]) if known else None)
            assert got["heading"] == _expected(float(inp["heading"][i]))
            assert got["timestamp"] == float(inp["timestamp"][i])
            assert got["sequence"] == inp["group"][i]
        assert store.get(1000) is None and store.get(10**30) is None
        assert store.get(np.int64(5)) == store.get(5)
        # many: the order given, repeats kept, unknown ids left out; more ids than one chunk
        ids = [999, 3, 5000, 3, 0] + list(range(998, -1, -1))
        assert [p["id"] for p in store.many(ids)] == [999, 3, 3, 0] + list(range(998, -1, -1))
        assert store.many([]) == []


def test_optional_columns_absent_are_none_and_lengths_must_match(tmp_path):
    path = write_place_store(tmp_path / "p.sqlite", [str(tmp_path / "a.jpg"), "/elsewhere/b.jpg"])
    with PlaceStore.open(path) as store:
        assert store.get(1) == {
            "id": 1,
            "path": "/elsewhere/b.jpg",
            "lat": None,
            "lon": None,
            "heading": None,
            "timestamp": None,
            "sequence": None,
        }


def test_paths_relative_inside_the_folder_absolute_outside(tmp_path, monkeypatch):
    folder = tmp_path / "index"
    (folder / "sub").mkdir(parents=True)
    outside = tmp_path / "other" / "c.jpg"
    monkeypatch.chdir(folder / "sub")
    paths = [
        str(folder / "a.jpg"),  # absolute, inside
        "b.jpg",  # relative to the current folder (index/sub)
        str(outside),  # absolute, outside
        "../../other/d.jpg",  # relative, outside
        folder / "sub" / ".." / "e.jpg",  # a Path with '..', inside
    ]
    path = write_place_store(folder / "i.places.sqlite", paths)
    with PlaceStore.open(path) as store:
        got = [p["path"] for p in store.many(range(5))]
    assert got == ["a.jpg", "sub/b.jpg", str(outside), str(tmp_path / "other" / "d.jpg"), "e.jpg"]
    # with base=, relative paths are taken relative to it (e.g. the index folder)
    path = write_place_store(folder / "j.places.sqlite", ["x/y.jpg", "z.jpg"], base=folder)
    with PlaceStore.open(path) as store:
        assert [p["path"] for p in store.many([0, 1])] == ["x/y.jpg", "z.jpg"]


def test_store_path_for():
    assert str(store_path_for("/a/b/lund.idx")) == "/a/b/lund.idx.places.sqlite"


def test_written_with_usual_permissions_and_no_leftovers(tmp_path):
    mask = os.umask(0)
    os.umask(mask)
    path = write_place_store(tmp_path / "p.sqlite", ["a.jpg"], base=tmp_path)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~mask)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.sqlite"]


def test_store_is_read_only(thousand):
    path, _ = thousand
    before = path.read_bytes()
    store = PlaceStore.open(path)
    with pytest.raises(sqlite3.OperationalError):
        store._conn.execute("INSERT INTO places (id, path) VALUES (5000, 'x.jpg')")
    with pytest.raises(sqlite3.OperationalError):
        store._conn.execute("UPDATE places SET path = '/etc/passwd' WHERE id = 0")
    with pytest.raises(sqlite3.OperationalError):
        store._conn.execute("DROP TABLE places")
    assert store.get(0)["path"] == "db/0000.jpg"
    store.close()
    assert path.read_bytes() == before
    with pytest.raises(PlaceprintError, match="closed"):
        store.get(0)


@pytest.mark.parametrize("bad", [True, "3", 1.0, -1, None, np.float64(2)])
def test_bad_place_ids_are_refused(thousand, bad):
    path, _ = thousand
    with PlaceStore.open(path) as store:
        with pytest.raises(PlaceprintError, match="place id"):
            store.get(bad)
        with pytest.raises(PlaceprintError, match="place id"):
            store.many([0, bad])
        with pytest.raises(PlaceprintError, match="place id"):
            store.image_file(bad)


def _one_line_error(path, match):
    with pytest.raises(PlaceprintError, match=match) as err:
        PlaceStore.open(path)
    assert "\n" not in str(err.value)


def test_missing_foreign_text_truncated_files_are_clear_errors(tmp_path, thousand):
    good, _ = thousand
    _one_line_error(tmp_path / "nope.sqlite", "no place store")
    _one_line_error(tmp_path, "no place store")  # a folder
    text = tmp_path / "text.sqlite"
    text.write_text("id,path\n0,a.jpg\n" * 50)
    _one_line_error(text, "not a placeprint place store")
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    _one_line_error(empty, "not a placeprint place store")
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
    conn.close()
    _one_line_error(foreign, "not a placeprint place store")
    lookalike = tmp_path / "lookalike.sqlite"
    with sqlite3.connect(lookalike) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO meta VALUES ('format', 'something-else'), ('version', '1')")
    conn.close()
    _one_line_error(lookalike, "not a placeprint place store")
    data = good.read_bytes()
    assert len(data) > 8192  # several pages, so cutting it loses rows
    for size in (len(data) // 2, 50):
        cut = tmp_path / f"cut{size}.sqlite"
        cut.write_bytes(data[:size])
        _one_line_error(cut, "truncated|not a placeprint place store")


def test_newer_version_says_so(tmp_path):
    path = write_place_store(tmp_path / "p.sqlite", ["a.jpg"], base=tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'version'")
    conn.close()
    _one_line_error(path, "version '2'")


def test_image_file_only_inside_the_folder(tmp_path):
    folder = tmp_path / "index"
    (folder / "db").mkdir(parents=True)
    (folder / "db" / "a.jpg").write_bytes(b"jpeg")
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    os.symlink(secret, folder / "db" / "link_out.jpg")
    os.symlink(folder / "db" / "a.jpg", folder / "link_in.jpg")
    stored = [
        "db/a.jpg",  # 0: fine
        "../../etc/passwd",  # 1: climbs out
        str(secret),  # 2: absolute, outside
        "db/link_out.jpg",  # 3: inside, but a symlink to outside
        "link_in.jpg",  # 4: a symlink to a file inside: fine
        "db/missing.jpg",  # 5: no such file
        "db",  # 6: a folder
        "db/../../secret.txt",  # 7: '..' inside the path
        str(folder / "db" / "a.jpg"),  # 8: absolute, inside: fine
        "",  # 9: empty
    ]
    path = write_place_store(folder / "i.places.sqlite", ["x"] * len(stored), base=folder)
    with sqlite3.connect(path) as conn:  # store the raw paths, as a hostile file might
        conn.executemany(
            "UPDATE places SET path = ? WHERE id = ?", [(p, i) for i, p in enumerate(stored)]
        )
    conn.close()
    real = (folder / "db" / "a.jpg").resolve()
    with PlaceStore.open(path) as store:
        got = [store.image_file(i) for i in range(len(stored))]
        assert store.image_file(len(stored)) is None  # unknown place
    assert got == [real, None, None, None, real, None, None, None, real, None]


def test_image_file_refuses_a_store_next_to_a_symlinked_folder(tmp_path):
    """A stored path through a symlinked folder that leaves the store folder is refused."""
    folder = tmp_path / "index"
    folder.mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "b.jpg").write_bytes(b"jpeg")
    os.symlink(tmp_path / "outside", folder / "photos")
    path = write_place_store(folder / "i.places.sqlite", ["x"], base=folder)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE places SET path = 'photos/b.jpg' WHERE id = 0")
    conn.close()
    with PlaceStore.open(path) as store:
        assert store.image_file(0) is None


def test_threads_share_one_store(thousand):
    path, inp = thousand
    store = PlaceStore.open(path)
    errors, barrier = [], threading.Barrier(8)

    def work(k):
        try:
            barrier.wait()
            for i in range(k, 1000, 8):
                got = store.get(i)
                assert got["id"] == i and got["timestamp"] == float(inp["timestamp"][i])
                assert [p["id"] for p in store.many([i, 999 - i])] == [i, 999 - i]
        except Exception as err:  # collected: a thread's assertion would be lost otherwise
            errors.append(err)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    assert errors == []


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(lat=[1.0, 2.0]), "lat and lon together"),
        (dict(lat=[1.0, 2.0, 3.0], lon=[1.0, 2.0]), "one value per path"),
        (dict(lat=[91.0, 0, 0], lon=[0, 0, 0]), "lat must be within"),
        (dict(lat=[0, 0, 0], lon=[0, -180.5, 0]), "lon must be within"),
        (dict(lat=[0, np.inf, 0], lon=[0, 0, 0]), "lat must be within"),
        (dict(timestamp=[0, 1, np.inf]), "timestamp must be finite"),
        (dict(heading=[[0, 1, 2]]), "one value per path"),
        (dict(heading=["a", "b", "c"]), "heading must be numbers"),
        (dict(group=["a", "b"]), "group must have one value per path"),
    ],
)
def test_bad_input_leaves_nothing_behind(tmp_path, kwargs, match):
    old = tmp_path / "p.sqlite"
    old.write_bytes(b"old")
    with pytest.raises(PlaceprintError, match=match):
        write_place_store(old, ["a.jpg", "b.jpg", "c.jpg"], base=tmp_path, **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.sqlite"]
    assert old.read_bytes() == b"old"


def test_failure_while_writing_removes_the_temporary_file(tmp_path, monkeypatch):
    old = tmp_path / "p.sqlite"
    old.write_bytes(b"old")

    def broken(tmp, rows, n, generation=None):
        with sqlite3.connect(tmp) as conn:
            conn.execute("CREATE TABLE half (x)")
        conn.close()
        raise KeyboardInterrupt

    monkeypatch.setattr(store_mod, "_build", broken)
    with pytest.raises(KeyboardInterrupt):
        write_place_store(old, ["a.jpg"], base=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.sqlite"]
    assert old.read_bytes() == b"old"


def test_missing_folder_and_single_path_are_clear_errors(tmp_path):
    with pytest.raises(PlaceprintError, match="folder does not exist"):
        write_place_store(tmp_path / "no" / "p.sqlite", ["a.jpg"])
    with pytest.raises(PlaceprintError, match="list of paths"):
        write_place_store(tmp_path / "p.sqlite", "a.jpg")
    with pytest.raises(PlaceprintError, match=r"paths\[1\]"):
        write_place_store(tmp_path / "p.sqlite", ["a.jpg", ""])

"""An index and its side files are replaced as one thing (``placeprint.indexfiles``).

A geotagged collection of generated photos is indexed with a learning describer, so the
set has all four parts (index, describer state, place store, geolocator). Bad options
must leave it untouched; ``kill -9`` at many points of a rebuild must leave a set that
loads and is consistent; a mixed set is refused, never served.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import CLI, assert_one_line_error, run_cli
from PIL import Image

from placeprint.errors import PlaceprintError
from placeprint.indexfiles import index_generation, side_path, split_side_path

LEARNS = "texton"  # learns (k-means textons): the build writes a describer state
# 32 textons instead of 512: the k-means takes a fraction of a second, not 7 s
LEARNS_OPTIONS = ("--describer-options", '{"textons": 32}')
FAST = "tiny"  # learns nothing (no describer state), but builds in about 3 s


def _collection(folder: Path, n: int, seed: int) -> Path:
    """``n`` smooth random photos along a street, and their manifest CSV."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["path,lat,lon"]
    base = rng.normal(size=(6, 8, 3))
    for i in range(n):
        small = base + 0.4 * i * rng.normal(size=base.shape) / n + 0.2 * rng.normal(size=base.shape)
        img = (np.clip(small * 40 + 128, 0, 255)).astype(np.uint8)
        Image.fromarray(img).resize((96, 72), Image.BILINEAR).save(folder / f"p{i:03d}.png")
        lines.append(f"p{i:03d}.png,{55.70 + 1e-4 * i:.6f},{13.19 + 1e-4 * i:.6f}")
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


@pytest.fixture(scope="module")
def collections(tmp_path_factory):
    """Two collections and a template folder holding a complete set built from ``a``."""
    root = tmp_path_factory.mktemp("index-set")
    a, b = _collection(root / "a", 24, 1), _collection(root / "b", 36, 2)
    template = root / "template" / "photos.idx"
    template.parent.mkdir()
    assert _build(a, template, LEARNS).returncode == 0
    return root, a, b, template


def _describer_args(describer: str) -> tuple[str, ...]:
    return ("--describer", describer, *(LEARNS_OPTIONS if describer == LEARNS else ()))


def _build(manifest: Path, index: Path, describer: str = FAST, *extra):
    args = _describer_args(describer)
    return run_cli("index", "build", manifest, "-o", index, *args, "-q", *extra)


def _copy_set(template: Path, folder: Path) -> Path:
    """A copy of the template's set in ``folder`` (as if built there)."""
    folder.mkdir()
    for p in template.parent.iterdir():
        if not p.name.endswith(".lock"):
            (folder / p.name).write_bytes(p.read_bytes())
    return folder / template.name


def _parts(index: Path, generation: str) -> set[str]:
    """Names of the side files of ``generation`` that exist."""
    return {
        side_path(index, k, generation).name
        for k in ("describer", "places", "geo")
        if side_path(index, k, generation).exists()
    }


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.endswith(".lock")
    }


def assert_consistent(index: Path) -> str:
    """The set loads as the service loads it, and every part is of the index's build."""
    from placeprint.index import OverloadedIndex
    from placeprint.locate import PhotoLocator
    from placeprint.serve.app import create_app
    from placeprint.serve.store import PlaceStore

    idx = OverloadedIndex.load(index)
    g = idx.generation
    assert g and g == index_generation(index)
    kinds = ["places", "geo"] + (["describer"] if "state" in idx.describer else [])
    for kind in kinds:
        assert side_path(index, kind).is_file() and split_side_path(side_path(index, kind))[1] == g
    with PlaceStore.open(side_path(index, "places")) as store:
        assert store.generation == g and len(store) == idx.ntotal
    loc = PhotoLocator(index)
    assert loc.geo.user_meta_["generation"] == g
    svc = create_app(index).state.service  # loads the set as `placeprint serve` does
    assert svc.index.ntotal == idx.ntotal
    return g


def test_a_rebuild_switches_the_whole_set_and_keeps_one_previous(collections):
    root, a, b, template = collections
    index = _copy_set(template, root / "switch")
    g1 = assert_consistent(index)
    assert _build(b, index, LEARNS).returncode == 0
    g2 = assert_consistent(index)
    assert g2 != g1 and len(_parts(index, g2)) == 3
    assert _build(a, index).returncode == 0
    g3 = assert_consistent(index)
    # the current set and the one it replaced (for servers still on it); nothing else
    names = {p.name for p in index.parent.iterdir() if not p.name.endswith(".lock")}
    assert names == {index.name} | _parts(index, g2) | _parts(index, g3)


BAD_OPTIONS = [
    (("--cells", "bogus"), "--cells"),
    (("--key-bits", "64"), "--key-bits"),
    (("--bits", "9"), "--bits"),
    (("--budget", "nan"), "--budget"),
    (("--budget", "-1"), "--budget"),
    (("--code-size", "0"), "--code-size"),
    (("--paired", "/nonexistent/folder"), "not found"),
]


def test_a_bad_option_changes_nothing(collections):
    root, a, b, template = collections
    index = _copy_set(template, root / "bad-options")
    before = _snapshot(index.parent)
    for extra, fragment in BAD_OPTIONS:
        assert_one_line_error(_build(b, index, LEARNS, *extra), fragment)
        assert _snapshot(index.parent) == before
    assert_one_line_error(_build(b, index, "nonesuch"), "unknown describer")
    assert _snapshot(index.parent) == before
    assert_consistent(index)


def _new_side_file(index: Path, old: str, kind: str):
    def seen() -> bool:
        for p in index.parent.iterdir():
            try:
                idx, g, k = split_side_path(p)
            except PlaceprintError:
                continue
            if idx == index and g not in (None, old) and k == kind:
                return True
        return False

    return seen


def _index_temporary(index: Path):
    return lambda: any(
        p.name.startswith("." + index.name + ".") and p.name.endswith(".tmp")
        for p in index.parent.iterdir()
    )


@pytest.mark.parametrize("point", ["describer", "places", "geo", "index-temp", "1s"])
def test_kill_9_during_a_rebuild_leaves_a_working_set(collections, point):
    root, a, b, template = collections
    index = _copy_set(template, root / f"kill-{point}")
    folder = index.parent
    old = assert_consistent(index)
    when = {
        "describer": _new_side_file(index, old, "describer"),
        "places": _new_side_file(index, old, "places"),
        "geo": _new_side_file(index, old, "geo"),
        "index-temp": _index_temporary(index),
    }.get(point)
    describer = LEARNS if point == "describer" else FAST
    proc = subprocess.Popen(
        [*CLI, "index", "build", str(b), "-o", str(index), *_describer_args(describer), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PLACEPRINT_DEBUG": ""},
    )
    deadline = time.monotonic() + (float(point[:-1]) if when is None else 120)
    while proc.poll() is None and time.monotonic() < deadline:
        if when is not None and when():
            break
        time.sleep(0.002)
    killed = proc.poll() is None
    if point in ("describer", "places", "geo"):  # these points are seen before the end
        assert killed
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    current = assert_consistent(index)  # old or new, but whole
    assert current == old or not killed
    # the next build cleans up what the dead one left, and works
    assert _build(a, index).returncode == 0
    newest = assert_consistent(index)
    left = {p.name for p in folder.iterdir() if not p.name.endswith(".lock")}
    assert left == {index.name} | _parts(index, current) | _parts(index, newest)


def test_a_mixed_set_is_refused(collections, tmp_path):
    root, a, b, template = collections
    one = _copy_set(template, tmp_path / "one")
    two = tmp_path / "two" / "photos.idx"
    two.parent.mkdir()
    assert _build(b, two).returncode == 0
    # a place store and a geolocator of another build, under this build's names
    for kind in ("places", "geo"):
        side_path(one, kind).write_bytes(side_path(two, kind).read_bytes())
    from placeprint.serve.app import create_app

    with pytest.raises(PlaceprintError, match="another build"):
        create_app(one)
    proc = run_cli("locate", next(a.parent.glob("*.png")), "--index", one, "--no-map")
    assert_one_line_error(proc, "another build")

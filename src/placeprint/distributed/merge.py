"""Indexes built apart, joined: ``index merge A B ... -o OUT`` and ``index add IDX SOURCE``.

Parts must share one codec and one describer (``index build --codec-from A`` builds a
part with A's); their places are laid end to end in the order given (route segments stay
in order; ids are renumbered: part 2's first place follows part 1's last) and their place
stores are merged the same way. The result is written as one new index set (its own
generation, :mod:`placeprint.indexfiles`): a failed run leaves the old files working.

Geotagged collections carry a geolocator (``.geo``). It is fitted again on the parts'
geotagged photos laid end to end (their descriptors are stored in it; copies across parts
left out as a build leaves them out), with the cells setting it was built with. That is
the geolocator a build of all the photos fits: the same rows, order and seed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from placeprint.errors import PlaceprintError


def _load_part(path: Path):
    from placeprint.index import OverloadedIndex

    if not path.is_file():
        raise PlaceprintError(f"index not found: {path}")
    return OverloadedIndex.load(path)


def _geotagged_of(path: Path, offset: int) -> dict | None:
    """The geotagged rows of the index at ``path`` (its geolocator's descriptors, positions,
    absolute photo paths and route rows shifted by ``offset``), or None without one."""
    from placeprint.geo.verified import LEGACY_VERIFY_TOP
    from placeprint.indexfiles import side_path
    from placeprint.locate import load_geolocator

    if not side_path(path, "geo").is_file():
        return None
    geo, _ = load_geolocator(path)
    meta = geo.user_meta_
    folder = path.parent.resolve()
    paths = [str(p if Path(p).is_absolute() else (folder / p).resolve()) for p in meta["paths"]]
    rows = meta.get("route_rows")
    if rows is None or len(rows) != len(paths):
        raise PlaceprintError(f"{path}'s geolocator does not say which places it holds: rebuild it")
    default_cells = "none" if geo.cells is None else "auto"
    return {"X": geo.descriptors_, "lat": geo.lat_, "lon": geo.lon_, "paths": paths,
            "rows": [int(r) + offset for r in rows], "cells": meta.get("cells", default_cells),
            "describer": meta.get("describer"),
            "verify_top": meta.get("verify_top", LEGACY_VERIFY_TOP)}  # fmt: skip


def _join_geotagged(parts: list[dict | None]) -> dict | None:
    """Geotagged rows of all parts end to end, later copies of a photo left out."""
    from placeprint.duplicates import duplicate_of

    have = [p for p in parts if p is not None]
    if not have:
        return None
    if len({p["cells"] for p in have}) > 1:
        raise PlaceprintError("the parts' geolocators use different cells: rebuild them alike")
    if len({p["verify_top"] for p in have}) > 1:
        raise PlaceprintError(
            "the parts' geolocators verify different numbers of photos (--verify-top): "
            "rebuild them alike"
        )
    paths = sum((p["paths"] for p in have), [])
    twins = duplicate_of(paths)
    keep = np.array([i not in twins for i in range(len(paths))], bool)
    for i in sorted(twins):
        print(
            f"warning: {paths[i]} is a copy of {paths[twins[i]]}: left out of the geolocator",
            file=sys.stderr,
        )
    return {
        "X": np.concatenate([p["X"] for p in have])[keep],
        "lat": np.concatenate([p["lat"] for p in have])[keep],
        "lon": np.concatenate([p["lon"] for p in have])[keep],
        "paths": [p for p, k in zip(paths, keep, strict=True) if k],
        "rows": [r for r, k in zip(sum((p["rows"] for p in have), []), keep, strict=True) if k],
        "cells": have[0]["cells"],
        "describer": have[0]["describer"],
        "verify_top": have[0]["verify_top"],
    }


def _no_places(n: int) -> dict[str, list]:
    """Columns of ``n`` places that know nothing yet (no path, position, time)."""
    return {"paths": [""] * n, "lat": [np.nan] * n, "lon": [np.nan] * n,
            "timestamp": [np.nan] * n, "heading": [np.nan] * n, "group": [None] * n}  # fmt: skip


def _places_of(path: Path, n: int) -> dict[str, list]:
    """Every place of the index at ``path`` (its store, or just numbered rows)."""
    from placeprint.indexfiles import side_path
    from placeprint.serve.store import PlaceStore

    store_file = side_path(path, "places")
    rows = _no_places(n)
    if not store_file.is_file():
        return rows
    with PlaceStore.open(store_file) as store:
        for place in store.many(range(n)):
            i = place["id"]
            p = place["path"] or ""
            if p and not Path(p).is_absolute():
                p = str((store.folder / p).resolve())
            rows["paths"][i] = p
            for key in ("lat", "lon", "timestamp", "heading"):
                rows[key][i] = np.nan if place.get(key) is None else place[key]
            rows["group"][i] = place.get("group")
    return rows


def write_joined(
    parts, places: list[dict], state_from: Path | None, output: Path, geotagged=None
) -> int:
    """Write ``parts`` (indexes with one codec) as one index set at ``output``, with a
    geolocator fitted on ``geotagged`` (:func:`_join_geotagged`) when given."""
    from placeprint.index import OverloadedIndex
    from placeprint.indexfiles import building
    from placeprint.serve.store import write_place_store

    merged = OverloadedIndex.merge(parts)
    with building(output) as build:
        if state_from is not None:
            from placeprint.atomic import atomic_write_bytes

            atomic_write_bytes(build.side("describer"), state_from.read_bytes())
        joined = {k: sum((p[k] for p in places), []) for k in places[0]}
        if any(joined["paths"]):
            write_place_store(
                build.side("places"),
                joined["paths"],
                np.array(joined["lat"], float),
                np.array(joined["lon"], float),
                timestamp=np.array(joined["timestamp"], float),
                heading=np.array(joined["heading"], float),
                group=joined["group"],
                generation=build.generation,
            )
        if geotagged is not None and len(geotagged["paths"]) >= 3:
            _write_geolocator(geotagged, output, build)
        merged.generation = build.generation
        size = merged.save(output)
        build.committed = True
    return size


def _write_geolocator(geotagged: dict, output: Path, build) -> None:
    from placeprint.locate import build_geolocator

    base = output.parent.resolve()
    paths = [str(Path(p).relative_to(base)) if Path(p).is_relative_to(base) else p
             for p in geotagged["paths"]]  # fmt: skip
    build_geolocator(
        geotagged["X"], geotagged["lat"], geotagged["lon"], paths, geotagged["describer"],
        build.side("geo"), geotagged["cells"], route_rows=geotagged["rows"],
        generation=build.generation, verify_top=geotagged["verify_top"],
    )  # fmt: skip


def _state_file(path: Path, index) -> Path | None:
    from placeprint.indexfiles import side_path

    if "state" not in (index.describer or {}):
        return None
    state = side_path(path, "describer")
    if not state.is_file():
        raise PlaceprintError(f"{path}'s describer state {state} is missing")
    return state


def merge_indexes(inputs: list[Path], output: Path) -> int:
    """One index of ``inputs`` end to end; returns the bytes written."""
    if len(inputs) < 2:
        raise PlaceprintError("give at least two indexes to merge")
    parts = [_load_part(Path(p)) for p in inputs]
    for p, index in zip(inputs[1:], parts[1:], strict=True):
        if index.describer != parts[0].describer:
            raise PlaceprintError(
                f"{p} was described differently from {inputs[0]} (describer or its state); "
                f"build it with --codec-from {inputs[0]}"
            )
    places = [_places_of(Path(p), ix.ntotal) for p, ix in zip(inputs, parts, strict=True)]
    offsets = np.cumsum([0] + [ix.ntotal for ix in parts])
    geotagged = _join_geotagged(
        [_geotagged_of(Path(p), int(o)) for p, o in zip(inputs, offsets, strict=False)]
    )
    state = _state_file(Path(inputs[0]), parts[0])
    return write_joined(parts, places, state, output, geotagged)


def add_segment(index_path: Path, source: Path, progress: bool = True) -> tuple[int, int]:
    """Append the images of ``source`` to the index at ``index_path`` (described with its
    describer, encoded with its codec); returns ``(bytes written, places added)``."""
    from placeprint.index import OverloadedIndex
    from placeprint.sources import describe_source, source_positions

    index_path, source = Path(index_path), Path(source)
    existing = _load_part(index_path)
    if not source.exists():
        raise PlaceprintError(f"not found: {source}")
    if source.suffix == ".npy":
        if (existing.describer or {}).get("name") != "npy":
            raise PlaceprintError(f"{index_path} indexes images; add a folder or manifest")
        X, _, items = describe_source(source, None)
    else:
        from placeprint.indexfiles import side_path

        X, _, items = describe_source(
            source, existing.describer, progress=progress,
            state_file=side_path(index_path, "describer"),
        )  # fmt: skip
    part = OverloadedIndex(existing.codec, existing.requested_key_bits, existing.bucket_size,
                           existing.describer, existing.key_frames)  # fmt: skip
    part.add(X)
    new_places = {**_no_places(len(items)), "paths": list(items)}
    if source.suffix != ".npy":
        positions = source_positions(source, items)
        if positions is not None:
            new_places["lat"], new_places["lon"] = list(positions[0]), list(positions[1])
        new_places["paths"] = [str(Path(p).resolve()) for p in items]
    places = [_places_of(index_path, existing.ntotal), new_places]
    geotagged = None
    old = _geotagged_of(index_path, 0)
    fresh = _new_geotagged(X, new_places, existing.ntotal, old, existing.describer)
    if old is not None or fresh is not None:
        geotagged = _join_geotagged([old, fresh])
    state = _state_file(index_path, existing)
    size = write_joined([existing, part], places, state, index_path, geotagged)
    return size, len(items)


def _new_geotagged(X, new_places: dict, offset: int, old: dict | None, describer) -> dict | None:
    """The added segment's photos that have positions, as :func:`_geotagged_of` gives them
    (with the index's geolocator settings)."""
    from placeprint.geo.verified import DEFAULT_VERIFY_TOP

    lat, lon = np.array(new_places["lat"], float), np.array(new_places["lon"], float)
    have = np.flatnonzero(np.isfinite(lat) & np.isfinite(lon))
    if len(have) == 0:
        return None
    return {"X": np.asarray(X, np.float32)[have], "lat": lat[have], "lon": lon[have],
            "paths": [new_places["paths"][i] for i in have],
            "rows": [int(i) + offset for i in have],
            "cells": old["cells"] if old else "auto",
            "describer": old["describer"] if old else describer,
            "verify_top": old["verify_top"] if old else DEFAULT_VERIFY_TOP}  # fmt: skip

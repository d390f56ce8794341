"""Indexes built apart, joined: ``index merge A B ... -o OUT`` and ``index add IDX SOURCE``.

Parts must share one codec and one describer (``index build --codec-from A`` builds a
part with A's); their places are laid end to end in the order given (route segments stay
in order; ids are renumbered: part 2's first place follows part 1's last) and their place
stores are merged the same way. The result is written as one new index set (its own
generation, :mod:`placeprint.indexfiles`): a failed run leaves the old files working.
Indexes with a geolocator (geotagged photo collections) are refused: rebuild those.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from placeprint.errors import PlaceprintError


def _load_part(path: Path):
    from placeprint.index import OverloadedIndex
    from placeprint.indexfiles import side_path

    if not path.is_file():
        raise PlaceprintError(f"index not found: {path}")
    index = OverloadedIndex.load(path)
    if side_path(path, "geo").is_file():
        raise PlaceprintError(
            f"{path} has a geolocator (a geotagged collection): merging those is not supported; "
            "build one index of all the photos"
        )
    return index


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


def write_joined(parts, places: list[dict], state_from: Path | None, output: Path) -> int:
    """Write ``parts`` (indexes with one codec) as one index set at ``output``."""
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
        merged.generation = build.generation
        size = merged.save(output)
        build.committed = True
    return size


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
    return write_joined(parts, places, _state_file(Path(inputs[0]), parts[0]), output)


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
    size = write_joined([existing, part], places, _state_file(index_path, existing), index_path)
    return size, len(items)

"""Turn what a user points at (images, a manifest, a ``.npy`` of descriptors) into descriptors.

A source is a folder of images (route order = file names), a manifest (CSV or
Parquet with ``path,lat,lon,...``: the images in the manifest's order, with their
positions), a shard list (``.txt``: folders and manifests, one a line, taken in order)
or a ``.npy`` of descriptors.

Describers that learn (vocabularies, whitening, CRN) are fitted on the database
images when an index is built, and their state is saved next to the index as
``<index>.describer``; queries against that index load it from there.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import numpy as np

from placeprint.errors import PlaceprintError

NPY_DESCRIBER = {"name": "npy"}
MANIFEST_SUFFIXES = (".csv", ".parquet")


def is_manifest(source: str | Path) -> bool:
    """Whether ``source`` names a manifest file (CSV or Parquet)."""
    return Path(source).suffix.lower() in MANIFEST_SUFFIXES


SHARD_LIST_SUFFIX = ".txt"


def is_shard_list(source: str | Path) -> bool:
    """Whether ``source`` names a list of shards (``.txt``: one folder or manifest a line)."""
    return Path(source).suffix.lower() == SHARD_LIST_SUFFIX


def shard_list(source: str | Path) -> list[Path]:
    """The shards of a shard list, in order: one folder of images or manifest a line
    (relative paths from the list's folder; blank lines and ``#`` comments skipped)."""
    source = Path(source)
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PlaceprintError(f"cannot read the shard list {source}: {exc}") from None
    shards = []
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        shard = source.parent / line
        if not shard.exists():
            raise PlaceprintError(f"{source} line {number}: not found: {shard}")
        if not (shard.is_dir() or is_manifest(shard)):
            raise PlaceprintError(
                f"{source} line {number}: a shard is a folder of images or a manifest: {shard}"
            )
        shards.append(shard)
    if not shards:
        raise PlaceprintError(f"{source} lists no shards")
    return shards


def source_files(source: str | Path) -> list[Path]:
    """The images of a folder (sorted by name) or of a manifest (in its order)."""
    from placeprint.describe.images import list_images

    source = Path(source)
    if source.is_dir():
        return list_images(source)
    if is_shard_list(source):
        return [f for shard in shard_list(source) for f in source_files(shard)]
    if is_manifest(source):
        from placeprint.geo.collection import read_manifest_rows

        paths = read_manifest_rows(source).paths  # rows without a position too
        if not any(paths):
            raise PlaceprintError(f"{source} has no path column: it names no images")
        return [Path(p) for p in paths if p]
    raise PlaceprintError(
        f"{source}: give a folder of images, a manifest (.csv), a shard list (.txt) or a .npy"
    )


def source_positions(source: str | Path, files: list[str]):
    """``(lat, lon, have)`` of ``files`` (as returned by :func:`describe_source`), or None.

    Positions come from the manifest, or from each image's EXIF GPS for a folder;
    ``have`` marks the files with a usable position (a manifest row with a missing or
    broken one leaves its image without: :func:`manifest_warnings`). None when no file
    has one.
    """
    import numpy as np

    source = Path(source)
    lat = np.full(len(files), np.nan)
    lon = np.full(len(files), np.nan)
    if is_shard_list(source):
        where = {str(Path(f)): i for i, f in enumerate(files)}
        for shard in shard_list(source):
            mine = [str(f) for f in source_files(shard) if str(Path(f)) in where]
            found = source_positions(shard, mine) if mine else None
            if found is not None:
                for k, f in enumerate(mine):
                    lat[where[str(Path(f))]], lon[where[str(Path(f))]] = found[0][k], found[1][k]
    elif is_manifest(source):
        from placeprint.geo.collection import read_manifest_rows

        c = read_manifest_rows(source).collection  # rows with a usable position
        where = {str(Path(p)): i for i, p in enumerate(c.paths)}
        rows = [where.get(str(Path(f)), -1) for f in files]
        for i, r in enumerate(rows):
            if r >= 0:
                lat[i], lon[i] = c.lat[r], c.lon[r]
    elif source.is_dir():
        from placeprint.geo.exif import read_gps

        for i, f in enumerate(files):
            try:
                fix = read_gps(f)
            except PlaceprintError:
                continue
            lat[i], lon[i] = fix.lat, fix.lon
    have = np.isfinite(lat) & np.isfinite(lon)
    return (lat, lon, have) if have.any() else None


def load_npy_descriptors(path: str | Path) -> np.ndarray:
    """Read an ``(n, d)`` float ``.npy`` file of descriptors, validated."""
    from placeprint.codec.coarse import check_descriptors

    path = Path(path)
    try:
        X = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise PlaceprintError(f"file not found: {path}") from None
    except (ValueError, OSError, EOFError) as exc:
        raise PlaceprintError(f"cannot read {path} as a .npy array: {exc}") from None
    return check_descriptors(X, what=f"descriptors in {path}")


def state_path_for(index_path: str | Path) -> Path:
    """Where a learning describer's state lives for the index at ``index_path``
    (``INDEX.<generation>.describer``; :mod:`placeprint.indexfiles`)."""
    from placeprint.indexfiles import side_path

    return side_path(index_path, "describer")


def make_describer(config: dict | None, state_file: str | Path | None = None):
    """Describer from an index's ``{"name", **options, ["state"]}`` config.

    A config with a ``state`` fingerprint needs ``state_file`` (saved by ``index build``);
    the loaded state must have the same fingerprint.
    """
    from placeprint import describe
    from placeprint.describe.base import Describer

    config = dict(config or {"name": "seqslam"})
    fingerprint = config.pop("state", None)
    name = config.pop("name", "seqslam")
    if name == "npy":
        raise PlaceprintError("this index was built from a .npy of descriptors: query with a .npy")
    if fingerprint is None:
        return describe.get(name, **config)
    if state_file is None or not Path(state_file).is_file():
        raise PlaceprintError(
            f"describer {name!r} needs its learned state {state_file or '<index>.describer'}, "
            "saved next to the index by `placeprint index build`; copy it with the index"
        )
    d = Describer.load(state_file)
    if d.name != name or d.state_fingerprint() != fingerprint:
        raise PlaceprintError(
            f"{state_file} does not belong to this index (describer state differs); rebuild it"
        )
    return d


def describe_source(
    source: str | Path,
    describer: dict | None = None,
    progress: bool = True,
    state_file: str | Path | None = None,
    fit_state_to: str | Path | None = None,
    cache: str | Path | None | bool = True,
    positives: str | Path | None = None,
    runner=None,
) -> tuple[np.ndarray, dict, list[str]]:
    """Descriptors ``(n, d) float32`` of ``source``, the describer config used, and the items.

    ``source`` is a ``.npy`` file, a folder of images (sorted by file name = route
    order) or a manifest (its images in order); the items are the described files'
    paths (``NAME.npy[i]`` for a ``.npy``). ``describer`` is ``{"name": ..., **options}``
    (default SeqSLAM), or an index's stored config (then ``state_file`` holds a learner's
    state). With ``fit_state_to``, a learning describer is fitted on these images and
    its state written there; a ``positives`` folder (the same places under another
    condition, in the same order as the first images) is passed to describers whose
    ``fit`` takes positives.
    Unreadable images are reported on stderr and skipped (their names are left out).
    ``cache=True`` caches descriptors under ``cache_root()/descriptors``. A ``runner``
    (:class:`placeprint.distributed.runner.DaskRunner`) describes the images on a cluster
    instead (fitting stays here).
    """
    source = Path(source)
    if not source.exists():
        raise PlaceprintError(f"not found: {source}")
    if source.is_file() and not is_manifest(source) and not is_shard_list(source):
        if source.suffix != ".npy":
            raise PlaceprintError(f"{source}: give a folder of images or a .npy of descriptors")
        if describer and describer.get("name") not in (None, "npy"):
            raise PlaceprintError(
                f"{source} holds descriptors already; it cannot be described with "
                f"{describer['name']!r}"
            )
        X = load_npy_descriptors(source)
        return X, dict(NPY_DESCRIBER), [f"{source.name}[{i}]" for i in range(len(X))]
    from placeprint.describe.images import list_images

    if fit_state_to is not None:
        d = make_describer({k: v for k, v in (describer or {}).items() if k != "state"})
    else:
        d = make_describer(describer, state_file)
    files = source_files(source)
    if fit_state_to is not None:
        if d.learns:
            if progress:
                print(f"fitting describer {d.name!r} on {len(files)} images", file=sys.stderr)
            takes = "positives" in inspect.signature(d.fit).parameters
            if positives is not None and takes:
                pos = list_images(positives)[: len(files)]
                d.fit(files, positives=pos)
            else:
                d.fit(files)
            d.save(fit_state_to)
    if runner is not None:
        X, kept = runner.describe(d, files)
    else:
        X, kept = describe_files(d, files, progress=progress, cache=cache)
    return X, d.config(), [str(files[i]) for i in kept]


def describe_files(
    describer,
    files: list[Path],
    progress: bool = True,
    batch: int = 32,
    cache: str | Path | None | bool = True,
    workers: int | None = None,
) -> tuple[np.ndarray, list[int]]:
    """Describe ``files`` in batches with a progress bar, cached: ``(n_ok, dim)`` and kept indices.

    Unreadable files are reported on stderr by name and skipped.
    """
    from placeprint.config import cache_root
    from placeprint.describe.cache import describe_collection

    folder = (cache_root() / "descriptors") if cache is True else (cache or None)
    result = describe_collection(
        describer, files, cache=folder, batch=batch, workers=workers, progress=progress
    )
    if not result.kept:
        first = f": {result.failed[0][1]}" if result.failed else ""
        more = f" (and {len(result.failed) - 1} more)" if len(result.failed) > 1 else ""
        raise PlaceprintError(f"no image could be read{first}{more}")
    for name, reason in result.failed:
        print(f"warning: skipped {name}: {reason}", file=sys.stderr)
    return result.descriptors, result.kept


def manifest_warnings(source: str | Path) -> list[str]:
    """One line per manifest row whose position, time or heading cannot be used (the
    image is still indexed; a row without a position stays out of the geolocator)."""
    if is_shard_list(source):
        return [line for shard in shard_list(source) for line in manifest_warnings(shard)]
    if not is_manifest(source):
        return []
    from placeprint.geo.collection import read_manifest_rows

    return [f"{label}: {reason}" for label, reason in read_manifest_rows(source).skipped]

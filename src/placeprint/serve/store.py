"""The place store: what the service knows about each place of an index, in SQLite.

A place is a route position of the compact index (id ``0..n-1``); the store keeps its
image path, position (degrees), heading (degrees), timestamp (seconds) and sequence
(group) name, so that a match can be shown with its photo. The file is written once,
atomically, by :func:`write_place_store` and only ever read by :class:`PlaceStore`,
which opens it read-only.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> file = folder / "a.places.sqlite"
>>> _ = write_place_store(file, [str(folder / "x.jpg")], lat=[55.7], lon=[13.2])
>>> with PlaceStore.open(file) as store:
...     store.get(0)["path"], store.get(0)["lat"]
('x.jpg', 55.7)
"""

from __future__ import annotations

import math
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import numpy as np

from placeprint.atomic import _MODE
from placeprint.errors import PlaceprintError

PLACES_SUFFIX = ".places.sqlite"
FORMAT = "placeprint-places"
VERSION = "1"
_COLUMNS = ("id", "path", "lat", "lon", "heading", "timestamp", "sequence")
_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
    "CREATE TABLE places (id INTEGER PRIMARY KEY, path TEXT, lat REAL, lon REAL, "
    "heading REAL, timestamp REAL, sequence TEXT)",
)
_CHUNK = 500  # ids per query in PlaceStore.many (well under SQLite's variable limit)
_MAX_ID = 2**63 - 1


def store_path_for(index_path: str | Path) -> Path:
    """The place store that goes with the index at ``index_path``:
    ``INDEX.<generation>.places.sqlite`` (:mod:`placeprint.indexfiles`)."""
    from placeprint.indexfiles import side_path

    return side_path(index_path, "places")


def _floats(name: str, values, n: int, limit: float | None = None) -> list[float | None] | None:
    """``values`` as n floats, NaN -> None (``None`` stays ``None``); checks ``|v| <= limit``."""
    if values is None:
        return None
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise PlaceprintError(f"{name} must be numbers: {err}") from None
    if arr.ndim != 1 or len(arr) != n:
        raise PlaceprintError(f"{name} must have one value per path ({n}), got shape {arr.shape}")
    bad = np.isinf(arr) if limit is None else np.abs(arr) > limit
    if bad.any():
        i = int(bad.argmax())
        where = "finite" if limit is None else f"within +-{limit:g} degrees"
        raise PlaceprintError(f"{name} must be {where}, got {arr[i]} at row {i}")
    out = arr.astype(object)
    out[np.isnan(arr)] = None
    return out.tolist()


def _groups(group, n: int) -> list[str | None] | None:
    if group is None:
        return None
    group = list(group)
    if len(group) != n:
        raise PlaceprintError(f"group must have one value per path ({n}), got {len(group)}")
    out: list[str | None] = []
    for g in group:
        missing = g is None or (isinstance(g, float | np.floating) and math.isnan(g))
        out.append(None if missing else str(g))
    return out


def _stored_paths(paths: Sequence[str | Path], folder: Path, base: Path) -> list[str]:
    """Paths relative to ``folder`` (POSIX form) when inside it, else absolute.

    Paths are normalised lexically (no file-system calls, so a million take a second);
    ``folder`` and ``base`` must be resolved already.
    """
    inside = str(folder).rstrip(os.sep) + os.sep
    out = []
    for i, p in enumerate(paths):
        if not isinstance(p, str | os.PathLike) or not os.fspath(p):
            raise PlaceprintError(f"paths[{i}] must be a non-empty path, got {p!r}")
        full = os.path.normpath(os.path.join(base, p))
        out.append(full[len(inside) :].replace(os.sep, "/") if full.startswith(inside) else full)
    return out


def write_place_store(
    path: str | Path,
    paths: Sequence[str | Path],
    lat=None,
    lon=None,
    timestamp=None,
    heading=None,
    group=None,
    base: str | Path | None = None,
    generation: str | None = None,
) -> Path:
    """Write the place store at ``path`` atomically; place ``i`` is row ``i`` of the arrays.

    ``paths`` are the places' images, relative paths taken relative to ``base`` (default:
    the current folder); they are stored relative to the store's folder when inside it,
    else absolute. ``lat``/``lon`` (degrees, given together), ``timestamp`` (seconds) and
    ``heading`` (degrees) are optional arrays of ``len(paths)`` floats, NaN = unknown
    (stored as NULL; a row with either of lat/lon unknown has no position); ``group`` is
    an optional sequence name per place (None = none); ``generation`` is the build of
    the index the store belongs to (recorded, and checked on loading). Returns ``path``.
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise PlaceprintError(f"folder does not exist: {folder}")
    if isinstance(paths, str | os.PathLike):
        raise PlaceprintError("paths must be a list of paths, not one path")
    paths = list(paths)
    n = len(paths)
    if (lat is None) != (lon is None):
        raise PlaceprintError("give lat and lon together (or neither)")
    lat_v, lon_v = _floats("lat", lat, n, 90.0), _floats("lon", lon, n, 180.0)
    if lat_v is not None:
        for i in range(n):
            if lat_v[i] is None or lon_v[i] is None:
                lat_v[i] = lon_v[i] = None
    time_v, head_v = _floats("timestamp", timestamp, n), _floats("heading", heading, n)
    group_v = _groups(group, n)
    base = Path(base).resolve() if base is not None else Path.cwd()
    stored = _stored_paths(paths, folder.resolve(), base)
    none = [None] * n
    rows = zip(
        range(n),
        stored,
        lat_v or none,
        lon_v or none,
        head_v or none,
        time_v or none,
        group_v or none,
        strict=True,
    )
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        _build(tmp, rows, n, generation)
        os.chmod(tmp, _MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        Path(tmp + "-journal").unlink(missing_ok=True)
        raise
    return path


def _build(tmp: str, rows: Iterable[tuple], n: int, generation: str | None = None) -> None:
    conn = sqlite3.connect(tmp)
    try:
        conn.execute("PRAGMA journal_mode=OFF")  # a private temporary file: no journal needed
        conn.execute("PRAGMA synchronous=OFF")
        for statement in _SCHEMA:
            conn.execute(statement)
        created = datetime.now(UTC).isoformat(timespec="seconds")
        meta = [("format", FORMAT), ("version", VERSION), ("created", created), ("places", str(n))]
        if generation:
            meta.append(("generation", generation))
        conn.executemany("INSERT INTO meta VALUES (?, ?)", meta)
        conn.executemany("INSERT INTO places VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        conn.commit()
    finally:
        conn.close()


def _check_size(path: Path) -> None:
    """Refuse a file shorter than the size its SQLite header announces (a truncated copy)."""
    with open(path, "rb") as fh:
        head = fh.read(100)
    if len(head) < 100 or not head.startswith(b"SQLite format 3\x00"):
        raise PlaceprintError(f"{path} is not a placeprint place store")
    page = int.from_bytes(head[16:18], "big")
    page = 65536 if page == 1 else page
    pages = int.from_bytes(head[28:32], "big")
    valid = head[24:28] == head[92:96]  # the in-header size is valid only then
    if valid and pages and path.stat().st_size < page * pages:
        raise PlaceprintError(
            f"{path} is truncated ({path.stat().st_size} of {page * pages} bytes)"
        )


class PlaceStore:
    """A read-only place store; safe to share between threads. Use :meth:`open`."""

    def __init__(self, path: Path, conn: sqlite3.Connection, n: int, generation=None):
        self.path = path
        self.generation = generation  # the build of the index it belongs to
        self.folder = path.parent.resolve()
        self._conn = conn
        self._n = n
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str | Path) -> PlaceStore:
        """Open the store at ``path`` read-only; a missing, foreign or damaged file is an error."""
        path = Path(path)
        if not path.is_file():
            raise PlaceprintError(
                f"no place store at {path}: build the index again "
                "(`placeprint index build DIR_OR_MANIFEST -o INDEX`)"
            )
        _check_size(path)
        uri = f"file:{quote(str(path.resolve()))}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        try:
            conn.execute("PRAGMA query_only=ON")
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("format") != FORMAT:
                raise PlaceprintError(f"{path} is not a placeprint place store")
            if meta.get("version") != VERSION:
                raise PlaceprintError(
                    f"{path} is a place store of version {meta.get('version')!r}; "
                    f"this placeprint reads version {VERSION}: upgrade placeprint"
                )
            conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM places LIMIT 1").fetchall()
            (n,) = conn.execute("SELECT COUNT(*) FROM places").fetchone()
            generation = meta.get("generation")
        except sqlite3.Error:
            conn.close()
            raise PlaceprintError(f"{path} is not a placeprint place store") from None
        except BaseException:
            conn.close()
            raise
        return cls(path, conn, int(n), generation)

    def __len__(self) -> int:
        return self._n

    def __enter__(self) -> PlaceStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PlaceStore({str(self.path)!r}, places={self._n})"

    def _query(self, sql: str, args: Sequence) -> list[tuple]:
        with self._lock:
            if self._conn is None:
                raise PlaceprintError(f"the place store {self.path} is closed")
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as err:
                raise PlaceprintError(f"cannot read the place store {self.path}: {err}") from None

    @staticmethod
    def _check_id(place_id) -> int:
        if isinstance(place_id, bool) or not isinstance(place_id, int | np.integer):
            raise PlaceprintError(f"a place id must be an integer, got {place_id!r}")
        if place_id < 0:
            raise PlaceprintError(f"a place id must be >= 0, got {place_id}")
        return int(place_id)

    def get(self, place_id: int) -> dict | None:
        """The place ``place_id`` as a dict of ``_COLUMNS``; ``None`` if there is no such place."""
        place_id = self._check_id(place_id)
        if place_id > _MAX_ID:
            return None
        rows = self._query(f"SELECT {', '.join(_COLUMNS)} FROM places WHERE id = ?", (place_id,))
        return dict(zip(_COLUMNS, rows[0], strict=True)) if rows else None

    def many(self, ids: Iterable[int]) -> list[dict]:
        """The places ``ids`` in the order given (repeats repeated), unknown ids left out."""
        ids = [self._check_id(i) for i in ids]
        wanted = sorted({i for i in ids if i <= _MAX_ID})
        found: dict[int, dict] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            sql = f"SELECT {', '.join(_COLUMNS)} FROM places WHERE id IN ({marks})"
            for row in self._query(sql, chunk):
                found[row[0]] = dict(zip(_COLUMNS, row, strict=True))
        return [dict(found[i]) for i in ids if i in found]

    def image_file(self, place_id: int) -> Path | None:
        """The place's image file, resolved; ``None`` unless a file inside the store folder."""
        place = self.get(place_id)
        if place is None or not place["path"]:
            return None
        try:
            full = (self.folder / place["path"]).resolve()
        except (OSError, RuntimeError):  # a symlink loop, an unreadable folder
            return None
        if not full.is_relative_to(self.folder) or not full.is_file():
            return None
        return full

    def close(self) -> None:
        """Close the connection; later queries raise :class:`PlaceprintError`."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

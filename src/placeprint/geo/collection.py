"""Collections of photos with positions: manifests on disk and EXIF GPS from a folder.

A :class:`Collection` is the list of images of a place-recognition database with their
WGS84 positions (degrees) and, when known, camera heading (degrees), capture time
(seconds since the Unix epoch, UTC) and group (sequence or album id).
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from placeprint.errors import PlaceprintError

LAT_NAMES = ("lat", "latitude")
LON_NAMES = ("lon", "lng", "long", "longitude")
PATH_NAMES = ("path", "file", "image")
HEADING_NAMES = ("heading", "bearing")
TIME_NAMES = ("timestamp", "time", "datetime")
GROUP_NAMES = ("group", "sequence", "album")

_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_DESCRIPTION = 0x010E
_DATETIME = 0x0132
_DATETIME_ORIGINAL = 0x9003
_OFFSET_TIME_ORIGINAL = 0x9011
_GPS_TIME, _GPS_IMG_DIRECTION, _GPS_DATE = 7, 17, 29


@dataclass
class Collection:
    """Images with positions: ``paths`` (n,), ``lat``/``lon`` (n,) float64 degrees WGS84.

    Optional per-image ``heading`` (n,) degrees clockwise from north, ``timestamp`` (n,)
    seconds since the Unix epoch (UTC), NaN where unknown, and ``group`` (n,) sequence or
    album ids ("" where unknown).

    >>> c = Collection(["a.jpg", "b.jpg"], np.array([55.7, 52.5]), np.array([13.2, 13.4]))
    >>> len(c.subset([1])), c.subset([1]).paths
    (1, ['b.jpg'])
    """

    paths: list[str]
    lat: np.ndarray
    lon: np.ndarray
    heading: np.ndarray | None = None
    timestamp: np.ndarray | None = None
    group: list[str] | None = None

    def __post_init__(self) -> None:
        self.paths = [str(p) for p in self.paths]
        self.lat = np.asarray(self.lat, dtype=np.float64).reshape(-1)
        self.lon = np.asarray(self.lon, dtype=np.float64).reshape(-1)
        n = len(self.paths)
        if len(self.lat) != n or len(self.lon) != n:
            raise PlaceprintError(
                f"collection has {n} paths but {len(self.lat)} latitudes and "
                f"{len(self.lon)} longitudes"
            )
        validate_positions(self.lat, self.lon)
        for name in ("heading", "timestamp"):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, dtype=np.float64).reshape(-1)
                if len(value) != n:
                    raise PlaceprintError(f"collection has {n} paths but {len(value)} {name}s")
                if np.isinf(value).any():
                    raise PlaceprintError(f"{name} contains inf (use NaN for unknown)")
                setattr(self, name, value)
        if self.group is not None:
            self.group = ["" if g is None else str(g) for g in self.group]
            if len(self.group) != n:
                raise PlaceprintError(f"collection has {n} paths but {len(self.group)} groups")

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: Sequence[int] | np.ndarray) -> Collection:
        """The images at ``indices`` (integer positions or an (n,) boolean mask), in order."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise PlaceprintError(f"mask of shape {idx.shape} for {len(self)} images")
            idx = np.flatnonzero(idx)
        elif idx.size == 0:
            idx = idx.astype(np.int64)
        elif not np.issubdtype(idx.dtype, np.integer):
            raise PlaceprintError("subset indices must be integers or a boolean mask")
        idx = idx.reshape(-1)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise PlaceprintError(f"subset index out of range for {len(self)} images")
        return Collection(
            paths=[self.paths[i] for i in idx],
            lat=self.lat[idx],
            lon=self.lon[idx],
            heading=None if self.heading is None else self.heading[idx],
            timestamp=None if self.timestamp is None else self.timestamp[idx],
            group=None if self.group is None else [self.group[i] for i in idx],
        )


def validate_positions(lat: np.ndarray, lon: np.ndarray) -> None:
    """Raise :class:`PlaceprintError` unless every position is finite with |lat| <= 90 and
    |lon| <= 180 degrees; the message names the first bad rows (0-based)."""
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    if lat.shape != lon.shape:
        raise PlaceprintError(f"lat has shape {lat.shape} but lon has shape {lon.shape}")
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180))
    if bad.any():
        rows = np.flatnonzero(bad.reshape(-1))
        lat1, lon1 = lat.reshape(-1), lon.reshape(-1)
        shown = ", ".join(f"row {i} ({lat1[i]}, {lon1[i]})" for i in rows[:3])
        more = f" and {len(rows) - 3} more" if len(rows) > 3 else ""
        raise PlaceprintError(
            f"invalid positions (need finite |lat| <= 90, |lon| <= 180 degrees): {shown}{more}"
        )


# ----------------------------------------------------------------------------- manifests


def read_manifest(path: str | Path) -> Collection:
    """Read a manifest (CSV with a header, or ``.parquet`` with pyarrow) into a Collection.

    Columns are matched case-insensitively: ``lat``/``latitude``, ``lon``/``lng``/``long``/
    ``longitude`` (required); ``path``/``file``/``image`` (optional, else empty paths);
    ``heading``/``bearing`` (degrees), ``timestamp``/``time``/``datetime`` (ISO 8601 or
    epoch seconds; ISO times without a zone are taken as UTC), ``group``/``sequence``/
    ``album``. Relative paths are resolved against the manifest's folder.
    """
    return _parse_rows(*_read_table(path)).collection


@dataclass
class ManifestRows:
    """A manifest read row by row: ``collection`` holds the rows with a usable position,
    ``paths`` every row's image in manifest order (those without a position too), and
    ``skipped`` ``(image or "row N", reason)`` for every row whose position (or time or
    heading, then ignored) could not be used."""

    collection: Collection
    paths: list[str]
    skipped: list[tuple[str, str]]


def read_manifest_rows(path: str | Path) -> ManifestRows:
    """Like :func:`read_manifest`, but a row with a missing, broken or out-of-range
    position is reported in ``skipped`` instead of stopping the read (its image is kept
    in ``paths``, without a position); a broken time or heading is ignored and reported."""
    return _parse_rows(*_read_table(path), lenient=True)


def _read_table(path: str | Path) -> tuple[Path, list[str], list[tuple[str, list]]]:
    path = Path(path)
    if not path.is_file():
        raise PlaceprintError(f"manifest not found: {path}")
    if path.suffix.lower() == ".parquet":
        header, rows = _read_parquet(path)
    else:
        header, rows = _read_csv(path)
    return path, header, rows


def _read_csv(path: Path) -> tuple[list[str], list[tuple[str, list]]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise PlaceprintError(f"{path}: empty manifest (a header line is required)")
            rows = [
                (f"line {reader.line_num}", row) for row in reader if any(c.strip() for c in row)
            ]
    except UnicodeDecodeError:
        raise PlaceprintError(f"{path}: not a UTF-8 CSV manifest") from None
    except csv.Error as exc:
        raise PlaceprintError(f"{path}: broken CSV: {exc}") from None
    return header, rows


def _read_parquet(path: Path) -> tuple[list[str], list[tuple[str, list]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise PlaceprintError(
            f"reading {path.name} needs pyarrow: pip install 'placeprint[parquet]' "
            "(or use a CSV manifest)"
        ) from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for broken files
        raise PlaceprintError(f"cannot read parquet manifest {path}: {exc}") from None
    columns = table.to_pydict()
    header = list(columns)
    n = table.num_rows
    rows = [(f"row {i + 1}", [columns[h][i] for h in header]) for i in range(n)]
    return header, rows


def _find_column(header: list[str], names: tuple[str, ...]) -> int | None:
    lowered = [str(h).strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


def _parse_rows(
    path: Path, header: list[str], rows: list[tuple[str, list]], lenient: bool = False
) -> ManifestRows:
    cols = {
        key: _find_column(header, names)
        for key, names in [
            ("lat", LAT_NAMES),
            ("lon", LON_NAMES),
            ("path", PATH_NAMES),
            ("heading", HEADING_NAMES),
            ("timestamp", TIME_NAMES),
            ("group", GROUP_NAMES),
        ]
    }
    if cols["lat"] is None or cols["lon"] is None:
        raise PlaceprintError(
            f"{path}: no latitude/longitude columns (need one of {'/'.join(LAT_NAMES)} and "
            f"one of {'/'.join(LON_NAMES)}; header is {', '.join(map(str, header))})"
        )
    n = len(rows)
    lat, lon = np.full(n, np.nan), np.full(n, np.nan)
    heading = np.full(n, np.nan) if cols["heading"] is not None else None
    stamps = np.full(n, np.nan) if cols["timestamp"] is not None else None
    group: list[str] | None = [] if cols["group"] is not None else None
    paths: list[str] = []
    placed = np.zeros(n, bool)
    skipped: list[tuple[str, str]] = []
    base = path.parent

    def cell(row: list, key: str):
        j = cols[key]
        return row[j] if j is not None and j < len(row) else None

    def attempt(label: str, what: str | None, read, *args):
        """``read(*args)``; in a lenient read a failure is reported, not raised."""
        try:
            return read(*args), True
        except PlaceprintError as exc:
            if not lenient:
                raise
            reason = str(exc).replace(f"{path}, ", "", 1)
            skipped.append((label, reason + (f" ({what} ignored)" if what else "")))
            return None, False

    for i, (where, row) in enumerate(rows):
        p = cell(row, "path")
        p = "" if p is None else str(p).strip()
        if p and not os.path.isabs(p):
            p = str(base / p)
        paths.append(p)
        label = p or f"{path}, {where}"
        if heading is not None:
            value, _ = attempt(
                label, "heading", _number, cell(row, "heading"), "heading", path, where
            )
            heading[i] = np.nan if value is None else value
        if stamps is not None:
            value, _ = attempt(label, "time", _timestamp, cell(row, "timestamp"), path, where)
            stamps[i] = np.nan if value is None else value
        if group is not None:
            g = cell(row, "group")
            group.append("" if g is None else str(g).strip())
        position, placed[i] = attempt(
            label, None, _position, cell(row, "lat"), cell(row, "lon"), path, where
        )
        if placed[i]:
            lat[i], lon[i] = position
    keep = np.flatnonzero(placed)
    collection = Collection(
        [paths[i] for i in keep],
        lat[keep],
        lon[keep],
        heading=None if heading is None else heading[keep],
        timestamp=None if stamps is None else stamps[keep],
        group=None if group is None else [group[i] for i in keep],
    )
    return ManifestRows(collection, paths, skipped)


def _position(lat_cell, lon_cell, path: Path, where: str) -> tuple[float, float]:
    lat = _number(lat_cell, "latitude", path, where, required=True)
    lon = _number(lon_cell, "longitude", path, where, required=True)
    if not (abs(lat) <= 90 and abs(lon) <= 180):
        raise PlaceprintError(
            f"{path}, {where}: position ({lat}, {lon}) out of range "
            "(need |lat| <= 90, |lon| <= 180 degrees)"
        )
    return lat, lon


def _number(value, what: str, path: Path, where: str, required: bool = False) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise PlaceprintError(f"{path}, {where}: missing {what}")
        return math.nan
    try:
        x = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise PlaceprintError(f"{path}, {where}: {what} {value!r} is not a number") from None
    if not math.isfinite(x):
        if required or math.isinf(x):
            raise PlaceprintError(f"{path}, {where}: {what} {value!r} is not finite")
    return x


def _timestamp(value, path: Path, where: str) -> float:
    """Seconds since the Unix epoch from epoch seconds, ISO 8601 text or a datetime."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return math.nan
    if isinstance(value, datetime):
        return _epoch(value)
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    try:
        x = float(text)
        if math.isinf(x):
            raise ValueError
        return x
    except ValueError:
        pass
    try:
        return _epoch(datetime.fromisoformat(text))
    except ValueError:
        raise PlaceprintError(
            f"{path}, {where}: timestamp {text!r} is neither ISO 8601 nor epoch seconds"
        ) from None


def _epoch(dt: datetime) -> float:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _iso(seconds: float) -> str:
    if not math.isfinite(seconds):
        return ""
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    text = dt.isoformat(timespec="microseconds" if dt.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def _fmt(x: float, decimals: int) -> str:
    if not math.isfinite(x):
        return ""
    text = f"{x:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _manifest_path(p: str, folder: Path) -> str:
    """``p`` relative to ``folder`` when it lies inside it, else absolute."""
    if not p:
        return ""
    full = Path(os.path.abspath(p))
    try:
        return full.relative_to(Path(os.path.abspath(folder))).as_posix()
    except ValueError:
        return str(full)


def write_manifest(collection: Collection, path: str | Path) -> None:
    """Write ``collection`` as CSV ``path,lat,lon[,heading,timestamp,group]`` atomically.

    Coordinates keep 9 decimals (1e-9 degrees, well under 1e-7); timestamps are ISO 8601
    UTC; image paths inside the manifest's folder are written relative to it, others as
    absolute paths, so :func:`read_manifest` finds the same files.
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise PlaceprintError(f"folder does not exist: {folder}")
    header = ["path", "lat", "lon"]
    if collection.heading is not None:
        header.append("heading")
    if collection.timestamp is not None:
        header.append("timestamp")
    if collection.group is not None:
        header.append("group")
    from placeprint.atomic import atomic_open

    with atomic_open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        for i in range(len(collection)):
            row = [
                _manifest_path(collection.paths[i], folder),
                _fmt(collection.lat[i], 9),
                _fmt(collection.lon[i], 9),
            ]
            if collection.heading is not None:
                row.append(_fmt(collection.heading[i], 6))
            if collection.timestamp is not None:
                row.append(_iso(collection.timestamp[i]))
            if collection.group is not None:
                row.append(collection.group[i])
            writer.writerow(row)


# ----------------------------------------------------------------------------- EXIF


def collect(folder: str | Path, progress: bool = False) -> tuple[Collection, list[tuple[str, str]]]:
    """Positions of the images in ``folder`` from their EXIF GPS tags.

    Returns the collection of images with a valid position (paths as given: ``folder/name``)
    and ``(path, reason)`` for every image without a usable one (no GPS tags, broken values,
    out of range, unreadable file). Heading comes from ``GPSImgDirection``, time from the
    GPS date/time (UTC) or ``DateTimeOriginal`` (with ``OffsetTimeOriginal`` when present,
    else taken as UTC); Mapillary's JSON description (``MAPCompassHeading``,
    ``MAPCaptureTime``, ``MAPSequenceUUID``) fills what is missing. ``group`` is the
    Mapillary sequence id when any image has one, else None. With ``progress``, folders of
    100 images or more report every 100 images on stderr.
    """
    from placeprint.describe.images import list_images
    from placeprint.geo.exif import read_gps

    files = list_images(folder)
    paths, lats, lons, heads, stamps, groups = [], [], [], [], [], []
    problems: list[tuple[str, str]] = []
    for k, file in enumerate(files, 1):
        if progress and len(files) >= 100 and (k % 100 == 0 or k == len(files)):
            print(f"read EXIF of {k}/{len(files)} images", file=sys.stderr)
        try:
            fix = read_gps(file)
        except PlaceprintError as exc:
            reason = str(exc)
            prefix = f"{file.name}: "
            problems.append(
                (str(file), reason[len(prefix) :] if reason.startswith(prefix) else reason)
            )
            continue
        heading, stamp, group = _exif_extras(file)
        paths.append(str(file))
        lats.append(fix.lat)
        lons.append(fix.lon)
        heads.append(heading)
        stamps.append(stamp)
        groups.append(group)
    heading_arr = np.array(heads, dtype=np.float64)
    stamp_arr = np.array(stamps, dtype=np.float64)
    collection = Collection(
        paths,
        np.array(lats, dtype=np.float64),
        np.array(lons, dtype=np.float64),
        heading=heading_arr if np.isfinite(heading_arr).any() else None,
        timestamp=stamp_arr if np.isfinite(stamp_arr).any() else None,
        group=groups if any(groups) else None,
    )
    return collection, problems


def _exif_extras(file: Path) -> tuple[float, float, str]:
    """``(heading degrees, epoch seconds, group)`` of one image; NaN / "" when unknown."""
    from PIL import Image

    try:
        with Image.open(file) as im:
            exif = im.getexif()
            main = dict(exif)
            gps = dict(exif.get_ifd(_GPS_IFD))
            sub = dict(exif.get_ifd(_EXIF_IFD))
    except Exception:  # noqa: BLE001 - extras are best effort; read_gps already succeeded
        return math.nan, math.nan, ""
    heading = _float_or_nan(gps.get(_GPS_IMG_DIRECTION))
    stamp = _gps_time(gps)
    if math.isnan(stamp):
        stamp = _exif_time(sub.get(_DATETIME_ORIGINAL), sub.get(_OFFSET_TIME_ORIGINAL))
    group = ""
    mapillary = _mapillary(main.get(_DESCRIPTION))
    if mapillary:
        if math.isnan(heading):
            compass = mapillary.get("MAPCompassHeading")
            if isinstance(compass, dict):
                heading = _float_or_nan(compass.get("TrueHeading"))
        if math.isnan(stamp):
            stamp = _mapillary_time(mapillary.get("MAPCaptureTime"))
        group = str(mapillary.get("MAPSequenceUUID") or "")
    if math.isnan(stamp):
        stamp = _exif_time(main.get(_DATETIME), None)
    if not (0 <= heading <= 360):
        heading = math.nan
    return heading % 360.0 if math.isfinite(heading) else math.nan, stamp, group


def _float_or_nan(value) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return math.nan
    return x if math.isfinite(x) else math.nan


def _gps_time(gps: dict) -> float:
    date, hms = gps.get(_GPS_DATE), gps.get(_GPS_TIME)
    try:
        y, m, d = (int(x) for x in str(date).strip().split(":"))
        h, mi, s = (float(x) for x in hms)
        dt = datetime(y, m, d, tzinfo=UTC)
        return dt.timestamp() + h * 3600 + mi * 60 + s
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return math.nan


def _exif_time(text, offset) -> float:
    if not isinstance(text, str):
        return math.nan
    try:
        dt = datetime.strptime(text.strip().rstrip("\x00"), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return math.nan
    tz = UTC
    if isinstance(offset, str):
        try:
            sign = -1 if offset.strip().startswith("-") else 1
            hh, mm = offset.strip().lstrip("+-").split(":")
            tz = timezone(sign * timedelta(hours=int(hh), minutes=int(mm)))
        except ValueError:
            tz = UTC
    return dt.replace(tzinfo=tz).timestamp()


def _mapillary(description) -> dict | None:
    if not isinstance(description, str) or not description.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(description)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _mapillary_time(text) -> float:
    """``MAPCaptureTime`` (``YYYY_MM_DD_HH_MM_SS_mmm``, UTC) to epoch seconds."""
    if not isinstance(text, str):
        return math.nan
    try:
        dt = datetime.strptime(text.strip(), "%Y_%m_%d_%H_%M_%S_%f")
    except ValueError:
        return math.nan
    return dt.replace(tzinfo=UTC).timestamp()


def photo_timestamps(files: Sequence[str | Path]) -> np.ndarray:
    """Capture times (epoch seconds, NaN when unknown) of photos, read as :func:`collect` does."""
    return photo_extras(files)[1]


def photo_extras(files: Sequence[str | Path]) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """``(heading degrees, epoch seconds, sequence id)`` of photos (EXIF; NaN, None: unknown)."""
    extras = [_exif_extras(Path(f)) for f in files]
    heading = np.array([e[0] for e in extras], dtype=np.float64)
    stamp = np.array([e[1] for e in extras], dtype=np.float64)
    return heading, stamp, [e[2] or None for e in extras]

"""Positions from EXIF GPS tags (degrees-minutes-seconds with N/S/E/W references)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from placeprint.errors import PlaceprintError

GPS_IFD = 0x8825
_LAT_REF, _LAT, _LON_REF, _LON, _ALT_REF, _ALT = 1, 2, 3, 4, 5, 6


@dataclass(frozen=True)
class GpsFix:
    """A WGS84 position in degrees (altitude in metres when the file has one)."""

    lat: float
    lon: float
    altitude_m: float | None = None


def dms_to_degrees(dms, ref: str) -> float:
    """``(degrees, minutes, seconds)`` rationals and ``N/S/E/W`` to signed decimal degrees."""
    try:
        parts = [float(x) for x in dms]
    except (TypeError, ValueError, ZeroDivisionError):
        raise PlaceprintError(f"GPS value {dms!r} is not (degrees, minutes, seconds)") from None
    if len(parts) != 3 or not all(math.isfinite(p) and p >= 0 for p in parts):
        raise PlaceprintError(f"GPS value {dms!r} is not (degrees, minutes, seconds)")
    if parts[1] >= 60 or parts[2] >= 60:
        raise PlaceprintError(f"GPS minutes/seconds out of range in {dms!r}")
    ref = (ref or "").strip().upper()
    if ref not in ("N", "S", "E", "W"):
        raise PlaceprintError(f"GPS reference {ref!r} is not N, S, E or W")
    value = parts[0] + parts[1] / 60.0 + parts[2] / 3600.0
    return -value if ref in ("S", "W") else value


def read_gps(path: str | Path) -> GpsFix:
    """The EXIF GPS position of an image file; :class:`PlaceprintError` says what is wrong."""
    from PIL import Image, UnidentifiedImageError

    from placeprint.describe.images import large_images_allowed, too_many_pixels

    path = Path(path)
    try:
        with large_images_allowed(), Image.open(path) as im:
            gps = dict(im.getexif().get_ifd(GPS_IFD))
    except Image.DecompressionBombError as exc:
        raise PlaceprintError(too_many_pixels(path, exc)) from None
    except FileNotFoundError:
        raise PlaceprintError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise PlaceprintError(f"cannot read EXIF of {path}: {exc}") from None
    if not gps or _LAT not in gps or _LON not in gps:
        raise PlaceprintError(f"{path.name}: no GPS position in EXIF")
    try:
        lat = dms_to_degrees(gps[_LAT], gps.get(_LAT_REF, ""))
        lon = dms_to_degrees(gps[_LON], gps.get(_LON_REF, ""))
    except PlaceprintError as exc:
        raise PlaceprintError(f"{path.name}: broken GPS tag: {exc}") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise PlaceprintError(f"{path.name}: GPS position ({lat}, {lon}) out of range")
    alt = None
    if _ALT in gps:
        try:
            alt = float(gps[_ALT]) * (-1 if gps.get(_ALT_REF) in (1, b"\x01") else 1)
        except (TypeError, ValueError, ZeroDivisionError):
            alt = None
    return GpsFix(lat, lon, alt)

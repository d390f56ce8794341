"""``placeprint synth``: a folder of panoramas in, a folder of database views out.

Input: a folder of equirectangular panoramas (2:1; positions from EXIF GPS when they
have them) or a manifest (CSV/Parquet ``path,lat,lon[,heading]``; ``heading`` is the
direction of the panorama's centre column, degrees clockwise from north; without it
the centre column is taken to face south, i.e. column 0 faces north). A panorama
``NAME.EXT`` has depth when ``NAME.depth.npy`` (``(H, 2H)`` float metres, ``inf`` for
sky) lies next to it: then it also gives warped views from the grid around it.

Output: ``VIEWS/`` with the views as JPEG files, ``manifest.csv`` (``path,lat,lon,
heading,group`` plus ``panorama,east_m,north_m,synthesized,hole_share``; ``group`` is the
panorama a view comes from, so ``index build VIEWS/manifest.csv`` indexes the views as
albums of one real place) and ``synth.json`` (settings and counts). The folder is written
beside its final name and switched in by renames: a failed or killed run leaves the
previous output as it was.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from placeprint.atomic import folder_in_place
from placeprint.errors import PlaceprintError
from placeprint.synth.views import ViewSettings, check_panorama, panorama_views

FORMAT = "placeprint-synth-views"
VERSION = 1
DEPTH_SUFFIX = ".depth.npy"
MANIFEST = "manifest.csv"
SUMMARY = "synth.json"
JPEG_QUALITY = 92
COLUMNS = (
    "path",
    "lat",
    "lon",
    "heading",
    "group",
    "panorama",
    "east_m",
    "north_m",
    "synthesized",
    "hole_share",
)


@dataclass(frozen=True)
class PanoramaEntry:
    """One input panorama: its file, position (NaN when unknown), the heading of its
    column 0's left edge (``yaw_deg``) and its depth file, if any."""

    path: Path
    lat: float
    lon: float
    yaw_deg: float
    depth: Path | None


def depth_file(image: Path) -> Path | None:
    """``NAME.depth.npy`` next to ``NAME.EXT`` when it exists."""
    candidate = image.with_name(image.stem + DEPTH_SUFFIX)
    return candidate if candidate.is_file() else None


def read_panorama_list(source: str | Path) -> list[PanoramaEntry]:
    """The panoramas of a folder (sorted by name) or a manifest (in its order)."""
    from placeprint.sources import is_manifest, source_files

    source = Path(source)
    if not source.exists():
        raise PlaceprintError(f"not found: {source}")
    if not (source.is_dir() or is_manifest(source)):
        raise PlaceprintError(f"{source}: give a folder of panoramas or a manifest (.csv)")
    files = source_files(source)
    if not files:
        raise PlaceprintError(f"no panorama images in {source}")
    from placeprint.sources import source_positions

    positions = source_positions(source, [str(f) for f in files])
    lat, lon, _ = positions if positions is not None else (np.full(len(files), np.nan),) * 3
    yaw = np.zeros(len(files))
    if is_manifest(source):
        from placeprint.geo.collection import read_manifest_rows

        c = read_manifest_rows(source).collection
        if c.heading is not None:
            where = {str(Path(p)): i for i, p in enumerate(c.paths)}
            for i, f in enumerate(files):
                r = where.get(str(f), -1)
                if r >= 0 and np.isfinite(c.heading[r]):
                    yaw[i] = (c.heading[r] - 180.0) % 360.0
    return [
        PanoramaEntry(Path(f), float(lat[i]), float(lon[i]), float(yaw[i]), depth_file(Path(f)))
        for i, f in enumerate(files)
    ]


def load_panorama(entry: PanoramaEntry) -> tuple[np.ndarray, np.ndarray | None]:
    """``(image (H, 2H, 3) uint8, depth or None)``; an image larger than its depth map is
    resized to it."""
    from PIL import Image

    from placeprint.describe.images import open_photo

    image = open_photo(entry.path)
    depth = None
    if entry.depth is not None:
        try:
            depth = np.load(entry.depth, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise PlaceprintError(f"cannot read depth map {entry.depth}: {exc}") from None
        if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.floating):
            raise PlaceprintError(f"{entry.depth}: a depth map is a 2-D float array")
        if image.size != (depth.shape[1], depth.shape[0]):
            if image.width < depth.shape[1]:
                raise PlaceprintError(
                    f"{entry.depth} is larger ({depth.shape[1]}x{depth.shape[0]}) than its "
                    f"panorama ({image.width}x{image.height})"
                )
            image = image.resize((depth.shape[1], depth.shape[0]), Image.Resampling.LANCZOS)
    pano = np.asarray(image)
    try:
        check_panorama(pano, depth)
    except PlaceprintError as exc:
        raise PlaceprintError(f"{entry.path}: {exc}") from None
    return pano, depth


def _rows_of(entry: PanoramaEntry, number: int, views, folder: Path) -> list[list]:
    from PIL import Image

    from placeprint.geo.distance import offset_latlon

    rows = []
    for k, (image, view) in enumerate(views):
        name = f"p{number:05d}_v{k:03d}.jpg"
        Image.fromarray(image).save(folder / name, quality=JPEG_QUALITY)
        lat = lon = ""
        if math.isfinite(entry.lat):
            la, lo = offset_latlon(entry.lat, entry.lon, view.east_m, view.north_m)
            lat, lon = f"{float(la):.9f}", f"{float(lo):.9f}"
        rows.append(
            [
                name,
                lat,
                lon,
                f"{view.heading_deg:g}",
                f"p{number:05d}",
                str(entry.path),
                f"{view.east_m:g}",
                f"{view.north_m:g}",
                int(view.synthesized),
                f"{view.hole_share:.4f}",
            ]
        )
    return rows


def _is_views_folder(folder: Path) -> bool:
    try:
        return json.loads((folder / SUMMARY).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def check_output(output: Path) -> None:
    """Refuse, before any work, an output that is not a folder this command may replace."""
    if output.exists() and not output.is_dir():
        raise PlaceprintError(f"{output} is a file; -o names the folder of views to write")
    if output.is_dir() and any(output.iterdir()) and not _is_views_folder(output):
        raise PlaceprintError(
            f"{output} holds other files; give a new folder (or one written by placeprint synth)"
        )
    if not output.parent.is_dir():
        raise PlaceprintError(f"folder does not exist: {output.parent}")
    if not os.access(output.parent, os.W_OK):
        raise PlaceprintError(f"cannot write into {output.parent}")


def synthesize_folder(
    source: str | Path,
    output: str | Path,
    settings: ViewSettings,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> dict:
    """Write the views of every panorama of ``source`` into the folder ``output``; returns
    the summary written to ``synth.json``. ``workers`` threads warp panoramas side by side
    (default: every core, at most 8)."""
    from placeprint.threads import ordered_map

    settings.check()
    output = Path(output)
    check_output(output)
    entries = read_panorama_list(source)

    def views_of(entry: PanoramaEntry) -> list:
        pano, depth = load_panorama(entry)
        return list(panorama_views(pano, depth, settings, entry.yaw_deg))

    with folder_in_place(output) as work:
        rows: list[list] = []
        each = ordered_map(views_of, entries, workers)
        for number, (entry, views) in enumerate(zip(entries, each, strict=True)):
            rows += _rows_of(entry, number, views, work)
            if progress:
                progress(number + 1, len(entries))
        with open(work / MANIFEST, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(COLUMNS)
            writer.writerows(rows)
        summary = {
            "format": FORMAT,
            "version": VERSION,
            "source": str(source),
            "settings": settings.as_dict(),
            "panoramas": len(entries),
            "with_depth": sum(e.depth is not None for e in entries),
            "with_position": sum(math.isfinite(e.lat) for e in entries),
            "views": len(rows),
            "synthesized_views": sum(int(r[8]) for r in rows),
        }
        (work / SUMMARY).write_text(json.dumps(summary, indent=1) + "\n")
    return summary

"""Panoramas with depth along the streets of a synthetic city (the input of
``placeprint synth`` when no real panoramas are at hand).

The city is :class:`placeprint.crossview.world.World` (metres, ``x`` east, ``y`` north);
positions are written as WGS84 degrees around an arbitrary origin
(:data:`SYNTHETIC_ORIGIN`, the city's south-west corner), so the output is a manifest
like any other: ``path,lat,lon,heading`` (heading 180: column 0 faces north).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from placeprint.errors import PlaceprintError

SYNTHETIC_ORIGIN = (48.0, 11.0)  # lat, lon of every synthetic city's south-west corner
PANORAMA_HEADING = 180.0  # the centre column of a rendered panorama faces south


def world_latlon(x_m, y_m) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 degrees of city coordinates (metres east and north of the south-west corner)."""
    from placeprint.geo.distance import offset_latlon

    return offset_latlon(SYNTHETIC_ORIGIN[0], SYNTHETIC_ORIGIN[1], x_m, y_m)


def world_xy(lat, lon) -> tuple[np.ndarray, np.ndarray]:
    """City coordinates (metres) of WGS84 degrees (the inverse of :func:`world_latlon`)."""
    from placeprint.geo.distance import local_metres

    return local_metres(lat, lon, *SYNTHETIC_ORIGIN)


def route_points(world, streets: int, spacing_m: float, margin_m: float) -> np.ndarray:
    """``(m, 2)`` points every ``spacing_m`` along the first ``streets`` streets of the city
    (alternately north-south and east-west, from the middle of the map outwards)."""
    if streets < 1:
        raise PlaceprintError(f"need at least one street, got {streets}")
    picks: list[tuple[str, int]] = []
    order = {}
    for axis in ("x", "y"):
        lines = world.streets.get(axis, np.empty(0))
        order[axis] = list(np.argsort(np.abs(lines - world.config.size_m / 2)))
    while len(picks) < streets and (order["x"] or order["y"]):
        for axis in ("x", "y"):
            if order[axis] and len(picks) < streets:
                picks.append((axis, int(order[axis].pop(0))))
    if len(picks) < streets:
        raise PlaceprintError(f"this city has only {len(picks)} streets")
    return np.concatenate([world.street_line(a, i, spacing_m, margin_m) for a, i in picks])


def write_world_panoramas(
    output: str | Path,
    points: np.ndarray,
    world,
    condition,
    width: int = 1024,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Render a panorama (PNG) and its depth (``.depth.npy``) at every point into the new
    folder ``output`` with a ``manifest.csv``; returns the manifest's path."""
    from PIL import Image

    from placeprint.atomic import folder_in_place
    from placeprint.crossview.render import panorama
    from placeprint.geo.collection import Collection, write_manifest

    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise PlaceprintError(f"{output} exists and is not empty; give a new folder")
    points = np.asarray(points, float).reshape(-1, 2)
    with folder_in_place(output) as work:
        names = []
        for i, (x, y) in enumerate(points):
            image, depth = panorama(world, x, y, condition, width=width)
            name = f"pano_{i:05d}.png"
            Image.fromarray(image).save(work / name)
            np.save(work / f"pano_{i:05d}.depth.npy", depth)
            names.append(str(work / name))
            if progress:
                progress(i + 1, len(points))
        lat, lon = world_latlon(points[:, 0], points[:, 1])
        heading = np.full(len(points), PANORAMA_HEADING)
        write_manifest(Collection(names, lat, lon, heading=heading), work / "manifest.csv")
    return output / "manifest.csv"

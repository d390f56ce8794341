"""A photo set at a city collection's scale, to time ``benchmarks/photos.py --timing-set``.

The issue's city set (about 800 phone photos of 640x480) is not shipped, so its costs
(storing features, calibrating verified answers, answering) are measured on a set made
here: 640x480 perspective-warped crops of scenes, each scene cropped many times and placed
at the scene's position plus GPS-like noise (15 m), mixed with unique drawn scenes that
verify against nothing (placed anywhere in a 2 km square around the first scene). Crops of
one scene are near-duplicates, so it is a **timing and calibration set, not an accuracy
set**.

Scenes: the real street photos (``PLACEPRINT_DATA/geotagged``) when present, and always
scikit-image's samples (:data:`~placeprint.evaluate.photos_bench.UNRELATED`, placed in
the same square).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from placeprint.errors import PlaceprintError
from placeprint.geo.distance import EARTH_RADIUS_KM

SIZE = (640, 480)
GPS_NOISE_M = 15.0
UNIQUE_SHARE = 0.25  # photos of a scene seen once (the city set: 27 % had none within 25 m)
M_PER_DEG = np.pi * EARTH_RADIUS_KM * 1000.0 / 180.0  # metres a degree of latitude


def _scenes(rng: np.random.Generator) -> list[tuple[object, float, float]]:
    """``(PIL image, lat, lon)`` of every scene: street photos at their EXIF position
    (if the data are there) and scikit-image's samples near the first of them."""
    import skimage.data
    from PIL import Image

    from placeprint.describe.images import open_photo
    from placeprint.evaluate.photos_bench import UNRELATED

    scenes = []
    try:
        from placeprint.evaluate.benchargs import lund_berlin_photos

        paths, lat, lon = lund_berlin_photos()
    except PlaceprintError:
        paths, lat, lon = [], [], []
    for path, a, b in zip(paths, lat, lon, strict=True):
        scenes.append((open_photo(path), float(a), float(b)))  # upright, 8-bit RGB
    lat0, lon0 = (scenes[0][1], scenes[0][2]) if scenes else (55.7047, 13.1910)
    for name in UNRELATED:
        im = Image.fromarray(np.asarray(getattr(skimage.data, name)())).convert("RGB")
        a, b = _near(rng, lat0, lon0, 1000.0)
        scenes.append((im, a, b))
    return scenes


def _near(rng: np.random.Generator, lat: float, lon: float, half_m: float) -> tuple[float, float]:
    """A point uniformly within ``half_m`` metres a side of ``(lat, lon)``."""
    dy, dx = rng.uniform(-half_m, half_m, 2)
    return lat + dy / M_PER_DEG, lon + dx / (M_PER_DEG * np.cos(np.radians(lat)))


def _crop(rng: np.random.Generator, im):
    """A 640x480 crop of 50-90 % of ``im``, warped by a random perspective (25 px)."""
    from PIL import Image

    w, h = im.size
    s = rng.uniform(0.5, 0.9)
    cw, ch = int(w * s), int(h * s)
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    out = im.crop((x0, y0, x0 + cw, y0 + ch)).resize(SIZE)
    corners = np.array([0, 0, SIZE[0], 0, SIZE[0], SIZE[1], 0, SIZE[1]], float)
    quad = tuple(float(v) for v in corners + rng.normal(0, 25, 8))
    return out.transform(SIZE, Image.Transform.QUAD, quad, Image.Resampling.BILINEAR)


def _drawn(rng: np.random.Generator):
    """A unique scene of 60 random ellipses and quadrilaterals."""
    from PIL import Image, ImageDraw

    im = Image.new("RGB", SIZE, tuple(int(v) for v in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(im)
    for _ in range(60):
        x, y = int(rng.integers(0, SIZE[0])), int(rng.integers(0, SIZE[1]))
        r = int(rng.integers(5, 80))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x, y, x + r, y + int(r * rng.uniform(0.3, 2.0))), fill=colour)
        else:
            dx, dy = rng.integers(-r, r + 1, 4), rng.integers(-r, r + 1, 4)
            draw.polygon(
                [(x + int(a), y + int(b)) for a, b in zip(dx, dy, strict=True)], fill=colour
            )
    return im


def make_timing_set(folder: str | Path, n: int, seed: int = 0) -> Path:
    """Write ``n`` JPEG photos and their ``manifest.csv`` (path, lat, lon) into ``folder``
    (created; the same ``seed`` makes the same set) and return the manifest's path.
    ``UNIQUE_SHARE`` of them are drawn scenes seen once; the rest are crops of the scenes,
    in turn. File names are shuffled so that a split by path order mixes both kinds."""
    if int(n) < 8:
        raise PlaceprintError(f"a timing set needs at least 8 photos, got {n}")
    n = int(n)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    scenes = _scenes(rng)
    unique = int(round(UNIQUE_SHARE * n))
    names = rng.permutation(n)
    rows = []
    for k in range(n):
        if k < n - unique:
            im, lat0, lon0 = scenes[k % len(scenes)]
            photo = _crop(rng, im)
            dy, dx = rng.normal(0, GPS_NOISE_M, 2)
            lat = lat0 + dy / M_PER_DEG
            lon = lon0 + dx / (M_PER_DEG * np.cos(np.radians(lat0)))
        else:
            photo = _drawn(rng)
            lat, lon = _near(rng, scenes[0][1], scenes[0][2], 1000.0)
        path = folder / f"{names[k]:05d}.jpg"
        photo.save(path, quality=85)
        rows.append((path.name, f"{lat:.7f}", f"{lon:.7f}"))
    manifest = folder / "manifest.csv"
    with open(manifest, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "lat", "lon"])
        writer.writerows(sorted(rows))
    return manifest

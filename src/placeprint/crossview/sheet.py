"""A picture of sample pairs: aerial tile, its polar transform, the ground panorama and
a 90-degree view cut from it, one pair a row."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from placeprint.crossview.pairs import PairSet


def _fit_height(image: np.ndarray, height: int) -> np.ndarray:
    from PIL import Image

    h, w = image.shape[:2]
    width = max(1, int(round(w * height / h)))
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def sample_sheet(pairs: PairSet, path: str | Path, rows: int = 4, height: int = 128) -> Path:
    """Write a PNG of the first ``rows`` pairs (atomically); returns its path."""
    import io

    from PIL import Image, ImageDraw

    from placeprint.atomic import atomic_write_bytes
    from placeprint.crossview.polar import polar_transform
    from placeprint.crossview.render import crop_view

    gap = np.full((height, 6, 3), 255, np.uint8)
    lines = []
    for i in range(min(rows, len(pairs))):
        a, g = pairs.aerial[i], pairs.ground[i]
        polar = polar_transform(a, g.shape[0] // 2, g.shape[1])
        heading = (37.0 * (i + 1)) % 360.0
        parts = [
            _fit_height(a, height),
            _fit_height(polar, height // 2),
            _fit_height(g, height),
            _fit_height(crop_view(g, heading, 90.0), height),
        ]
        parts[1] = np.concatenate([parts[1], np.full_like(parts[1], 255)], axis=0)
        row = np.concatenate([p for part in parts for p in (part, gap)][:-1], axis=1)
        lines.append(row)
    width = max(r.shape[1] for r in lines)
    lines = [
        np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in lines
    ]
    sheet = Image.fromarray(np.concatenate(lines, axis=0))
    canvas = Image.new("RGB", (sheet.width, sheet.height + 18), "white")
    canvas.paste(sheet, (0, 18))
    ImageDraw.Draw(canvas).text(
        (2, 3),
        "aerial tile | polar transform (top: tile edge, columns: azimuth from north) | "
        "ground panorama (season, hour vary) | 90 deg view at a heading",
        fill="black",
    )
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return atomic_write_bytes(path, buf.getvalue())

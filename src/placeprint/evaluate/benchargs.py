"""What every benchmark script shares: its argument parser, the real route, its outputs.

Benchmark modules import this; none imports another benchmark module (the registry of
names is :mod:`placeprint.evaluate.registry`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from placeprint.errors import PlaceprintError
from placeprint.evaluate.report import portable_argument, write_json

FIGURES = Path("docs/figures")  # where committed figures live (write there only when told)


def parse_lengths(text: str) -> tuple[int, ...]:
    """``"10,50"`` -> ``(10, 50)``: sequence lengths, each >= 1."""
    try:
        values = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"lengths must be integers like 10,50: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("lengths must be >= 1")
    return values


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit 2, like the CLI."""

    def error(self, message: str):
        raise PlaceprintError(f"{self.prog}: {message}")


def describer_options(text: str) -> dict:
    """``--describer-options`` as a dict: JSON, e.g. ``'{"whiten_dims": null}'``."""
    import json

    try:
        value = json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"describer options must be JSON: {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("describer options must be a JSON object")
    return value


def load_route(quiet: bool, describer: str = "seqslam", options: dict | None = None):
    """Nordland summer/winter described by ``describer`` (fitted on frames <= 20000)."""
    from placeprint.config import data_available
    from placeprint.evaluate.pipeline import load_nordland_route

    if not data_available("nordland"):
        raise PlaceprintError(
            "real data not found: set PLACEPRINT_DATA to the folder holding nordland/ "
            "(default ../shared/data)"
        )
    return load_nordland_route(quiet, describer, **(options or {}))


def lund_berlin_photos():
    """The 32 real street photos of ``PLACEPRINT_DATA/geotagged``: ``(files, lat, lon)``
    from their EXIF GPS."""
    import numpy as np

    from placeprint.config import data_available, data_path
    from placeprint.describe.images import list_images
    from placeprint.geo.exif import read_gps

    if not data_available("geotagged"):
        raise PlaceprintError(
            "real data not found: set PLACEPRINT_DATA to the folder holding geotagged/ "
            "(default ../shared/data)"
        )
    files = list_images(data_path("geotagged", "lund")) + list_images(
        data_path("geotagged", "berlin")
    )
    fixes = [read_gps(f) for f in files]
    return files, np.array([f.lat for f in fixes]), np.array([f.lon for f in fixes])


def finish(out: dict, json_path: Path | None) -> dict:
    """Write the JSON (when asked; figure paths in it as portable as the command) and
    say where every output went."""
    plots = [str(p) for p in out.get("plots") or []]
    if json_path:
        shown = {**out, "plots": [portable_argument(p) for p in plots]} if "plots" in out else out
        write_json(json_path, shown)
        print(f"wrote {json_path}")
    for plot in plots:
        print(f"wrote {plot}")
    return out

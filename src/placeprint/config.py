"""Where real data lives: ``PLACEPRINT_DATA`` (default ``../shared/data``)."""

from __future__ import annotations

import os
from pathlib import Path

from placeprint.errors import PlaceprintError

DEFAULT_DATA = Path("../shared/data")


def data_root() -> Path:
    """Return the folder of real data: ``$PLACEPRINT_DATA`` or ``../shared/data``."""
    return Path(os.environ.get("PLACEPRINT_DATA", str(DEFAULT_DATA))).expanduser()


def data_path(*parts: str) -> Path:
    """Return ``data_root()/parts``, raising :class:`PlaceprintError` if it is missing."""
    path = data_root().joinpath(*parts)
    if not path.exists():
        raise PlaceprintError(
            f"real data not found: {path} (set PLACEPRINT_DATA to the folder that holds "
            f"{'/'.join(parts)}, e.g. ../shared/data)"
        )
    return path


def data_available(*parts: str) -> bool:
    """True when ``data_root()/parts`` exists."""
    return data_root().joinpath(*parts).exists()


def cache_root() -> Path:
    """Folder for caches (descriptors, built model graphs): ``$PLACEPRINT_CACHE`` or
    ``~/.cache/placeprint``. Created on first use; never inside the data folder."""
    root = Path(os.environ.get("PLACEPRINT_CACHE", "~/.cache/placeprint")).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root

"""Files derived from a package's data file, kept in the cache for later processes.

Some data a package ships is slow to read in its shipped form (a compressed land mask, a
CSV of places). The first process derives a fast form and keeps it under
``cache_root()/FOLDER``, named after the source file's size and modification time, so an
upgraded package gets a new file. Writing is whole-then-rename; a cache that cannot be
used is skipped (the caller derives again), never an error.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import IO


def derived_path(source: Path, folder: str, stem: str, suffix: str) -> Path | None:
    """``cache_root()/folder/stem-<size>-<mtime_ns><suffix>`` for ``source``; None when the
    source cannot be read or no cache folder can be made."""
    from placeprint.config import cache_root

    try:
        st = Path(source).stat()
        root = cache_root()
    except OSError:
        return None
    return root / folder / f"{stem}-{st.st_size}-{st.st_mtime_ns}{suffix}"


def keep(path: Path | None, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` with ``write(fh)`` (whole, then renamed); skipped when ``path`` is
    None or the cache cannot be written."""
    from placeprint.atomic import atomic_open

    if path is None:
        return
    try:
        with atomic_open(path, "wb", make_parents=True) as fh:
            write(fh)
    except OSError:
        pass

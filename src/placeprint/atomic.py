"""Write files so that no reader ever sees half of one: a temporary file, then a rename.

Every file placeprint writes (indexes, describer states, caches, manifests, JSON,
pictures) goes through :func:`atomic_open`: the data lands in a hidden temporary
file in the same folder, which replaces the target only once it is complete; on any
error (or Ctrl-C) the temporary file is removed and the target is left untouched.
The new file gets the usual permissions (``0666`` less the umask), not ``mkstemp``'s
private ``0600``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from placeprint.errors import PlaceprintError


def _file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_MODE = _file_mode()


@contextmanager
def atomic_open(
    path: str | Path,
    mode: str = "wb",
    make_parents: bool = False,
    sync: bool = False,
    **open_options,
) -> Iterator[IO]:
    """Open a temporary file for ``path``; on a clean exit it is renamed to ``path``.

    ``make_parents`` creates missing folders (else a missing folder is a clear error);
    ``sync`` flushes the data to disk before the rename (for large, costly files).
    """
    path = Path(path)
    folder = path.parent
    if make_parents:
        folder.mkdir(parents=True, exist_ok=True)
    elif not folder.is_dir():
        raise PlaceprintError(f"folder does not exist: {folder}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, mode, **open_options) as fh:
            yield fh
            if sync:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, _MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes, **options) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_open(path, "wb", **options) as fh:
        fh.write(data)
    return Path(path)

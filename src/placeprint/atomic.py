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


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()
_MODE = 0o666 & ~_UMASK


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


@contextmanager
def folder_in_place(output: str | Path) -> Iterator[Path]:
    """Build a folder beside ``output`` (yielded); on a clean exit it takes ``output``'s
    place, the previous folder removed. On any error the new folder is removed and
    ``output`` is left as it was. What a killed run leaves behind (hidden ``.NAME.*.part``
    folders) is cleaned up by the next; a run killed between its two renames left the
    previous folder aside, and the next run puts it back first."""
    import shutil

    output = Path(output)
    if not output.parent.is_dir():
        raise PlaceprintError(f"folder does not exist: {output.parent}")
    for leftover in output.parent.glob(f".{output.name}.*.part"):
        if leftover.name.endswith(".old.part") and not output.exists():
            leftover.rename(output)
        else:
            shutil.rmtree(leftover, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".part", dir=output.parent))
    try:
        yield work
        os.chmod(work, 0o777 & ~_UMASK)  # as mkdir would (mkdtemp gives 0700)
        old = None
        if output.exists():
            old = output.parent / f".{output.name}.{os.getpid()}.old.part"
            output.rename(old)
        work.rename(output)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise

"""An index and its side files are one thing: written as a set, switched in one step.

An index ``INDEX`` may have side files: a learning describer's state, the place store
and the geolocator. Every build has a *generation* (a random id): its side files are
named ``INDEX.<generation>.describer``, ``INDEX.<generation>.places.sqlite`` and
``INDEX.<generation>.geo``, and the index file records the generation in its header.
A build writes all new side files first (each atomically, none replacing an old one)
and the index file last, by an atomic rename: that rename is the switch. Until it
happens the old index and its side files are untouched; after it, readers find the new
set through the new index. A killed build leaves only files of a generation no index
names; the next build removes them (and its dead temporary files). The previous
generation is kept until the build after, so a server started on it keeps working.

Indexes of earlier versions (no generation) keep their side files at ``INDEX.describer``,
``INDEX.places.sqlite`` and ``INDEX.geo``.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from placeprint.errors import PlaceprintError

SIDE_SUFFIXES = {"describer": ".describer", "places": ".places.sqlite", "geo": ".geo"}
GENERATION_CHARS = 12
_GENERATION = re.compile(rf"^[0-9a-f]{{{GENERATION_CHARS}}}$")
_LOOKUP = object()  # "read the generation from the index file"


def new_generation() -> str:
    """A fresh random generation id (12 hex digits)."""
    return secrets.token_hex(GENERATION_CHARS // 2)


def index_generation(index_path: str | Path) -> str | None:
    """The generation recorded in the index file's header; ``None`` for an index of an
    earlier version, or when there is no index file (readers then use the plain names)."""
    from placeprint.index.fileformat import read_header

    path = Path(index_path)
    if not path.is_file():
        return None
    try:
        header = read_header(path)
    except PlaceprintError:
        return None
    generation = (header.get("meta") or {}).get("generation")
    return generation if isinstance(generation, str) and _GENERATION.match(generation) else None


def side_path(index_path: str | Path, kind: str, generation=_LOOKUP) -> Path:
    """Where the side file ``kind`` (describer / places / geo) of an index lives.

    ``generation``: that of a build in progress; left out, it is read from the index.
    """
    if kind not in SIDE_SUFFIXES:
        raise ValueError(f"unknown side file {kind!r}")
    index_path = Path(index_path)
    if generation is _LOOKUP:
        generation = index_generation(index_path)
    middle = f".{generation}" if generation else ""
    return index_path.with_name(index_path.name + middle + SIDE_SUFFIXES[kind])


def split_side_path(path: str | Path) -> tuple[Path, str | None, str]:
    """``(index_path, generation, kind)`` of a side file's path (inverse of :func:`side_path`)."""
    path = Path(path)
    for kind, suffix in SIDE_SUFFIXES.items():
        if path.name.endswith(suffix) and len(path.name) > len(suffix):
            stem = path.name[: -len(suffix)]
            head, _, tail = stem.rpartition(".")
            if head and _GENERATION.match(tail):
                return path.with_name(head), tail, kind
            return path.with_name(stem), None, kind
    raise PlaceprintError(f"{path} is not a side file of an index")


def _generations_on_disk(index_path: Path) -> dict[str, list[Path]]:
    """Side files next to ``index_path`` by generation ("" = plain names)."""
    out: dict[str, list[Path]] = {}
    folder = index_path.parent
    prefix = index_path.name + "."
    try:
        names = os.listdir(folder)
    except OSError:
        return out
    for name in names:
        if not name.startswith(prefix):
            continue
        try:
            idx, generation, _ = split_side_path(folder / name)
        except PlaceprintError:
            continue
        if idx.name == index_path.name:
            out.setdefault(generation or "", []).append(folder / name)
    return out


def _dead_temporaries(index_path: Path) -> list[Path]:
    """Temporary files of interrupted writes of this index's files (``atomic_open``'s)."""
    folder = index_path.parent
    prefix = "." + index_path.name + "."
    try:
        return [
            folder / n for n in os.listdir(folder) if n.startswith(prefix) and n.endswith(".tmp")
        ]
    except OSError:
        return []


class IndexBuild:
    """One build of an index set; use through :func:`building`."""

    def __init__(self, index_path: Path) -> None:
        self.index_path = index_path
        self.generation = new_generation()
        self.previous = index_generation(index_path)
        self.committed = False

    def side(self, kind: str) -> Path:
        """Where this build writes its side file ``kind``."""
        return side_path(self.index_path, kind, self.generation)

    def files(self) -> list[Path]:
        """This build's side files that exist so far."""
        return [p for k in SIDE_SUFFIXES if (p := self.side(k)).exists()]

    def sweep(self) -> None:
        """Remove dead temporaries and the side files of generations no longer needed:
        all but this build's, the index's current one and the one it replaces."""
        keep = {self.generation, index_generation(self.index_path) or "", self.previous or ""}
        for generation, paths in _generations_on_disk(self.index_path).items():
            if generation not in keep:
                for p in paths:
                    p.unlink(missing_ok=True)
        for p in _dead_temporaries(self.index_path):
            p.unlink(missing_ok=True)


@contextmanager
def building(index_path: str | Path) -> Iterator[IndexBuild]:
    """Build a new generation of ``index_path``; only one build of an index at a time.

    The body writes the side files at ``build.side(kind)`` and saves the index (with
    ``generation=build.generation``) last, then sets ``build.committed = True``. On any
    error the new side files are removed and the old set is left as it was.
    """
    index_path = Path(index_path)
    if index_path.is_dir():
        raise PlaceprintError(f"{index_path} is a directory: give a file name for the index")
    if not index_path.parent.is_dir():
        raise PlaceprintError(f"folder does not exist: {index_path.parent}")
    lock_path = index_path.with_name("." + index_path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise PlaceprintError(f"cannot write next to {index_path}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PlaceprintError(f"another build of {index_path} is running") from None
        build = IndexBuild(index_path)
        build.sweep()  # what a killed build left behind
        try:
            yield build
        finally:
            if build.committed:
                build.sweep()  # the generations no index needs any more
            else:  # failed or never switched: the old set stays as it was
                for p in build.files():
                    p.unlink(missing_ok=True)
    finally:
        lock_path.unlink(missing_ok=True)  # no clutter: the lock lives while a build runs
        os.close(fd)


def check_generation(path: str | Path, found: str | None, expected: str | None) -> None:
    """Refuse a side file whose recorded generation is not its index's."""
    if expected and found != expected:
        raise PlaceprintError(
            f"{path} belongs to another build of the index (generation {found or 'none'}, "
            f"index {expected}): rebuild the index"
        )

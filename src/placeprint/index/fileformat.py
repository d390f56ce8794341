"""One versioned single-file container for named arrays: magic, version, JSON header, checksum.

Layout (little-endian)::

    b"PLPRINT\\0"  magic (8 bytes)
    uint32         format version
    uint32         reserved (0)
    uint64         header length H
    H bytes        JSON header: {"kind", "meta", "arrays": [{name, dtype, shape, offset, nbytes}]}
    ...            arrays, each starting at a 64-byte aligned offset
    uint32         CRC-32 of every byte before it

Files are written to a temporary file in the same folder and renamed into place,
so a reader never sees a half-written file. Arrays are memory-mapped on load.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np

from placeprint.errors import PlaceprintError

MAGIC = b"PLPRINT\x00"
VERSION = 1
_PREFIX = struct.Struct("<8sIIQ")
ALIGN = 64


def _aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _layout(kind: str, meta: dict, arrays: dict[str, np.ndarray]):
    """Header bytes, array table, start of the data and its length (aligned)."""
    table = []
    offset = 0
    for name, arr in arrays.items():
        arr = np.asarray(arr)  # (ascontiguousarray would turn 0-d arrays into 1-d)
        table.append(
            {
                "name": name,
                "dtype": arr.dtype.str,
                "shape": list(arr.shape),
                "offset": offset,
                "nbytes": int(arr.nbytes),
            }
        )
        offset = _aligned(offset + arr.nbytes)
    header = json.dumps({"kind": kind, "meta": meta, "arrays": table}).encode()
    return header, table, _aligned(_PREFIX.size + len(header)), offset


def container_size(kind: str, meta: dict, arrays: dict[str, np.ndarray]) -> int:
    """Bytes :func:`write_container` would write for these arguments (exactly)."""
    _, _, data_start, length = _layout(kind, meta, arrays)
    return data_start + length + 4


def write_container(path: str | Path, kind: str, meta: dict, arrays: dict[str, np.ndarray]) -> int:
    """Write ``arrays`` and ``meta`` atomically to ``path``; returns the file size in bytes."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise PlaceprintError(f"folder does not exist: {path.parent}")
    header, table, data_start, offset = _layout(kind, meta, arrays)
    from placeprint.atomic import atomic_open

    crc = 0
    with atomic_open(path, sync=True) as fh:

        def put(buf: bytes | memoryview) -> None:
            nonlocal crc
            fh.write(buf)
            crc = zlib.crc32(buf, crc)

        put(_PREFIX.pack(MAGIC, VERSION, 0, len(header)))
        put(header)
        put(b"\0" * (data_start - _PREFIX.size - len(header)))
        written = 0
        for entry, arr in zip(table, arrays.values(), strict=True):
            put(b"\0" * (entry["offset"] - written))
            buf = np.ascontiguousarray(arr).reshape(-1).view(np.uint8).data
            put(buf)
            written = entry["offset"] + entry["nbytes"]
        put(b"\0" * (offset - written))
        fh.write(struct.pack("<I", crc & 0xFFFFFFFF))
    return path.stat().st_size


def read_header(path: str | Path) -> dict:
    """The JSON header of a placeprint file (``kind``, ``meta``, array table); the arrays
    are not read. Raises a one-line :class:`PlaceprintError` for anything else."""
    return _read_header(Path(path))[0]


def _read_header(path: Path) -> tuple[dict, int]:
    if path.is_dir():
        raise PlaceprintError(f"{path} is a directory, not an index file")
    if not path.is_file():
        raise PlaceprintError(f"index file not found: {path}")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        prefix = fh.read(_PREFIX.size)
        if len(prefix) < _PREFIX.size:
            raise PlaceprintError(f"{path} is not a placeprint file (too short)")
        magic, version, _, header_len = _PREFIX.unpack(prefix)
        if magic != MAGIC:
            raise PlaceprintError(f"{path} is not a placeprint file (bad magic bytes)")
        if version != VERSION:
            raise PlaceprintError(
                f"{path} has format version {version}; this placeprint reads version {VERSION} "
                "(rebuild the index)"
            )
        if _PREFIX.size + header_len + 4 > size:
            raise PlaceprintError(f"{path} is truncated (header runs past the end)")
        try:
            header = json.loads(fh.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise PlaceprintError(f"{path} is corrupt (unreadable header)") from None
    if not isinstance(header, dict) or not isinstance(header.get("arrays"), list):
        raise PlaceprintError(f"{path} is corrupt (unreadable header)")
    return header, header_len


def read_container(
    path: str | Path, kind: str, verify: bool = True
) -> tuple[dict, dict[str, np.ndarray], int]:
    """Read a container of ``kind``: returns ``(meta, arrays, file_size)``, arrays memory-mapped."""
    path = Path(path)
    header, header_len = _read_header(path)
    size = path.stat().st_size
    if header.get("kind") != kind:
        raise PlaceprintError(f"{path} holds a {header.get('kind')!r}, not a {kind!r}")
    data_start = _aligned(_PREFIX.size + header_len)
    table = header["arrays"]
    end = data_start + max((_aligned(e["offset"] + e["nbytes"]) for e in table), default=0)
    if end + 4 != size:
        raise PlaceprintError(f"{path} is truncated or has trailing bytes ({size} != {end + 4})")
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    if verify:
        crc = 0
        step = 1 << 24
        for start in range(0, size - 4, step):
            crc = zlib.crc32(mm[start : min(start + step, size - 4)], crc)
        stored = struct.unpack("<I", bytes(mm[size - 4 :]))[0]
        if crc & 0xFFFFFFFF != stored:
            raise PlaceprintError(f"{path} is corrupt (checksum mismatch)")
    arrays = {}
    for e in table:
        start = data_start + e["offset"]
        arrays[e["name"]] = (
            mm[start : start + e["nbytes"]].view(np.dtype(e["dtype"])).reshape(e["shape"])
        )
    return header["meta"], arrays, size

"""Fixed-width bit fields packed into ``uint64`` words (our own kernel, numba-compiled)."""

from __future__ import annotations

import numba
import numpy as np


def words_needed(count: int, width: int) -> int:
    """Number of uint64 words that hold ``count`` fields of ``width`` bits (plus one pad word)."""
    return (count * width + 63) // 64 + 1


@numba.njit(cache=True, nogil=True)
def read_field(words: np.ndarray, index: np.int64, width: np.int64) -> np.uint64:
    """Field ``index`` of ``width`` bits (1..64)."""
    if width == 0:
        return np.uint64(0)
    pos = index * width
    w = pos >> 6
    sh = np.uint64(pos & 63)
    val = words[w] >> sh
    if sh != 0 and (pos & 63) + width > 64:
        val |= words[w + 1] << (np.uint64(64) - sh)
    if width < 64:
        val &= (np.uint64(1) << np.uint64(width)) - np.uint64(1)
    return val


@numba.njit(cache=True, nogil=True)
def _pack(values: np.ndarray, width: np.int64, out: np.ndarray) -> None:
    for i in range(values.shape[0]):
        v = values[i]
        pos = i * width
        w = pos >> 6
        sh = np.uint64(pos & 63)
        out[w] |= v << sh
        if sh != 0 and (pos & 63) + width > 64:
            out[w + 1] |= v >> (np.uint64(64) - sh)


def pack_fields(values: np.ndarray, width: int) -> np.ndarray:
    """Pack ``values (n,) uint64`` (each < 2**width) into ``uint64`` words."""
    values = np.ascontiguousarray(values, dtype=np.uint64)
    out = np.zeros(words_needed(values.shape[0], width), np.uint64)
    if width > 0:
        if width < 64 and values.size and int(values.max()) >> width:
            raise ValueError(f"value does not fit in {width} bits")
        _pack(values, np.int64(width), out)
    return out


@numba.njit(cache=True, nogil=True)
def _unpack(words: np.ndarray, width: np.int64, start: np.int64, count: np.int64) -> np.ndarray:
    out = np.empty(count, np.uint64)
    for i in range(count):
        out[i] = read_field(words, start + i, width)
    return out


def unpack_fields(words: np.ndarray, width: int, start: int, count: int) -> np.ndarray:
    """Fields ``start .. start+count-1`` as ``(count,) uint64``."""
    return _unpack(words, np.int64(width), np.int64(start), np.int64(count))


@numba.njit(cache=True, nogil=True)
def _gather(words: np.ndarray, width: np.int64, indices: np.ndarray) -> np.ndarray:
    out = np.empty(indices.shape[0], np.uint64)
    for i in range(indices.shape[0]):
        out[i] = read_field(words, indices[i], width)
    return out


def gather_fields(words: np.ndarray, width: int, indices: np.ndarray) -> np.ndarray:
    """Fields at arbitrary ``indices (m,)`` as ``(m,) uint64``."""
    return _gather(words, np.int64(width), np.ascontiguousarray(indices, np.int64))


def codes_to_int(codes: np.ndarray) -> np.ndarray:
    """``(n, c) uint8`` codes with ``c <= 8`` as little-endian ``(n,) uint64`` integers."""
    n, c = codes.shape
    padded = np.zeros((n, 8), np.uint8)
    padded[:, :c] = codes
    return padded.view("<u8").reshape(n).astype(np.uint64)


def int_to_codes(values: np.ndarray, code_size: int) -> np.ndarray:
    """Inverse of :func:`codes_to_int`."""
    as_bytes = np.ascontiguousarray(values, dtype="<u8").view(np.uint8).reshape(-1, 8)
    return as_bytes[:, :code_size].copy()

"""The overloaded hash index: a short key from the codes groups places into colliding buckets.

The key of place ``p`` is taken from the codes of the route ending at ``p`` (a
*sequence key*): the first ``key_layout[j]`` bits (the coarse bits of the most
important dimensions) of the code of place ``p - j``, for ``j = 0 .. key_frames-1``.
Top bits of a few consecutive places are far more likely to survive a change of
conditions together than the lower bits of one place, so the same key length finds
the true place several times more often (measured on Nordland winter vs summer).
For ``j <= 2`` the places ``p - j`` are the same for every velocity in 0.8-1.2.
``key_frames=1`` gives the classic single-code key (for unordered collections);
places before the start of the route repeat place 0.

Storage, all of it needed to answer queries (``bytes_per_place`` counts every part):

- ``rest``: the code bits after the place's own key bits, ``rest_bits`` per place,
  bit-packed in route order (used to verify alignments along a trajectory);
- ``ids``: the place ids of each bucket, ``id_bits = ceil(log2 N)`` bits each, bucket by
  bucket (the key of a place is implicit in which bucket holds it). Inside a bucket the
  places are sorted by their next ``prefix_bits`` code bits (:func:`rest_prefix`), so a
  query can read just the part of a crowded bucket that agrees with its own next bits
  (a binary search) instead of all or nothing; the order costs no storage;
- ``offsets``: ``2**key_bits + 1`` uint32 bucket starts;
- ``occupied``: one bit a bucket, set when it is not empty (a probe of an empty bucket
  then costs one bit test instead of two offset reads);
- the codec's learned state (to encode queries) and the file header.

The default key length puts about ``bucket_size`` places in a bucket (8 for large maps;
fewer below 16,000 places, see :func:`default_bucket_size`), so buckets
collide on purpose and the bucket table stays a small fraction of the storage.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from placeprint.codec.coarse import CoarseCodec, check_codes
from placeprint.errors import PlaceprintError
from placeprint.index.bitpack import (
    codes_to_int,
    gather_fields,
    int_to_codes,
    pack_fields,
    unpack_fields,
)
from placeprint.index.fileformat import container_size, read_container, write_container

FILE_KIND = "overloaded-index"
MAX_CODE_BYTES = 8
PREFIX_BITS = 16  # code bits after the key that order the places inside a bucket


def rest_prefix(rest: np.ndarray, bits: int) -> np.ndarray:
    """The first ``bits`` rest bits of each code as a number, rest bit 0 the most significant.

    Rest bit 0 is the code bit right after the key (the most reliable one left), so
    places sharing a longer prefix agree on more of their most reliable bits.
    """
    rest = np.asarray(rest, np.uint64)
    out = np.zeros(rest.shape, np.uint64)
    for i in range(bits):
        out |= ((rest >> np.uint64(i)) & np.uint64(1)) << np.uint64(bits - 1 - i)
    return out


def key_layout(key_bits: int, key_frames: int) -> list[int]:
    """Bits of the key taken from the codes of places ``p, p-1, ...``: earlier lags get more."""
    base, extra = divmod(key_bits, key_frames)
    return [base + (1 if j < extra else 0) for j in range(key_frames)]


def sequence_keys(values: np.ndarray, layout: list[int]) -> np.ndarray:
    """Keys ``(n,) int64`` of codes ``values (n,) uint64`` in route order (see module doc)."""
    n = len(values)
    keys = np.zeros(n, np.int64)
    shift = 0
    for lag, bits in enumerate(layout):
        if bits == 0:
            continue
        src = np.maximum(np.arange(n) - lag, 0)
        part = (values[src] & np.uint64((1 << bits) - 1)).astype(np.int64)
        keys |= part << shift
        shift += bits
    return keys


def default_bucket_size(n_places: int) -> float:
    """Places a bucket by default: 8, fewer for small maps (``n / 2000``, at least 1).

    A query frame reads ``probes x bucket_size`` entries; in a small map that is a large
    share of all places, and chance hits then drown the true alignment.
    """
    return float(min(8.0, max(1.0, n_places / 2000.0)))


def default_key_bits(n_places: int, n_bits: int, bucket_size: float | None = None) -> int:
    """Key length giving ``bucket_size`` places a bucket within a factor sqrt(2) (4 to n_bits-8)."""
    if bucket_size is None:
        bucket_size = default_bucket_size(n_places)
    k = int(round(math.log2(max(n_places, 2) / bucket_size)))
    return int(min(max(k, 4), min(24, n_bits - 8)))


def code_size_for_budget(
    n_places: int, budget_bytes: float = 8.0, bucket_size: float | None = None
) -> int:
    """Largest code (bytes, 1..8) whose per-place storage fits ``budget_bytes``.

    Per place: the code bits not in the key plus ``ceil(log2 n)`` id bits. The parts
    shared by all places (bucket table, codec state, header) are left out of the choice:
    they are what makes a small map cost more per place, whatever the code size; at
    millions of places they add well under half a byte (see ``bytes_per_place``).
    """
    id_bits = max(1, int(n_places - 1).bit_length())
    best = 1
    for size in range(1, MAX_CODE_BYTES + 1):
        k = default_key_bits(n_places, 8 * size, bucket_size)
        if 8 * size - k + id_bits <= 8 * budget_bytes:
            best = size
    return best


def _bitmap_bytes(key_bits: int) -> int:
    return ((1 << key_bits) + 7) // 8


def occupied_bitmap(offsets: np.ndarray) -> np.ndarray:
    """Bitmap ``uint8`` of the non-empty buckets (bucket ``b``: bit ``b & 7``, byte ``b >> 3``)."""
    counts = np.diff(np.asarray(offsets, np.int64))
    return np.packbits(counts > 0, bitorder="little")


class OverloadedIndex:
    """Compact place index with colliding buckets (faiss-like ``add`` / ``search``).

    ``add`` places in route order (database position = order of addition). The
    index is built on first use; more places can still be added afterwards.
    """

    def __init__(
        self,
        codec: CoarseCodec,
        key_bits: int | None = None,
        bucket_size: float | None = None,
        describer: dict | None = None,
        key_frames: int = 1,
    ) -> None:
        if not codec.is_fitted:
            raise PlaceprintError("the codec is not fitted: call codec.fit(database) first")
        if codec.code_size > MAX_CODE_BYTES:
            raise PlaceprintError(f"the index holds codes of at most {MAX_CODE_BYTES} bytes")
        if key_bits is not None and not 1 <= key_bits <= min(24, codec.n_bits - 1):
            raise PlaceprintError(f"key_bits must be in 1..{min(24, codec.n_bits - 1)}")
        self.codec = codec
        if not 1 <= key_frames <= 8:
            raise PlaceprintError("key_frames must be in 1..8")
        self.requested_key_bits = key_bits
        self.key_frames = int(key_frames)
        self.bucket_size = None if bucket_size is None else float(bucket_size)
        self.describer = describer or {}
        self.generation: str | None = None  # build id shared with the side files
        self._pending: list[np.ndarray] = []
        self._n_built = 0
        self._key_bits = key_bits or 0
        self.prefix_bits = 0  # 0: places in a bucket in route order (files of format 1)

    # ---------------------------------------------------------------- adding
    @property
    def ntotal(self) -> int:
        """Number of places in the index."""
        return self._n_built + sum(len(c) for c in self._pending)

    @property
    def key_bits(self) -> int:
        """Bits of the bucket key (chosen when the index is built)."""
        self._ensure_built()
        return self._key_bits

    @property
    def layout(self) -> list[int]:
        """Key bits taken from the codes of places ``p, p-1, ...``."""
        return key_layout(self.key_bits, self.key_frames)

    @property
    def own_bits(self) -> int:
        """Bits of a place's own code that live in its key (not stored in ``rest``)."""
        return key_layout(self.key_bits, self.key_frames)[0]

    @property
    def rest_bits(self) -> int:
        return self.codec.n_bits - key_layout(self._key_bits, self.key_frames)[0]

    @property
    def id_bits(self) -> int:
        return max(1, int(self._n_built - 1).bit_length())

    def add(self, X: np.ndarray, chunk: int = 1 << 18) -> None:
        """Encode descriptors ``X (n, d)`` and append them as the next places of the route."""
        for start in range(0, len(X), chunk):
            self.add_codes(self.codec.encode(X[start : start + chunk]))

    def add_codes(self, codes: np.ndarray) -> None:
        """Append codes ``(n, code_size) uint8`` as the next places of the route."""
        codes = check_codes(codes, self.codec.code_size)
        self._pending.append(codes_to_int(codes))

    def build(self) -> OverloadedIndex:
        """Build the buckets now (otherwise done on first use); returns ``self``."""
        self._ensure_built()
        return self

    def _ensure_built(self) -> None:
        if not self._pending:
            if self._n_built == 0:
                raise PlaceprintError("the index is empty: add places first")
            return
        parts = ([self._built_ints()] if self._n_built else []) + self._pending
        values = np.concatenate(parts)
        self._pending = []
        self._build(values)

    def _build(self, values: np.ndarray) -> None:
        n = len(values)
        if n >= 2**32 - 1:
            raise PlaceprintError("the index holds fewer than 2**32 places")
        k = self.requested_key_bits or default_key_bits(n, self.codec.n_bits, self.bucket_size)
        self._key_bits = k
        layout = key_layout(k, self.key_frames)
        keys = sequence_keys(values, layout).astype(np.uint32)
        rest = values >> np.uint64(layout[0])
        prefix_bits = min(PREFIX_BITS, self.codec.n_bits - layout[0])
        sort_key = (keys.astype(np.uint64) << np.uint64(prefix_bits)) | rest_prefix(
            rest, prefix_bits
        )
        order = np.argsort(sort_key, kind="stable")
        del sort_key
        counts = np.bincount(keys, minlength=1 << k)
        offsets = np.zeros((1 << k) + 1, np.uint32)
        np.cumsum(counts, out=offsets[1:])
        self._n_built = n
        self.prefix_bits = prefix_bits
        self.offsets = offsets
        self.occupied = occupied_bitmap(offsets)
        self.ids = pack_fields(order.astype(np.uint64), self.id_bits)
        self.rest = pack_fields(rest, self.rest_bits)

    # --------------------------------------------------------------- reading
    def keys_of_codes(self, codes: np.ndarray) -> np.ndarray:
        """Keys ``(n,) int64`` of a run of consecutive codes ``(n, code_size) uint8``.

        The first ``key_frames - 1`` keys repeat the first code for the missing places.
        """
        self._ensure_built()
        return sequence_keys(codes_to_int(check_codes(codes, self.codec.code_size)), self.layout)

    def lookup(self, key: int) -> np.ndarray:
        """Database positions ``(m,) int64`` whose key equals ``key`` (ascending)."""
        self._ensure_built()
        if not 0 <= key < (1 << self.key_bits):
            raise PlaceprintError(f"key must be in 0..{(1 << self.key_bits) - 1}")
        a, b = int(self.offsets[key]), int(self.offsets[key + 1])
        return np.sort(unpack_fields(self.ids, self.id_bits, a, b - a).astype(np.int64))

    def rest_of(self, positions: np.ndarray) -> np.ndarray:
        """Rest bits (code without key) of database ``positions`` as ``(m,) uint64``."""
        self._ensure_built()
        positions = np.asarray(positions, np.int64)
        if positions.size and (positions.min() < 0 or positions.max() >= self._n_built):
            raise PlaceprintError(f"positions must be in 0..{self._n_built - 1}")
        return gather_fields(self.rest, self.rest_bits, positions)

    def keys_in_route_order(self) -> np.ndarray:
        """Key of every place ``(n,) uint32``, recovered from bucket membership."""
        self._ensure_built()
        return self._built_keys()

    def _built_keys(self) -> np.ndarray:
        ids = unpack_fields(self.ids, self.id_bits, 0, self._n_built).astype(np.int64)
        counts = np.diff(self.offsets.astype(np.int64))
        keys = np.empty(self._n_built, np.uint32)
        keys[ids] = np.repeat(np.arange(len(counts), dtype=np.uint32), counts)
        return keys

    def reconstruct_int(self) -> np.ndarray:
        """Every place's full code as little-endian ``(n,) uint64``."""
        self._ensure_built()
        return self._built_ints()

    def _built_ints(self) -> np.ndarray:
        rest = unpack_fields(self.rest, self.rest_bits, 0, self._n_built)
        own = key_layout(self._key_bits, self.key_frames)[0]
        keys = self._built_keys().astype(np.uint64) & np.uint64((1 << own) - 1)
        return (rest << np.uint64(own)) | keys

    def reconstruct(self) -> np.ndarray:
        """Every place's full code ``(n, code_size) uint8`` (exactly what was added)."""
        self._ensure_built()
        return int_to_codes(self.reconstruct_int(), self.codec.code_size)

    # --------------------------------------------------------------- storage
    def nbytes(self) -> dict[str, int]:
        """Bytes of every structure needed to answer a query from raw descriptors.

        The parts add up exactly to the size of the saved file: ``codec_state`` holds the
        whole projection from the raw descriptor to the code (nothing else is applied to
        queries), ``header`` the file's header, alignment padding and checksum.
        """
        self._ensure_built()
        meta, arrays = self._container()
        parts = {
            "rest_codes": int(self.rest.nbytes),
            "bucket_ids": int(self.ids.nbytes),
            "bucket_offsets": int(self.offsets.nbytes),
            "bucket_bitmap": int(self.occupied.nbytes),
            "codec_state": self.codec.state_bytes(),
        }
        parts["header"] = container_size(FILE_KIND, meta, arrays) - sum(parts.values())
        return parts

    def bytes_per_place(self) -> float:
        """All-in bytes per place: the saved file's size divided by the number of places."""
        return sum(self.nbytes().values()) / self.ntotal

    def info(self) -> dict:
        """Summary for ``placeprint info``."""
        self._ensure_built()
        counts = np.diff(self.offsets.astype(np.int64))
        return {
            "places": self.ntotal,
            "bytes_per_place": round(self.bytes_per_place(), 4),
            "bytes": self.nbytes(),
            "codec": {
                "name": "coarse",
                "code_size": self.codec.code_size,
                "bits_per_dim": self.codec.bits_per_dim,
                "dims": self.codec.n_dims,
                "input_dim": self.codec.input_dim,
            },
            "key_bits": self.key_bits,
            "key_frames": self.key_frames,
            "key_layout": self.layout,
            "rest_bits": self.rest_bits,
            "id_bits": self.id_bits,
            "buckets_used": int((counts > 0).sum()),
            "bucket_size_mean": round(float(counts[counts > 0].mean()), 3),
            "bucket_size_max": int(counts.max()),
            "describer": self.describer,
        }

    def _container(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {
            "places": self._n_built,
            "key_bits": self._key_bits,
            "requested_key_bits": self.requested_key_bits,
            "key_frames": self.key_frames,
            "bucket_size": self.bucket_size,
            "describer": self.describer,
            "prefix_bits": self.prefix_bits,
        }
        if self.generation:
            meta["generation"] = self.generation
        arrays = {f"codec.{k}": np.asarray(v) for k, v in self.codec.state().items()}
        arrays.update(
            {"offsets": self.offsets, "occupied": self.occupied, "ids": self.ids, "rest": self.rest}
        )
        return meta, arrays

    def save(self, path: str | Path) -> int:
        """Write the index to one file atomically; returns its size in bytes."""
        self._ensure_built()
        return write_container(path, FILE_KIND, *self._container())

    @classmethod
    def load(cls, path: str | Path, verify: bool = True) -> OverloadedIndex:
        """Open an index file (memory-mapped; checksum verified unless ``verify=False``)."""
        meta, arrays, _ = read_container(path, FILE_KIND, verify=verify)
        try:
            state = {k[6:]: v for k, v in arrays.items() if k.startswith("codec.")}
            codec = CoarseCodec.from_state(state)
            index = cls(
                codec,
                meta["requested_key_bits"],
                meta["bucket_size"],
                meta.get("describer"),
                int(meta["key_frames"]),
            )
            index._key_bits = int(meta["key_bits"])
            index._n_built = int(meta["places"])
            index.prefix_bits = int(meta.get("prefix_bits", 0))
            index.generation = meta.get("generation")
            index.offsets, index.ids, index.rest = arrays["offsets"], arrays["ids"], arrays["rest"]
        except (KeyError, ValueError, TypeError) as exc:
            raise PlaceprintError(f"{path} is not a valid placeprint index ({exc})") from None
        if index.offsets.shape != ((1 << index.key_bits) + 1,) or int(index.offsets[-1]) != (
            index._n_built
        ):
            raise PlaceprintError(f"{path} is not a valid placeprint index (bucket table)")
        if not 0 <= index.prefix_bits <= min(PREFIX_BITS, index.rest_bits):
            raise PlaceprintError(f"{path} is not a valid placeprint index (bucket order)")
        # files of the first format have no bitmap: derive it (what a rebuild would store)
        index.occupied = arrays.get("occupied")
        if index.occupied is None:
            index.occupied = occupied_bitmap(index.offsets)
        if index.occupied.shape != (_bitmap_bytes(index.key_bits),):
            raise PlaceprintError(f"{path} is not a valid placeprint index (bucket bitmap)")
        return index

    @classmethod
    def merge(cls, parts: list[OverloadedIndex]) -> OverloadedIndex:
        """One index of ``parts`` laid end to end (positions of part 2 follow part 1, ...).

        All parts must share one codec (built from the same fitted state), so indexes of
        route segments built independently can be joined.
        """
        if not parts:
            raise PlaceprintError("nothing to merge")
        for other in parts[1:]:
            if not other.codec.same_as(parts[0].codec):
                raise PlaceprintError("indexes built with different codecs cannot be merged")
            if other.key_frames != parts[0].key_frames:
                raise PlaceprintError("indexes with different key_frames cannot be merged")
        merged = cls(
            parts[0].codec,
            parts[0].requested_key_bits,
            parts[0].bucket_size,
            parts[0].describer,
            parts[0].key_frames,
        )
        for part in parts:
            merged._pending.append(part.reconstruct_int())
        return merged.build()

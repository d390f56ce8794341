"""Baselines that placeprint's compact index is compared to, behind one small interface.

Every baseline has ``fit(db)`` / ``add(db)`` (returning ``self``),
``search(query_seq, k) -> SequenceResult`` (positions of the **last** query frame,
lower score is better) and ``bytes_per_place()``; operations are counted as in
``guide/BENCHMARKS.md``:

- :class:`~placeprint.sequence.seqslam.SeqSLAM`: brute force on full descriptors,
  ``L * N * n_velocities``.
- :class:`CodeBruteForce`: the same trajectory search on Hamming distances of compact
  codes; every trajectory term is one comparison per started 8 bytes of code, so
  ``L * N * n_velocities * ceil(code_size / 8)``.
- :class:`FaissSequenceVoting`: faiss exact (``IndexFlatL2``) or product-quantised
  (``IndexPQ``) single-frame retrieval, then voting for the alignment; ``L * N``
  distance evaluations plus ``L * K * n_velocities`` votes.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> db = rng.normal(size=(500, 32)).astype(np.float32)
>>> query = db[200:230] + 0.1 * rng.normal(size=(30, 32)).astype(np.float32)
>>> FaissSequenceVoting("flat").fit(db).search(query, k=1).best
229
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

import numba
import numpy as np

from placeprint.errors import PlaceprintError
from placeprint.evaluate.recall import MIN_SEPARATION
from placeprint.sequence.result import SequenceResult
from placeprint.sequence.seqslam import (
    DEFAULT_VELOCITIES,
    SeqSLAM,
    _velocities,
    enhance_contrast,
    result_from_scores,
    seqslam_search,
    trajectory_offsets,
)

__all__ = [
    "Codec",
    "CodeBruteForce",
    "FaissSequenceVoting",
    "SeqSLAM",
    "bytes_per_place",
    "hamming_matrix",
]


class Codec(Protocol):
    """Anything that turns ``(n, d)`` descriptors into ``(n, code_size) uint8`` codes."""

    def encode(self, X: np.ndarray) -> np.ndarray: ...


def bytes_per_place(matcher: object) -> float:
    """Bytes per database place of any baseline (its ``bytes_per_place()``), see BENCHMARKS.md."""
    fn = getattr(matcher, "bytes_per_place", None)
    if fn is None:
        raise PlaceprintError(f"{type(matcher).__name__} does not report bytes_per_place")
    return float(fn())


# ---------------------------------------------------------------- Hamming brute force


def _as_words(codes: np.ndarray) -> np.ndarray:
    """``(n, code_size) uint8`` -> ``(n, ceil(code_size/8)) uint64`` (zero padded)."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    n, size = codes.shape
    words = -(-size // 8)
    padded = np.zeros((n, words * 8), np.uint8)
    padded[:, :size] = codes
    return padded.view(np.uint64)


@numba.njit(cache=True, inline="always")
def _popcount64(x: np.uint64) -> np.uint64:  # pragma: no cover
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


@numba.njit(cache=True, parallel=True)
def _hamming_words(db: np.ndarray, queries: np.ndarray) -> np.ndarray:  # pragma: no cover
    n, w = db.shape
    L = queries.shape[0]
    out = np.empty((L, n), np.float32)
    for j in numba.prange(n):
        for t in range(L):
            acc = np.uint64(0)
            for i in range(w):
                acc += _popcount64(db[j, i] ^ queries[t, i])
            out[t, j] = np.float32(acc)
    return out


def hamming_matrix(db_codes: np.ndarray, query_codes: np.ndarray) -> np.ndarray:
    """Hamming distances (bits) between every query code and every database code.

    ``db_codes`` ``(N, code_size) uint8``, ``query_codes`` ``(L, code_size) uint8``;
    returns ``(L, N) float32``.
    """
    db_codes, query_codes = np.asarray(db_codes), np.asarray(query_codes)
    if db_codes.ndim != 2 or query_codes.ndim != 2 or db_codes.shape[1] != query_codes.shape[1]:
        raise PlaceprintError(
            f"codes must be (n, code_size) with equal code_size, got {db_codes.shape} "
            f"and {query_codes.shape}"
        )
    if db_codes.dtype != np.uint8 or query_codes.dtype != np.uint8:
        raise PlaceprintError("codes must be uint8 arrays (the codec's encode output)")
    return _hamming_words(_as_words(db_codes), _as_words(query_codes))


class CodeBruteForce:
    """SeqSLAM's trajectory search on exhaustive Hamming distances of compact codes.

    ``codec`` has ``encode(X (n, d)) -> (n, code_size) uint8`` and is used as given
    (train it first). ``contrast_window`` > 0 applies SeqSLAM's local contrast
    enhancement to the Hamming matrix (0 = raw bit counts).
    """

    def __init__(
        self,
        codec: Codec,
        velocities: Sequence[float] = DEFAULT_VELOCITIES,
        contrast_window: int = 0,
        min_separation: int = MIN_SEPARATION,
    ) -> None:
        if not callable(getattr(codec, "encode", None)):
            raise PlaceprintError("codec must have an encode(X) -> (n, code_size) uint8 method")
        self.codec = codec
        self.velocities = tuple(float(v) for v in _velocities(velocities))
        self.contrast_window = int(contrast_window)
        self.min_separation = int(min_separation)

    def _encode(self, X: np.ndarray) -> np.ndarray:
        codes = np.asarray(self.codec.encode(np.asarray(X, dtype=np.float32)))
        if codes.ndim != 2 or codes.dtype != np.uint8 or codes.shape[0] != len(X):
            raise PlaceprintError(
                f"codec.encode must return (n, code_size) uint8, got {codes.dtype} {codes.shape}"
            )
        return codes

    def fit(self, db: np.ndarray) -> CodeBruteForce:
        """Encode ``db`` ``(N, d)`` and use it as the database (replaces any earlier one)."""
        self.codes_ = self._encode(db)
        return self

    def add(self, db: np.ndarray) -> CodeBruteForce:
        """Encode and append ``(n, d)`` places after the existing ones."""
        if not hasattr(self, "codes_"):
            return self.fit(db)
        codes = self._encode(db)
        if codes.shape[1] != self.codes_.shape[1]:
            raise PlaceprintError(
                f"code size {codes.shape[1]} != database's {self.codes_.shape[1]}: "
                "use the same codec for every add"
            )
        self.codes_ = np.vstack([self.codes_, codes])
        return self

    @property
    def ntotal(self) -> int:
        """Number of database places."""
        return int(self.codes_.shape[0]) if hasattr(self, "codes_") else 0

    def bytes_per_place(self) -> float:
        """``code_size`` plus the codec's own bytes (``codec.nbytes`` if it has one) / N."""
        if not hasattr(self, "codes_"):
            return 0.0
        extra = float(getattr(self.codec, "nbytes", 0) or 0)
        return self.codes_.shape[1] + extra / max(self.ntotal, 1)

    def search(self, query_seq: np.ndarray, k: int = 5) -> SequenceResult:
        """Best ``k`` distinct database positions of the last frame of ``query_seq`` ``(L, d)``."""
        if not hasattr(self, "codes_"):
            raise PlaceprintError("CodeBruteForce has no database: call fit(db) first")
        D = hamming_matrix(self.codes_, self._encode(query_seq))
        if self.contrast_window > 0:
            D = enhance_contrast(D, self.contrast_window)
        res = seqslam_search(D, self.velocities, k, self.min_separation)
        res.ops *= math.ceil(self.codes_.shape[1] / 8)
        return res


# ---------------------------------------------------------------- faiss + voting


class FaissSequenceVoting:
    """faiss single-frame retrieval plus voting for the sequence alignment.

    ``index``: ``"flat"`` (exact ``IndexFlatL2``) or ``"pq"`` (``IndexPQ`` with
    ``pq_bytes`` sub-quantisers of 8 bits, i.e. ``pq_bytes`` bytes a place), optionally
    after a ``pca_dim`` PCA (faiss ``PCAMatrix``, trained on the first ``fit``).
    ``k_frames`` neighbours of each query frame vote, for every velocity ``v``, for the
    end position ``p + round(v (L-1-t))``; the end position with most votes (over all
    velocities) wins. ``threads`` is faiss's OpenMP thread count during a search.
    """

    def __init__(
        self,
        index: str = "flat",
        pq_bytes: int = 8,
        pca_dim: int | None = None,
        k_frames: int = 100,
        velocities: Sequence[float] = DEFAULT_VELOCITIES,
        threads: int = 1,
        min_separation: int = MIN_SEPARATION,
    ) -> None:
        if index not in ("flat", "pq"):
            raise PlaceprintError(f"unknown faiss index {index!r}; use 'flat' or 'pq'")
        if k_frames < 1 or pq_bytes < 1 or threads < 1 or (pca_dim is not None and pca_dim < 1):
            raise PlaceprintError("k_frames, pq_bytes, threads and pca_dim must be >= 1")
        self.index = index
        self.pq_bytes = int(pq_bytes)
        self.pca_dim = pca_dim
        self.k_frames = int(k_frames)
        self.velocities = tuple(float(v) for v in _velocities(velocities))
        self.threads = int(threads)
        self.min_separation = int(min_separation)

    def factory_string(self) -> str:
        """The faiss ``index_factory`` description, e.g. ``"PCA64,PQ8x8"``."""
        body = "Flat" if self.index == "flat" else f"PQ{self.pq_bytes}x8"
        return f"PCA{self.pca_dim},{body}" if self.pca_dim else body

    def fit(self, db: np.ndarray) -> FaissSequenceVoting:
        """Train (PCA, PQ) on ``db`` ``(N, d)`` and add it as the database."""
        import faiss

        db = _float32_2d(db, "db")
        out_dim = self.pca_dim or db.shape[1]
        if self.pca_dim and self.pca_dim > db.shape[1]:
            raise PlaceprintError(f"pca_dim {self.pca_dim} exceeds descriptor size {db.shape[1]}")
        if self.index == "pq":
            if out_dim % self.pq_bytes:
                raise PlaceprintError(
                    f"PQ needs the dimension ({out_dim}) to be a multiple of pq_bytes "
                    f"({self.pq_bytes})"
                )
            if len(db) < 256:
                raise PlaceprintError(f"PQ with 8 bits needs >= 256 training places, got {len(db)}")
        self.index_ = faiss.index_factory(db.shape[1], self.factory_string(), faiss.METRIC_L2)
        with _faiss_threads(None):
            self.index_.train(db)
            self.index_.add(db)
        return self

    def add(self, db: np.ndarray) -> FaissSequenceVoting:
        """Append ``(n, d)`` places (no retraining)."""
        if not hasattr(self, "index_"):
            return self.fit(db)
        db = _float32_2d(db, "db")
        if db.shape[1] != self.index_.d:
            raise PlaceprintError(f"descriptor size {db.shape[1]} != index's {self.index_.d}")
        with _faiss_threads(None):
            self.index_.add(db)
        return self

    @property
    def ntotal(self) -> int:
        """Number of database places."""
        return int(self.index_.ntotal) if hasattr(self, "index_") else 0

    def bytes_per_place(self) -> float:
        """Serialised index size (codes, codebooks, PCA, headers) divided by N, bytes."""
        import faiss

        if not self.ntotal:
            return 0.0
        return float(faiss.serialize_index(self.index_).size) / self.ntotal

    def search_frames(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Single-frame retrieval: ``(squared L2 (n, k) float32, positions (n, k) int64)``.

        All ``queries`` ``(n, d)`` go in one faiss call; missing answers are ``-1``.
        """
        if not hasattr(self, "index_"):
            raise PlaceprintError("FaissSequenceVoting has no database: call fit(db) first")
        queries = _float32_2d(queries, "queries")
        if queries.shape[1] != self.index_.d:
            raise PlaceprintError(f"descriptor size {queries.shape[1]} != index's {self.index_.d}")
        with _faiss_threads(self.threads):
            dist, pos = self.index_.search(queries, min(int(k), self.ntotal))
        return dist, pos.astype(np.int64)

    def search(self, query_seq: np.ndarray, k: int = 5) -> SequenceResult:
        """Best ``k`` distinct database positions of the last frame of ``query_seq`` ``(L, d)``.

        Score of an end position = ``-(votes) + (mean rank of its voters) / K``: the
        vote count decides, better-ranked voters break ties (lower is better).
        """
        L = len(query_seq)
        _, pos = self.search_frames(query_seq, self.k_frames)
        scores = vote_scores(pos, self.ntotal, self.velocities)
        ops = L * self.ntotal + pos.size * len(self.velocities)
        scores = np.where(scores < 0, scores, np.inf)  # end positions without a vote
        return result_from_scores(scores, k, ops, self.min_separation)


def vote_scores(
    positions: np.ndarray, n_places: int, velocities: Sequence[float] = DEFAULT_VELOCITIES
) -> np.ndarray:
    """Votes of per-frame neighbours for sequence end positions, ``(n_places,) float64``.

    ``positions`` ``(L, K) int``: database neighbours of query frame ``t`` (``-1`` =
    none), best first. For each velocity, neighbour ``p`` of frame ``t`` votes for end
    position ``e = p + round(v (L-1-t))`` when the whole trajectory lies in the
    database. Returns ``-votes + mean_rank / K`` of the best velocity per ``e``
    (``0`` where no vote; lower is better).
    """
    positions = np.asarray(positions, dtype=np.int64)
    L, K = positions.shape
    ranks = np.broadcast_to(np.arange(K, dtype=np.float64), (L, K)).ravel()
    best = np.zeros(n_places)
    for v in _velocities(velocities):
        off = trajectory_offsets(L, float(v))
        end = (positions + off[:, None]).ravel()
        ok = (positions.ravel() >= 0) & (end < n_places) & (end - off[0] >= 0)
        votes = np.bincount(end[ok], minlength=n_places).astype(np.float64)
        rank_sum = np.bincount(end[ok], weights=ranks[ok], minlength=n_places)
        score = np.where(votes > 0, -votes + rank_sum / np.maximum(votes, 1) / K, 0.0)
        best = np.minimum(best, score)
    return best


def _float32_2d(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise PlaceprintError(f"{name} must be a non-empty (n, d) array, got shape {x.shape}")
    return np.ascontiguousarray(x, dtype=np.float32)


@contextmanager
def _faiss_threads(n: int | None) -> Iterator[None]:
    """Set faiss's OpenMP thread count for a block and restore it after (``None`` = keep)."""
    import faiss

    old = faiss.omp_get_max_threads()
    if n is not None:
        faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(old)

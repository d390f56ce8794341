"""Distractor routes assembled from real descriptor segments, as confusable as real places.

The Gaussian :class:`~placeprint.datasets.synthetic.RouteGenerator` matches mean,
variance and correlation along the route but not the tail that decides whether a
query's code lands near a wrong place: on Nordland its places are about 50x, 10x
and 4x less often within 10, 12 and 14 bits of a winter query than wrong real
places are (:mod:`placeprint.evaluate.realism`). Real places cluster (tunnels,
stations, look-alike forest) and the close pairs come from those clusters.
:class:`SegmentRouteGenerator` keeps them by building routes out of the real rows
it is fitted to (give it tuning rows only, never the places you test on), in the
codec's projected space ``(n, d) float32``:

* the route is a chain of *segments*; each copies a random contiguous run of the
  source rows (length log-uniform in ``length``), in a random direction, at a
  random speed (``speed``: source rows advanced per place, nearest row, so slow
  segments repeat rows and fast ones skip some). The source is read as a loop
  (after its last row comes its first), so every row is used equally often;
* every place then takes an in-distribution step towards one of its source row's
  ``neighbours`` nearest source rows (Euclidean): with ``c`` the mean of the row and
  its neighbours, ``x' = c + cos(a) (x - c) + sin(a) (x_nb - c)``, ``a = mix * pi/2``.
  Places in a tight cluster stay in it; isolated places move further;
* each segment is then turned by a near-identity random rotation (angle
  ``rotation``, from a seeded pool of ``POOL``) about ``pivot * c``: with ``pivot``
  near 1 clusters stay where they are while their members move.

Why (Nordland, 56-bit codes, winter test queries, 1M distractors from frames
<= 20000): turning segments about the origin, as a plain ``exp(theta S)`` does,
moves whole clusters away from the queries (``rotation=0.4`` alone keeps 0.47x
of the pairs within 10 bits), and so does per-place noise; plain copies keep the
tail (0.93x) but are copies. The defaults (``mix=0.5, rotation=0.2, pivot=0.8``;
``rotation`` picked by :func:`calibrate` on tuning frames) give 0.84x, 0.97x,
0.93x within 10/12/14 bits, per-dimension kurtosis 0.93 (real 0.77, Gaussian
0.00), and a median 9 bits between a distractor's code and its source's (1.7%
of codes identical: 5.6% of those made from dark frames, 1.5% of the others).

Rows are made in fixed blocks of ``BLOCK`` places, each seeded by ``(seed, block)``
(segments do not cross blocks), so place ``p`` is the same float32 row however
the route is chunked or accessed.

>>> import numpy as np
>>> rows = np.random.default_rng(0).standard_normal((500, 16)).astype(np.float32)
>>> gen = SegmentRouteGenerator(seed=1).fit(rows)
>>> next(gen.database(10, chunk=4)).shape
(4, 16)
>>> gen.database_rows(np.array([3, 7])).shape
(2, 16)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from placeprint.datasets.synthetic import _int_at_least, _is_int, _positions
from placeprint.errors import PlaceprintError

BLOCK = 8_192  # places per block: the unit of determinism and of random access
POOL = 256  # rotations in the seeded pool (fewer for wide rows: POOL_BYTES)
POOL_BYTES = 32 << 20  # the pool never holds more than this
MIN_ROWS = 50  # fewest source rows fit() accepts
KNN_BLOCK = 1_024  # source rows per block of the nearest-neighbour search
_SEGMENTS, _PLACES = 0, 1  # random streams of a block


class SegmentRouteGenerator:
    """Synthetic route of real segments, resampled, stepped within clusters and turned.

    Parameters (never changed by ``fit``):

    * ``seed``: non-negative int; the whole route follows from it.
    * ``length``: ``(min, max)`` places a segment, drawn log-uniformly.
    * ``speed``: ``(min, max)`` source rows advanced per place, drawn uniformly.
    * ``neighbours``: nearest source rows each place may step towards.
    * ``mix``: step size in ``[0, 1]`` (angle ``mix * pi/2``); 0 copies source rows.
    * ``rotation``: angle (radians, per unit vector) of each segment's random
      rotation; 0 turns nothing.
    * ``pivot``: each place turns about ``pivot`` times its neighbourhood mean
      (1: clusters stay where they are; 0: about the origin, which moves them).

    Learned state: ``rows_ (m, d) float32`` (the source), ``neighbours_ (m, K)`` int,
    ``centres_ (m, d)`` (mean of a row and its neighbours), ``rotations_
    (P, d, d) float32`` (the seeded pool; empty when ``rotation == 0``).
    """

    def __init__(
        self,
        seed: int = 0,
        length: tuple[int, int] = (20, 300),
        speed: tuple[float, float] = (0.7, 1.4),
        neighbours: int = 10,
        mix: float = 0.5,
        rotation: float = 0.2,
        pivot: float = 0.8,
    ):
        self.seed = seed
        self.length = length
        self.speed = speed
        self.neighbours = neighbours
        self.mix = mix
        self.rotation = rotation
        self.pivot = pivot

    # ---- fitting

    def fit(self, rows: np.ndarray) -> SegmentRouteGenerator:
        """Learn from ``rows (m, d)``: consecutive real places in route order (tuning only).

        ``m >= MIN_ROWS`` and ``m > neighbours``; the rows are copied. Returns ``self``.
        """
        self._check_params()
        x = np.asarray(rows)
        if x.ndim != 2 or not np.issubdtype(x.dtype, np.number):
            raise PlaceprintError(f"rows must be a numeric (m, d) array, got {x.shape} {x.dtype}")
        if x.shape[0] < max(MIN_ROWS, self.neighbours + 1) or x.shape[1] < 1:
            raise PlaceprintError(
                f"need at least {max(MIN_ROWS, self.neighbours + 1)} source rows of >= 1 "
                f"dimension, got {x.shape}"
            )
        x = np.ascontiguousarray(x, np.float32)
        if not np.all(np.isfinite(x)):
            raise PlaceprintError("rows contain NaN or inf values")
        self.rows_ = x.copy()
        self.neighbours_ = nearest_rows(x, self.neighbours)
        group = np.concatenate([x[:, None, :], x[self.neighbours_]], axis=1)
        self.centres_ = group.astype(np.float64).mean(axis=1).astype(np.float32)
        self.rotations_ = rotation_pool(self.seed, x.shape[1], self.rotation)
        return self

    # ---- generation

    def database(self, n: int, chunk: int = 262_144, start: int = 0) -> Iterator[np.ndarray]:
        """Yield places ``start .. start+n-1`` as ``(<=chunk, d) float32`` chunks.

        Place ``p`` is the same row whatever ``chunk`` and ``start`` are; one chunk and
        one block of ``BLOCK`` places are held at a time.
        """
        self._check_fitted()
        n, chunk, start = (
            _int_at_least(n, 1, "n"),
            _int_at_least(chunk, 1, "chunk"),
            _int_at_least(start, 0, "start"),
        )
        return self._stream(start, n, chunk)

    def database_rows(self, positions: np.ndarray) -> np.ndarray:
        """Random access: ``(k,)`` non-negative int positions -> ``(k, d) float32`` rows."""
        return self._gather(positions, 0)

    def sources(self, positions: np.ndarray) -> np.ndarray:
        """Source row (index into the fitted rows) each place copies: ``(k,)`` -> ``(k,) int64``."""
        return self._gather(positions, 1)

    def block(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Block ``b`` (from place ``b*BLOCK``): rows ``(BLOCK, d) float32``, sources ``(BLOCK,)``.

        Sources are indices into the fitted rows (``int64``).
        """
        self._check_fitted()
        seg_rng, place_rng = (_rng(self.seed, b, s) for s in (_SEGMENTS, _PLACES))
        src, seg_start, seg_rot = self._segments(seg_rng)
        x, k = self.rows_, self.neighbours_.shape[1]
        nb = self.neighbours_[src, place_rng.integers(0, k, BLOCK)]
        a = 0.5 * np.pi * float(self.mix)
        ca, sa = np.float32(np.cos(a)), np.float32(np.sin(a))
        c, out = self.centres_[src], x[src]
        out += (ca - 1) * (out - c) + sa * (x[nb] - c)  # mix = 0: exact copies
        if len(self.rotations_):
            pivot = np.float32(self.pivot) * c
            out -= pivot
            ends = np.append(seg_start[1:], BLOCK)
            for lo, hi, r in zip(seg_start, ends, seg_rot, strict=True):
                out[lo:hi] = out[lo:hi] @ self.rotations_[r]
            out += pivot
        return out.astype(np.float32, copy=False), src

    def _segments(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Source row of every place of a block, first place and rotation of every segment."""
        m = self.rows_.shape[0]
        lo, hi = self.length
        shortest = min(lo, int(np.floor((m - 1) / self.speed[1])) + 1)
        count = BLOCK // shortest + 1  # enough segments to fill the block
        length = np.floor(np.exp(rng.uniform(np.log(lo), np.log(hi + 1), count))).astype(np.int64)
        speed = rng.uniform(self.speed[0], self.speed[1], count)
        length = np.clip(np.minimum(length, np.floor((m - 1) / speed) + 1), 1, hi).astype(np.int64)
        first = rng.uniform(0.0, m, count)  # the source is read as a loop: even coverage
        backwards = rng.random(count) < 0.5
        rot = rng.integers(0, max(1, len(self.rotations_)), count)
        starts = np.concatenate([[0], np.cumsum(length)])
        used = int(np.searchsorted(starts, BLOCK, side="left"))  # segments that start inside
        seg = np.repeat(np.arange(count), length)[:BLOCK]
        step = np.arange(BLOCK) - starts[seg]
        step = np.where(backwards[seg], length[seg] - 1 - step, step)
        src = np.rint(first[seg] + speed[seg] * step).astype(np.int64) % m
        return src, starts[:used], rot[:used]

    def _gather(self, positions, which: int) -> np.ndarray:
        self._check_fitted()
        pos = _positions(positions)
        d = self.rows_.shape[1]
        out = np.empty((len(pos), d), np.float32) if which == 0 else np.empty(len(pos), np.int64)
        blocks = pos // BLOCK
        for b in np.unique(blocks):
            sel = np.flatnonzero(blocks == b)
            out[sel] = self.block(int(b))[which][pos[sel] - b * BLOCK]
        return out

    def _stream(self, start: int, n: int, chunk: int) -> Iterator[np.ndarray]:
        cur_b, cur = -1, None
        pos, end = start, start + n
        while pos < end:
            size = min(chunk, end - pos)
            out = np.empty((size, self.rows_.shape[1]), np.float32)
            filled = 0
            while filled < size:
                p = pos + filled
                b = p // BLOCK
                if b != cur_b:
                    cur_b, cur = b, self.block(b)[0]
                take = min(size - filled, (b + 1) * BLOCK - p)
                out[filled : filled + take] = cur[p - b * BLOCK : p - b * BLOCK + take]
                filled += take
            yield out
            pos += size

    # ---- reporting

    def stats(self) -> dict:
        """Parameters and fitted numbers for reports (JSON-ready).

        Measured on the first block: ``mean_segment_length`` (places) and ``shift_rms``,
        the RMS distance of a place from its source row relative to the RMS distance
        between consecutive source rows.
        """
        self._check_fitted()
        rows, src = self.block(0)
        _, seg_start, _ = self._segments(_rng(self.seed, 0, _SEGMENTS))
        x = self.rows_
        step = float(np.sqrt(((x[1:] - x[:-1]) ** 2).sum(axis=1).mean()))
        shift = float(np.sqrt(((rows - x[src]) ** 2).sum(axis=1).mean()))
        return {
            "generator": "segments",
            "seed": int(self.seed),
            "n_source": int(x.shape[0]),
            "dim": int(x.shape[1]),
            "length": [int(v) for v in self.length],
            "mean_segment_length": BLOCK / len(seg_start),
            "speed": [float(v) for v in self.speed],
            "neighbours": int(self.neighbours),
            "mix": float(self.mix),
            "rotation": float(self.rotation),
            "pivot": float(self.pivot),
            "rotation_pool": int(len(self.rotations_)),
            "shift_rms": shift / step if step > 0 else None,
        }

    # ---- checks

    def _check_params(self) -> None:
        if not _is_int(self.seed) or self.seed < 0:
            raise PlaceprintError(f"seed must be a non-negative int, got {self.seed!r}")
        lo, hi = self.length
        if not (_is_int(lo) and _is_int(hi) and 1 <= lo <= hi <= BLOCK):
            raise PlaceprintError(
                f"length must be ints 1 <= min <= max <= {BLOCK}, got {self.length}"
            )
        s0, s1 = self.speed
        if not 0 < s0 <= s1:
            raise PlaceprintError(f"speed must be 0 < min <= max, got {self.speed}")
        if not _is_int(self.neighbours) or self.neighbours < 1:
            raise PlaceprintError(f"neighbours must be an int >= 1, got {self.neighbours!r}")
        if not 0.0 <= self.mix <= 1.0:
            raise PlaceprintError(f"mix must be in [0, 1], got {self.mix!r}")
        if not 0.0 <= self.rotation <= np.pi:
            raise PlaceprintError(f"rotation must be an angle in [0, pi], got {self.rotation!r}")
        if not 0.0 <= self.pivot <= 1.0:
            raise PlaceprintError(f"pivot must be in [0, 1], got {self.pivot!r}")

    def _check_fitted(self) -> None:
        if not hasattr(self, "rows_"):
            raise PlaceprintError("SegmentRouteGenerator is not fitted; call fit(rows) first")


# ----------------------------------------------------------------------------- helpers


def nearest_rows(x: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` nearest other rows of each row of ``x (m, d)`` (Euclidean): ``(m, k) int64``.

    Sorted nearest first; ties broken by row number. Memory ``KNN_BLOCK x m`` floats.
    """
    x = np.asarray(x, np.float64)
    m = x.shape[0]
    sq = (x * x).sum(axis=1)
    out = np.empty((m, k), np.int64)
    for lo in range(0, m, KNN_BLOCK):
        hi = min(m, lo + KNN_BLOCK)
        d2 = sq[lo:hi, None] + sq[None, :] - 2.0 * (x[lo:hi] @ x.T)
        d2[np.arange(hi - lo), np.arange(lo, hi)] = np.inf
        part = np.argpartition(d2, k - 1, axis=1)[:, :k]
        dist = np.take_along_axis(d2, part, axis=1)
        order = np.lexsort((part, dist), axis=1)
        out[lo:hi] = np.take_along_axis(part, order, axis=1)
    return out


def rotation_pool(seed: int, dim: int, angle: float, size: int | None = None) -> np.ndarray:
    """Seeded near-identity rotations: ``(P, dim, dim) float32``.

    Each is the Cayley transform ``(I - A)^-1 (I + A)`` of ``A = angle/2 * S``,
    ``S = (G - G^T) / sqrt(2 dim)`` with ``G`` standard normal: exactly orthogonal,
    equal to ``exp(angle * S)`` up to third order, turning a unit vector by about
    ``angle`` radians. ``P = size`` or as many as fit ``POOL_BYTES`` (at most
    ``POOL``); empty when ``angle == 0``.
    """
    if angle == 0:
        return np.zeros((0, dim, dim), np.float32)
    size = size or max(1, min(POOL, POOL_BYTES // (4 * dim * dim)))
    rng = _rng(seed, 0, 2)
    eye = np.eye(dim)
    out = np.empty((size, dim, dim), np.float32)
    for i in range(size):
        g = rng.standard_normal((dim, dim))
        a = (0.5 * angle / np.sqrt(2.0 * dim)) * (g - g.T)
        out[i] = np.linalg.solve(eye - a, eye + a)
    return out


def calibrate(
    database: np.ndarray,
    queries: np.ndarray,
    encode: Callable[[np.ndarray], np.ndarray],
    param: str = "rotation",
    values=(0.0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8),
    tolerance: float = 1.25,
    gap: int = 100,
    n: int = 100_000,
    min_hits: int = 50,
    seed: int = 0,
    **fixed,
) -> dict:
    """Fit one strength (``param``) of :class:`SegmentRouteGenerator` on tuning places.

    ``database (m, d)`` and ``queries (m, d)``: the same places under two conditions
    (row ``i`` = place ``i``), tuning places only, projected; ``encode`` maps
    ``(k, d)`` rows to ``(k, c) uint8`` codes. Two folds: ``n`` distractors from one
    half of the rows (less the ``gap`` rows next to the other half), queries from
    the other half. ``realism[r]``: per-pair probability of a query within ``r``
    bits of a distractor over that of a real place more than ``gap`` rows from the
    query's own (route neighbours are left out: on rows the codec was fitted to
    they are unrealistically close), pair counts pooled over both folds. Picks the
    largest value (the most distant from its source) whose realism is within
    ``tolerance`` of 1 at every radius with ``>= min_hits`` real close pairs, else
    the closest. ``retention[r]`` (reported): close pairs kept relative to plain
    copies (``mix = rotation = 0``, same seed, hence the same segments).

    Returns ``{"param", "value", "tolerance", "radii_used", "real_hits", "table":
    [{"value", "realism", "retention", "source_hamming_median"}, ...]}``.
    """
    db = np.asarray(database, np.float32)
    q = np.asarray(queries, np.float32)
    if db.shape != q.shape or db.ndim != 2:
        raise PlaceprintError(
            f"database and queries must be the same (m, d) shape: {db.shape}, {q.shape}"
        )
    m, half = db.shape[0], db.shape[0] // 2
    if half - gap < MIN_ROWS:
        raise PlaceprintError(
            f"calibrate needs at least {2 * (MIN_ROWS + gap)} rows with gap={gap}, got {m}"
        )
    folds = [
        (np.arange(0, half - gap), np.arange(half, m)),
        (np.arange(half + gap, m), np.arange(half)),
    ]
    args = (db, q, encode, encode(db), folds, gap, n, seed)
    copies = _fold_counts(*args, {**fixed, "mix": 0.0, "rotation": 0.0})
    table = []
    for value in values:
        counts = _fold_counts(*args, {**fixed, param: value})
        retention, realism = {}, {}
        for r, c in counts["distractor"].items():
            base = copies["distractor"][r]
            retention[r] = c / base if base else None
            p_real = counts["real"][r] / counts["real_pairs"]
            realism[r] = c / counts["distractor_pairs"] / p_real if p_real else None
        table.append(
            {
                "value": float(value),
                "realism": realism,
                "retention": retention,
                "source_hamming_median": counts["source_hamming_median"],
            }
        )
    used = [r for r, c in copies["real"].items() if c >= min_hits]

    def worst(row: dict) -> float:
        vals = [row["realism"][r] for r in used]
        return max((np.inf if v == 0 else max(v, 1.0 / v)) for v in vals) if vals else np.inf

    ok = [t for t in table if worst(t) <= tolerance]
    best = max(ok, key=lambda t: t["value"]) if ok else min(table, key=worst)
    return {
        "param": param,
        "value": best["value"],
        "tolerance": tolerance,
        "radii_used": used,
        "real_hits": copies["real"],
        "table": table,
    }


def _fold_counts(db, q, encode, real_codes, folds, gap, n, seed, params) -> dict:
    """Close-pair counts of both folds, pooled, for one parameter setting."""
    from placeprint.evaluate.realism import code_words, distractor_realism

    out: dict = {"distractor": {}, "real": {}, "distractor_pairs": 0, "real_pairs": 0}
    flips = []
    for source, test in folds:
        gen = SegmentRouteGenerator(seed=seed, **params).fit(db[source])
        codes = np.concatenate([encode(c) for c in gen.database(n, chunk=65_536)])
        res = distractor_realism(encode(q[test]), test, real_codes, codes, exclusion=gap)
        for r, v in res["radii"].items():
            out["distractor"][r] = out["distractor"].get(r, 0) + v["hits_distractor"]
            out["real"][r] = out["real"].get(r, 0) + v["hits_real"]
        out["distractor_pairs"] += res["pairs"]["distractor"]
        out["real_pairs"] += res["pairs"]["real"]
        own = code_words(encode(db[source][gen.sources(np.arange(n))]))
        xor = own ^ code_words(codes)
        flips.append(sum(np.bitwise_count(xor[:, k]).astype(np.int64) for k in range(xor.shape[1])))
    out["source_hamming_median"] = float(np.median(np.concatenate(flips)))
    return out


def _rng(seed: int, block: int, stream: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream, block])))

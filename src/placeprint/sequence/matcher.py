"""The compact sequence matcher over an :class:`OverloadedIndex` (batch and streaming).

1. Every query frame probes the buckets of its most likely keys (multi-probe, generated
   one at a time in order of likelihood by flipping its least reliable key bits) until
   it has read ``entry_budget / L`` entries or made ``probe_budget / L`` probes (at most
   ``max_probes``); a bitmap of non-empty buckets makes an empty probe one bit test. A
   bucket too crowded for what is left is narrowed to its places that share the frame's
   next code bits (a binary search: places in a bucket are sorted by those bits), one
   more bit until it fits: crowded keys, where real and distractor places pile up, are
   still searched, only more selectively (``narrow_probes``). The work per query stays
   about constant whatever the map's size, bucket sizes and query length: short queries
   search each frame deeper.
2. Each bucket entry ``(frame t, place p)`` is a *hit*: a guess that query frame ``t``
   was taken at place ``p``. Hits vote for their diagonal ``p - t`` (bins of
   ``group_width`` places, each frame voting once): the true alignment collects hits
   from many frames, chance hits in a large map almost never share a bin.
3. Anchors are the hits of multi-vote bins (most votes first), then single hits (when
   they do not all fit: those whose own rest bits agree best with their frame's),
   ``anchor_budget / L`` in all. Each gets a +-2
   frame local check (the same places at every velocity in 0.8-1.2); the best
   ``local_budget / L`` propose alignments ``(end, velocity)`` for every velocity,
   checked on every ``step``-th frame, and the best ``shortlist`` are verified with the
   codes along the whole trajectory. The best is then refined: every end within what
   the velocity range allows over ``L`` frames (``refine_reach``), at every velocity,
   so that an anchor on a neighbouring diagonal still leads to the true alignment.
4. Distinct answers are returned best first, with a confidence: how far the best
   stands out from the best alignment outside a window around it.

Every per-query step is counted (``SequenceResult.work``; ``docs/accounting.md``):
key computation, probe generation, bucket-offset reads, entries, votes, sorting and
selection, code comparisons. The projection of the query descriptors to codes is
inside the timed search and reported beside the operations (multiply-adds).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from placeprint.codec.coarse import check_descriptors
from placeprint.errors import PlaceprintError
from placeprint.index.bitpack import codes_to_int
from placeprint.index.overloaded import OverloadedIndex, rest_prefix, sequence_keys
from placeprint.sequence import kernels
from placeprint.sequence.result import SequenceResult

DEFAULT_VELOCITIES = (0.8, 0.9, 1.0, 1.1, 1.2)
MIN_FRAME_ENTRIES = 16  # entries a frame may read however small the map


@dataclass
class MatcherSettings:
    """Knobs of the matcher; the defaults are the operating point chosen by
    ``benchmarks/validate.py`` (``benchmarks/results/validation.json``).

    ``entry_budget`` is the bucket entries read per query (``entry_budget / L`` a frame,
    but at most ``max_map_share`` of the map: in a small map chance hits would drown the
    true alignment); ``probe_budget`` the buckets probed per query (``probe_budget / L``
    a frame, 1 to ``max_probes``; exactly ``probes`` a frame if that is set);
    ``anchors``/``local`` fix the anchors kept at each stage; left ``None`` they follow
    the per-query budgets (``*_budget / L``);
    ``flip_bits``/``max_flips`` bound the multi-probe enumeration; a bucket too large for
    what is left is narrowed to the part that shares the frame's next code bits when it
    is among the frame's first ``narrow_probes`` probes (0: never; such a bucket is
    skipped), and every ``search_per_probe`` binary-search steps of it count as one more
    probe against the frame's probe budget (about the ops of one probe), so crowded maps
    do not raise the work per query; ``agreement`` is the
    expected share of equal rest bits at the true place (``None``: derived from the
    codec's measured cross-condition noise); ``vote_weight`` is the evidence of each
    extra vote of an anchor's diagonal, ``group_width`` the width (places) of a vote
    bin; ``min_separation`` and ``confidence_window`` (places) define distinct answers
    and the confidence.
    """

    velocities: tuple[float, ...] = DEFAULT_VELOCITIES
    probes: int | None = None
    entry_budget: int = 2000
    max_map_share: float = 0.01
    probe_budget: int = 3200
    max_probes: int = 1024
    flip_bits: int = 12
    max_flips: int = 4
    anchors: int | None = None
    anchor_budget: int = 51200
    radius: int = 2
    local: int | None = None
    local_budget: int = 3200
    step: int = 4
    shortlist: int = 8
    agreement: float | None = None
    vote_weight: float = 4.0
    group_width: int = 4
    min_separation: int = 5
    confidence_window: int = 10
    min_length: int = 1
    refine: bool = True
    narrow_probes: int = 4
    search_per_probe: int = 4

    def check(self) -> None:
        v = np.asarray(self.velocities, float)
        if v.ndim != 1 or v.size == 0 or np.any(v <= 0) or not np.all(np.isfinite(v)):
            raise PlaceprintError("velocities must be a non-empty list of positive numbers")
        for name in (
            "entry_budget",
            "probe_budget",
            "max_probes",
            "local_budget",
            "anchor_budget",
            "step",
            "shortlist",
            "min_length",
            "flip_bits",
            "max_flips",
            "group_width",
            "search_per_probe",
        ):
            if getattr(self, name) < 1:
                raise PlaceprintError(f"{name} must be >= 1")
        for name in ("probes", "local", "anchors"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise PlaceprintError(f"{name} must be >= 1")
        if self.narrow_probes < 0:
            raise PlaceprintError("narrow_probes must be >= 0")
        if not 0.0 < self.max_map_share <= 1.0:
            raise PlaceprintError("max_map_share must be in (0, 1]")
        if self.agreement is not None and not 0.5 < self.agreement < 1.0:
            raise PlaceprintError("agreement must be in (0.5, 1)")
        if not 0 <= self.radius <= 2:
            raise PlaceprintError("radius must be 0, 1 or 2 (beyond 2 frames velocity matters)")
        if self.flip_bits > 62:
            raise PlaceprintError("flip_bits must be <= 62")


def expected_agreement(codec, rest_dims: slice) -> float:
    """Expected share of equal bits at the true place, from the codec's measured noise.

    A unit-variance database value ``x`` and its other-condition view ``x + e`` (noise
    std ``sigma`` per dimension, learned from pairs) fall on the same side of the median
    with probability ``1 - arccos(rho) / pi``, ``rho = 1 / sqrt(1 + sigma**2)``.
    """
    sigma = np.asarray(codec.noise_, float)[rest_dims]
    if sigma.size == 0:
        return 0.6
    rho = 1.0 / np.sqrt(1.0 + sigma**2)
    return float(np.clip(np.mean(1.0 - np.arccos(rho) / np.pi), 0.51, 0.95))


class SequenceMatcher:
    """Match query sequences against an :class:`OverloadedIndex`.

    >>> # result = SequenceMatcher(index).match(query_descriptors)  # (L, d), oldest first
    """

    def __init__(self, index: OverloadedIndex, **settings) -> None:
        unknown = set(settings) - set(MatcherSettings.__dataclass_fields__)
        if unknown:
            raise PlaceprintError(f"unknown matcher option(s): {', '.join(sorted(unknown))}")
        self.settings = MatcherSettings(**settings)
        self.settings.check()
        index._ensure_built()
        self.index = index
        self.velocities = np.asarray(self.settings.velocities, np.float64)
        counts = np.diff(np.asarray(index.offsets, np.int64))
        self.mean_bucket = float(counts[counts > 0].mean()) if counts.any() else 1.0
        codec = index.codec
        if self.settings.agreement is not None:
            self.agreement = float(self.settings.agreement)
        elif codec.bits_per_dim == 1:
            self.agreement = expected_agreement(codec, slice(index.own_bits, codec.n_dims))
        else:
            self.agreement = 0.6

    # ------------------------------------------------------------ per frame
    def probes_per_frame(self, length: int) -> int:
        """Most probes of each frame of a ``length``-frame query: ``probe_budget / L``
        (1 to ``max_probes``), or ``probes`` if set."""
        s = self.settings
        if s.probes is not None:
            return int(s.probes)
        return int(min(s.max_probes, max(1, round(s.probe_budget / max(length, 1)))))

    def entries_per_frame(self, length: int) -> int:
        """Bucket entries each frame of a ``length``-frame query may read."""
        if self.settings.probes is not None:
            return 2**62  # a fixed number of probes reads whatever their buckets hold
        # at most a share of the map (but a few buckets' worth even in a tiny map)
        share = max(
            self.index.ntotal * self.settings.max_map_share,
            MIN_FRAME_ENTRIES,
            2 * self.mean_bucket,
        )
        per_frame = min(self.settings.entry_budget / max(length, 1), share)
        return max(1, int(round(per_frame)))

    def anchors_keep(self, length: int) -> int:
        """Anchors given the local check: ``anchor_budget / L`` (32..4096) unless ``anchors``."""
        s = self.settings
        if s.anchors is not None:
            return int(s.anchors)
        return int(min(4096, max(32, round(s.anchor_budget / max(length, 1)))))

    def refine_reach(self, length: int) -> int:
        """Places either side of the best alignment's end that refinement searches:
        how far the end moves over ``L`` frames between the extreme velocities, halved."""
        v = self.velocities
        return int(round((float(v.max()) - float(v.min())) / 2 * (max(length, 1) - 1)))

    def local_keep(self, length: int) -> int:
        """Anchors kept after the local check, ``local_budget / L`` (8..512) unless ``local``.

        Each kept anchor is checked on every ``step``-th frame for every velocity, so this
        keeps that stage's work about constant across query lengths.
        """
        s = self.settings
        if s.local is not None:
            return int(s.local)
        return int(min(512, max(8, round(s.local_budget / max(length, 1)))))

    def _frame_codes(
        self, Z: np.ndarray, history: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        """Keys ``(L,)``, rest bits ``(L,) uint64``, key-bit costs ``(L, k)``, valid frames.

        ``Z`` are projected frames; ``history`` the projected frames before them. Frames
        without ``key_frames - 1`` predecessors cannot form a sequence key (not valid).
        Also returns the ops of computing keys and bit reliabilities.
        """
        codec, layout = self.index.codec, self.index.layout
        ints = codes_to_int(codec.quantize(Z))
        rest = ints >> np.uint64(self.index.own_bits)
        before = 0 if history is None else len(history)
        Zall = Z if not before else np.concatenate([history, Z])
        ints_all = ints if not before else codes_to_int(codec.quantize(Zall))
        keys = sequence_keys(ints_all, layout)[before:]
        errors_all = codec.bit_error_rates(codec.key_margins(Zall, layout[0]))
        idx = np.arange(before, before + len(Z))
        parts = [errors_all[np.maximum(idx - j, 0), :b] for j, b in enumerate(layout) if b]
        # a tiny index may have a 0-bit key (one bucket): nothing to flip
        errors = np.concatenate(parts, axis=1) if parts else np.zeros((len(Z), 0))
        costs = np.log1p(-errors) - np.log(errors)
        valid = idx >= len(layout) - 1
        ops = len(Z) * (1 + errors.shape[1])
        return keys, rest, np.ascontiguousarray(costs), valid, ops

    def _visit(self, keys, rest, costs, valid, length: int, work: np.ndarray):
        """Hits of every frame's probed buckets: ``(frames, positions, probe ranks)``."""
        ix, s = self.index, self.settings
        prefix_bits = ix.prefix_bits if s.narrow_probes else 0
        query_prefix = rest_prefix(rest, prefix_bits)
        return kernels.visit_frames(
            ix.offsets,
            ix.occupied,
            ix.ids,
            np.int64(ix.id_bits),
            keys.astype(np.int64),
            costs,
            valid,
            np.int64(self.probes_per_frame(length)),
            np.int64(s.flip_bits),
            np.int64(s.max_flips),
            np.int64(self.entries_per_frame(length)),
            ix.rest,
            np.int64(ix.rest_bits),
            np.int64(prefix_bits),
            query_prefix,
            np.int64(s.narrow_probes),
            np.int64(s.search_per_probe),
            work,
        )

    # --------------------------------------------------------------- verify
    def _rank(
        self,
        rest_q: np.ndarray,
        hit_frames: np.ndarray,
        hit_positions: np.ndarray,
        hit_ranks: np.ndarray,
        k: int,
        work: np.ndarray,
    ) -> SequenceResult:
        s, ix = self.settings, self.index
        L = len(rest_q)
        if hit_frames.size == 0:
            return SequenceResult.empty(k, int(work.sum()), _work_dict(work))
        votes, multi = kernels.vote_diagonals(
            hit_frames, hit_positions, np.int64(s.group_width), work
        )
        anchors = kernels.pick_anchors(
            hit_ranks,
            multi,
            np.int64(self.anchors_keep(L)),
            ix.rest,
            np.int64(ix.rest_bits),
            rest_q.astype(np.uint64),
            hit_frames,
            hit_positions,
            work,
        )
        ends, _, dist = kernels.verify(
            ix.rest,
            np.int64(ix.rest_bits),
            np.int64(ix.ntotal),
            rest_q.astype(np.uint64),
            hit_frames,
            hit_positions,
            votes,
            anchors,
            self.velocities,
            np.int64(s.radius),
            np.int64(self.local_keep(L)),
            np.int64(s.step),
            np.int64(s.shortlist),
            float(self.agreement),
            float(s.vote_weight),
            work,
        )
        valid = np.isfinite(dist) & (ends >= 0) & (ends < ix.ntotal)
        ends, dist = ends[valid], dist[valid]
        if ends.size and s.refine:
            # the best alignment may sit on a neighbouring diagonal of the true one: search
            # the ends its velocity uncertainty allows, at every velocity
            best = int(np.argmin(dist))
            end, _, d = kernels.refine_end(
                ix.rest,
                np.int64(ix.rest_bits),
                np.int64(ix.ntotal),
                rest_q.astype(np.uint64),
                np.int64(ends[best]),
                self.velocities,
                np.int64(self.refine_reach(L)),
                np.int64(2 * s.step),  # a coarse shortlist: the 3 best are verified in full
                np.int64(3),
                work,
            )
            if d < dist[best]:
                ends, dist = np.append(ends, end), np.append(dist, d)
        dist = dist / max(ix.rest_bits, 1)
        if ends.size == 0:
            return SequenceResult.empty(k, int(work.sum()), _work_dict(work))
        order = np.argsort(dist, kind="stable")
        work[kernels.W_SORT] += len(order)
        positions, scores = [], []
        for i in order:
            work[kernels.W_SORT] += 1  # one candidate examined for distinctness
            if all(abs(ends[i] - p) >= s.min_separation for p in positions):
                positions.append(int(ends[i]))
                scores.append(float(dist[i]))
                if len(positions) == k:
                    break
        confidence = self._confidence(ends, dist, positions[0], L)
        pad = k - len(positions)
        return SequenceResult(
            np.array(positions + [-1] * pad),
            np.array(scores + [np.inf] * pad),
            confidence,
            int(work.sum()),
            _work_dict(work),
        )

    def _confidence(self, ends: np.ndarray, dist: np.ndarray, best: int, L: int) -> float:
        """``(r - s1) / (r - s2)``: r = 0.5 (unrelated codes), s1 best, s2 best outside window.

        Without a verified alignment outside the window, s2 is taken as the typical best
        of chance alignments, ``0.5 - 3 * sqrt(0.25 / (rest_bits * L))``.
        """
        w = self.settings.confidence_window
        s1 = float(dist.min())
        outside = np.abs(ends - best) > w
        chance = 0.5 - 3.0 * np.sqrt(0.25 / (max(self.index.rest_bits, 1) * L))
        s2 = float(dist[outside].min()) if outside.any() else chance
        if 0.5 - s2 <= 1e-9:
            return float("inf") if 0.5 - s1 > 1e-9 else 1.0
        return max(1.0, (0.5 - s1) / (0.5 - s2))

    # ---------------------------------------------------------------- public
    def _check_sequence(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim == 1:
            raise PlaceprintError("a query sequence must be (L, d): one descriptor per frame")
        X = check_descriptors(X, self.index.codec.input_dim, "query descriptors")
        L = X.shape[0]
        if L == 0:
            raise PlaceprintError("the query sequence is empty")
        if L < self.settings.min_length:
            raise PlaceprintError(
                f"the query sequence has {L} frames; at least {self.settings.min_length} needed"
            )
        if L > self.index.ntotal:
            raise PlaceprintError(
                f"the query sequence ({L} frames) is longer than the database "
                f"({self.index.ntotal} places)"
            )
        return X

    def match(self, X: np.ndarray, k: int = 5) -> SequenceResult:
        """Best ``k`` distinct database positions of the last frame of sequence ``X (L, d)``.

        ``X`` holds raw descriptors (oldest frame first); the codec's projection is applied
        here, inside the search.
        """
        X = self._check_sequence(X)
        return self.match_projected(self.index.codec.transform(X), k)

    def match_projected(self, Z: np.ndarray, k: int = 5) -> SequenceResult:
        """:meth:`match` for frames already projected by the codec, ``Z (L, n_dims)``."""
        work = np.zeros(len(kernels.WORK_NAMES), np.int64)
        keys, rest, costs, valid, key_ops = self._frame_codes(np.asarray(Z, np.float32))
        work[kernels.W_KEYS] += key_ops
        frames, positions, ranks = self._visit(keys, rest, costs, valid, len(Z), work)
        return self._rank(rest, frames, positions, ranks, k, work)

    def candidate_hits(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The hits candidate generation finds for sequence ``X (L, d)`` (raw descriptors):
        ``(frames, positions)``, one row per bucket entry read, whole or narrowed, as
        :meth:`match` reads them before ranking."""
        X = self._check_sequence(X)
        work = np.zeros(len(kernels.WORK_NAMES), np.int64)
        Z = self.index.codec.transform(X).astype(np.float32)
        keys, rest, costs, valid, _ = self._frame_codes(Z)
        frames, positions, _ = self._visit(keys, rest, costs, valid, len(X), work)
        return frames, positions

    def probed_keys(self, X: np.ndarray, length: int | None = None) -> np.ndarray:
        """Keys ``(L, P) int64`` whose buckets each frame of ``X (L, d)`` reads whole, most
        likely first (-1 where a bucket was too large for what was left, or probing stopped
        at the entry budget). A too-large bucket that the search narrows is not listed.

        ``length``: the query length whose per-frame probe budget applies (default ``L``).
        """
        X = self._check_sequence(X)
        keys, _, costs, valid, _ = self._frame_codes(self.index.codec.transform(X))
        s = self.settings
        n = self.probes_per_frame(length or len(X))
        out = np.full((len(X), n), -1, np.int64)
        cost = np.zeros(n)
        work = np.zeros(len(kernels.WORK_NAMES), np.int64)
        sizes = np.diff(np.asarray(self.index.offsets, np.int64))
        budget = self.entries_per_frame(length or len(X))
        for t in np.flatnonzero(valid):
            kernels.frame_probes(
                np.int64(keys[t]), costs[t], n, s.flip_bits, s.max_flips, out[t], cost, work
            )
            total = 0
            for j, key in enumerate(out[t]):  # as the visit: skip what overflows, stop when full
                if key < 0 or total >= budget:
                    out[t, j:] = -1
                    break
                if total + sizes[key] > budget:
                    out[t, j] = -1
                else:
                    total += sizes[key]
        return out

    def encode_ops(self, length: int) -> int:
        """Multiply-adds of projecting ``length`` raw descriptors to codes (not in ``ops``)."""
        codec = self.index.codec
        return int(length) * codec.input_dim * codec.n_dims


def _work_dict(work: np.ndarray) -> dict:
    return {name: int(v) for name, v in zip(kernels.WORK_NAMES, work, strict=True)}


@dataclass
class StreamUpdate:
    """What :meth:`StreamingMatcher.update` returns after each frame."""

    frame: int
    position: int
    confidence: float
    ops: int
    frames_used: int

    def to_dict(self) -> dict:
        return {
            "frame": self.frame,
            "position": self.position,
            "confidence": self.confidence if np.isfinite(self.confidence) else None,
            "ops": self.ops,
            "frames_used": self.frames_used,
        }


class StreamingMatcher:
    """Frame-by-frame matching over the last ``length`` frames.

    Each new frame's buckets are visited once and kept; every update re-ranks the
    alignments over the current window, so its cost is one frame's probes plus the
    verification.
    """

    def __init__(self, index: OverloadedIndex, length: int = 50, **settings) -> None:
        if length < 1:
            raise PlaceprintError("length must be >= 1")
        self.matcher = SequenceMatcher(index, **settings)
        self.length = int(length)
        # per frame of the window: rest bits, and the hits of its probed buckets
        self.rest: deque = deque(maxlen=self.length)
        self.hit_positions: deque = deque(maxlen=self.length)
        self.hit_ranks: deque = deque(maxlen=self.length)
        self.history: list[np.ndarray] = []
        self.count = 0

    def update(self, frame: np.ndarray) -> StreamUpdate:
        """Add one frame descriptor ``(d,)`` and return the current best match."""
        frame = np.asarray(frame)
        if frame.ndim != 1:
            raise PlaceprintError(f"a frame must be one descriptor (d,), got shape {frame.shape}")
        m = self.matcher
        X = check_descriptors(frame[None, :], m.index.codec.input_dim, "frame")
        Z = m.index.codec.transform(X)
        need = len(m.index.layout) - 1
        history = np.array(self.history[-need:], np.float32) if need and self.history else None
        work = np.zeros(len(kernels.WORK_NAMES), np.int64)
        keys, rest, costs, valid, key_ops = m._frame_codes(Z, history)
        work[kernels.W_KEYS] += key_ops
        if need:
            self.history.append(Z[0])
            self.history = self.history[-need:]
        _, pos, ranks = m._visit(keys, rest, costs, valid, self.length, work)
        self.rest.append(rest[0])
        self.hit_positions.append(pos)
        self.hit_ranks.append(ranks)
        self.count += 1
        counts = [len(p) for p in self.hit_positions]
        result = m._rank(
            np.array(self.rest, np.uint64),
            np.repeat(np.arange(len(counts), dtype=np.int64), counts),
            np.concatenate(self.hit_positions).astype(np.int64),
            np.concatenate(self.hit_ranks).astype(np.int64),
            1,
            work,
        )
        return StreamUpdate(self.count - 1, result.best, result.confidence, result.ops, len(counts))

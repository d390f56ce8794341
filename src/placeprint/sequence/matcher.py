"""The compact sequence matcher over an :class:`OverloadedIndex` (batch and streaming).

1. Every query frame probes the buckets of its most likely keys (multi-probe). By
   default a query of ``L`` frames gets ``probe_budget / L`` probes a frame (at most
   ``max_probes``): the work per query stays about constant, and short queries, which
   have fewer frames to find the place with, search each frame deeper.
2. Each bucket entry ``(frame t, place p)`` is an *anchor*: a guess that query frame
   ``t`` was taken at place ``p``. Every anchor's rest bits are compared with the frame's
   (a log-likelihood ratio), and anchors on nearly the same diagonal ``p - t`` pool
   their evidence (the vote on the alignment). The best ``anchor_budget / L`` anchors
   get a +-2 frame local check (the same places at every velocity in 0.8-1.2).
3. The best ``local_budget / L`` anchors propose alignments ``(end, velocity)`` for
   every velocity; these are checked on every ``step``-th frame, and the best
   ``shortlist`` are verified with the codes along the whole trajectory.
4. Distinct answers are returned best first, with a confidence: how far the best
   stands out from the best alignment outside a window around it.

Operations (entries read + code comparisons) are counted exactly and reported.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from placeprint.codec.coarse import check_descriptors
from placeprint.errors import PlaceprintError
from placeprint.index.bitpack import codes_to_int
from placeprint.index.overloaded import OverloadedIndex, sequence_keys
from placeprint.sequence import kernels
from placeprint.sequence.probes import probe_keys
from placeprint.sequence.result import SequenceResult

DEFAULT_VELOCITIES = (0.8, 0.9, 1.0, 1.1, 1.2)


@dataclass
class MatcherSettings:
    """Knobs of the matcher; the defaults are the recommended operating point.

    ``probes``/``anchors``/``local`` fix the per-frame probes and the anchors kept at
    each stage; left ``None`` they follow the per-query budgets (``*_budget / L``).
    ``entries`` caps the entries read per frame (times the mean bucket size);
    ``flip_bits``/``max_flips`` bound the multi-probe enumeration; ``agreement`` is the
    expected share of equal rest bits for the true place (for the likelihood ratio);
    ``hit_bonus`` is the evidence of a hit itself; ``group_width`` the diagonal window
    (places) that pools hits; ``min_separation`` and ``confidence_window`` (places)
    define distinct answers and the confidence.
    """

    velocities: tuple[float, ...] = DEFAULT_VELOCITIES
    probes: int | None = None
    probe_budget: int = 1200
    max_probes: int = 64
    allocation: str = "frame"
    entries: float = 32.0
    flip_bits: int = 10
    max_flips: int = 3
    anchors: int | None = None
    anchor_budget: int = 76800
    radius: int = 2
    local: int | None = None
    local_budget: int = 9600
    step: int = 4
    shortlist: int = 12
    agreement: float = 0.6
    hit_bonus: float = 0.5
    group_width: int = 2
    min_separation: int = 5
    confidence_window: int = 10
    min_length: int = 1

    def check(self) -> None:
        v = np.asarray(self.velocities, float)
        if v.ndim != 1 or v.size == 0 or np.any(v <= 0) or not np.all(np.isfinite(v)):
            raise PlaceprintError("velocities must be a non-empty list of positive numbers")
        for name in (
            "probe_budget",
            "max_probes",
            "local_budget",
            "entries",
            "anchor_budget",
            "step",
            "shortlist",
            "min_length",
            "flip_bits",
            "max_flips",
        ):
            if getattr(self, name) < 1:
                raise PlaceprintError(f"{name} must be >= 1")
        for name in ("probes", "local", "anchors"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise PlaceprintError(f"{name} must be >= 1")
        if self.allocation not in ("frame", "global"):
            raise PlaceprintError("allocation must be 'frame' or 'global'")
        if not 0 <= self.radius <= 2:
            raise PlaceprintError("radius must be 0, 1 or 2 (beyond 2 frames velocity matters)")


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
        # entry budget of one frame: `entries` times the mean size of a non-empty bucket
        counts = np.diff(np.asarray(index.offsets, np.int64))
        mean_bucket = float(counts[counts > 0].mean()) if counts.any() else 1.0
        self.max_entries = int(np.ceil(self.settings.entries * mean_bucket))

    # ------------------------------------------------------------ per frame
    def probes_per_frame(self, length: int) -> int:
        """Probes of each frame of a ``length``-frame query (``probes`` if set)."""
        s = self.settings
        if s.probes is not None:
            return int(s.probes)
        return int(min(s.max_probes, max(1, round(s.probe_budget / max(length, 1)))))

    def anchors_keep(self, length: int) -> int:
        """Anchors given the local check: ``anchor_budget / L`` (64..4096) unless ``anchors``.

        A short query has fewer hits on its true alignment to lift it above chance hits,
        so more of its anchors get the (4-comparison) local check.
        """
        s = self.settings
        if s.anchors is not None:
            return int(s.anchors)
        return int(min(4096, max(64, round(s.anchor_budget / max(length, 1)))))

    def local_keep(self, length: int) -> int:
        """Anchors kept after the local check, ``local_budget / L`` (16..512) unless ``local``.

        Each kept anchor is checked on every ``step``-th frame for every velocity, so this
        keeps that stage's work about constant across query lengths.
        """
        s = self.settings
        if s.local is not None:
            return int(s.local)
        return int(min(512, max(16, round(s.local_budget / max(length, 1)))))

    def _frame_codes(
        self, X: np.ndarray, history: np.ndarray | None = None, length: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Keys ``(L,)``, rest bits ``(L,) uint64`` and probe keys ``(L, P)`` of frames.

        Frames without ``key_frames - 1`` predecessors (in ``X`` or in ``history``, the
        transformed frames before ``X``) cannot form a sequence key: their probes are -1.
        """
        codec, layout = self.index.codec, self.index.layout
        Z = codec.transform(X)
        ints = codes_to_int(codec.quantize(Z))
        rest = ints >> np.uint64(self.index.own_bits)
        before = 0 if history is None else len(history)
        Zall = Z if not before else np.concatenate([history, Z])
        ints_all = ints if not before else codes_to_int(codec.quantize(Zall))
        keys = sequence_keys(ints_all, layout)[before:]
        errors_all = codec.bit_error_rates(codec.key_margins(Zall, layout[0]))
        idx = np.arange(before, before + len(X))
        parts = [errors_all[np.maximum(idx - j, 0), :b] for j, b in enumerate(layout) if b]
        # a tiny index may have a 0-bit key (one bucket): nothing to flip
        errors = np.concatenate(parts, axis=1) if parts else np.zeros((len(X), 0))
        s = self.settings
        n_probes = self.probes_per_frame(length or len(X))
        if s.allocation == "global" and s.probes is None and len(X) > 1:
            # the most likely (frame, key) pairs of the whole query, at least one a frame
            probes, logp = probe_keys(keys, errors, s.max_probes, s.flip_bits, s.max_flips)
            budget = n_probes * len(X)
            order = np.argsort(-logp[:, 1:], axis=None, kind="stable")[: max(budget - len(X), 0)]
            extra = np.zeros(logp[:, 1:].size, bool)
            extra[order] = True
            keep = np.column_stack([np.ones(len(X), bool), extra.reshape(len(X), -1)])
            probes = np.where(keep, probes, -1)
        else:
            probes, _ = probe_keys(keys, errors, n_probes, s.flip_bits, s.max_flips)
        probes[idx < len(layout) - 1] = -1
        return keys, rest, probes

    def _visit(self, rest: np.ndarray, probes: np.ndarray):
        """Bucket entries of every frame: ``(frames, positions, distances, ops)``."""
        ix = self.index
        return kernels.visit_frames(
            ix.offsets,
            ix.ids,
            np.int64(ix.id_bits),
            ix.rest,
            np.int64(ix.rest_bits),
            probes,
            rest,
            np.int64(self.max_entries),
        )

    # --------------------------------------------------------------- verify
    def _rank(
        self,
        rest_q: np.ndarray,
        hit_frames: np.ndarray,
        hit_positions: np.ndarray,
        hit_distances: np.ndarray,
        k: int,
        visit_ops: int,
    ) -> SequenceResult:
        s, ix = self.settings, self.index
        L = len(rest_q)
        if hit_frames.size == 0:
            return SequenceResult.empty(k, visit_ops)
        ends, _, dist, ops = kernels.verify(
            ix.rest,
            np.int64(ix.rest_bits),
            np.int64(ix.ntotal),
            rest_q.astype(np.uint64),
            hit_frames,
            hit_positions,
            hit_distances,
            self.velocities,
            self.anchors_keep(L),
            s.radius,
            self.local_keep(L),
            s.step,
            s.shortlist,
            float(s.agreement),
            float(s.hit_bonus),
            int(s.group_width),
        )
        ops = int(ops) + visit_ops
        valid = np.isfinite(dist) & (ends >= 0) & (ends < ix.ntotal)
        ends, dist = ends[valid], dist[valid] / max(ix.rest_bits, 1)
        if ends.size == 0:
            return SequenceResult.empty(k, ops)
        order = np.argsort(dist, kind="stable")
        positions, scores = [], []
        for i in order:
            if all(abs(ends[i] - p) >= s.min_separation for p in positions):
                positions.append(int(ends[i]))
                scores.append(float(dist[i]))
                if len(positions) == k:
                    break
        confidence = self._confidence(ends, dist, positions[0], L)
        pad = k - len(positions)
        return SequenceResult(
            np.array(positions + [-1] * pad), np.array(scores + [np.inf] * pad), confidence, ops
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
        """Best ``k`` distinct database positions of the last frame of sequence ``X (L, d)``."""
        X = self._check_sequence(X)
        _, rest, probes = self._frame_codes(X)
        frames, positions, distances, ops = self._visit(rest, probes)
        return self._rank(rest, frames, positions, distances, k, int(ops))


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
        # per frame of the window: rest bits, and the entries of its probed buckets
        self.rest: deque = deque(maxlen=self.length)
        self.hit_positions: deque = deque(maxlen=self.length)
        self.hit_distances: deque = deque(maxlen=self.length)
        self.history: list[np.ndarray] = []
        self.count = 0

    def update(self, frame: np.ndarray) -> StreamUpdate:
        """Add one frame descriptor ``(d,)`` and return the current best match."""
        frame = np.asarray(frame)
        if frame.ndim != 1:
            raise PlaceprintError(f"a frame must be one descriptor (d,), got shape {frame.shape}")
        X = check_descriptors(frame[None, :], self.matcher.index.codec.input_dim, "frame")
        need = len(self.matcher.index.layout) - 1
        history = np.array(self.history[-need:], np.float32) if need and self.history else None
        _, rest, probes = self.matcher._frame_codes(X, history, self.length)
        if need:
            self.history.append(self.matcher.index.codec.transform(X)[0])
            self.history = self.history[-need:]
        _, pos, dist, ops = self.matcher._visit(rest, probes)
        self.rest.append(rest[0])
        self.hit_positions.append(pos)
        self.hit_distances.append(dist)
        self.count += 1
        counts = [len(p) for p in self.hit_positions]
        result = self.matcher._rank(
            np.array(self.rest, np.uint64),
            np.repeat(np.arange(len(counts), dtype=np.int64), counts),
            np.concatenate(self.hit_positions).astype(np.int64),
            np.concatenate(self.hit_distances).astype(np.int64),
            1,
            int(ops),
        )
        return StreamUpdate(self.count - 1, result.best, result.confidence, result.ops, len(counts))

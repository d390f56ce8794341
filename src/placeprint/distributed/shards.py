"""Query several indexes as one map: the serving side of a sharded build.

A country-scale map is kept as several indexes (shards) built with one codec
(``index build --codec-from``, ``--key-bits``), each small enough to load, rebuild or
move on its own. :class:`ShardSet` answers a query sequence against all of them: the
query is projected once (the codec is shared), each shard's matcher searches its own
places, and the answers are merged by score into global positions (shard ``i``'s
positions follow those of shards ``0..i-1``, as in ``index merge`` of the same shards).

Scores are comparable between shards only under one codec and one key (length and
frames), so both are checked. The confidence of a merged answer is the winning shard's,
lowered to 1 (a tie) when another shard's best answer scores as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from placeprint.errors import PlaceprintError
from placeprint.sequence.result import SequenceResult


class ShardSet:
    """Several :class:`~placeprint.index.OverloadedIndex` shards searched as one map.

    ``shards``: loaded indexes or index paths, in route order. ``matcher_options`` go to
    every shard's :class:`~placeprint.sequence.matcher.SequenceMatcher`.
    """

    def __init__(self, shards: Sequence, **matcher_options) -> None:
        from placeprint.index import OverloadedIndex
        from placeprint.sequence.matcher import SequenceMatcher

        if not shards:
            raise PlaceprintError("a shard set needs at least one index")
        loaded = []
        for s in shards:
            if isinstance(s, str | Path):
                if not Path(s).is_file():
                    raise PlaceprintError(f"index not found: {s}")
                s = OverloadedIndex.load(s)
            loaded.append(s)
        first = loaded[0]
        for i, s in enumerate(loaded[1:], start=2):
            if not s.codec.same_as(first.codec):
                raise PlaceprintError(
                    f"shard {i} has another codec: build the shards with --codec-from"
                )
            if (s.key_bits, s.key_frames) != (first.key_bits, first.key_frames):
                raise PlaceprintError(
                    f"shard {i} has {s.key_bits} key bits over {s.key_frames} frame(s), shard 1 "
                    f"{first.key_bits} over {first.key_frames}: give every shard the same key"
                )
        self.shards = loaded
        self.codec = first.codec
        self.matchers = [SequenceMatcher(s, **matcher_options) for s in loaded]
        self.offsets = np.concatenate([[0], np.cumsum([s.ntotal for s in loaded])]).astype(np.int64)

    @property
    def ntotal(self) -> int:
        """Places in all shards."""
        return int(self.offsets[-1])

    def nbytes(self) -> int:
        """Bytes of every shard a query needs (codec counted once per shard, as loaded)."""
        return int(sum(sum(s.nbytes().values()) for s in self.shards))

    def search(self, X: np.ndarray, k: int = 5) -> SequenceResult:
        """Best ``k`` answers for the sequence ``X (L, d)`` over all shards, global positions.

        ``ops`` sums every shard's search; the projection, done once for all shards, is
        not in ``ops`` (``docs/accounting.md``)."""
        X = self.matchers[0]._check_sequence(X)
        Z = self.codec.transform(X)
        results = [m.match_projected(Z, k) for m in self.matchers]
        pos, score, shard = [], [], []
        for i, r in enumerate(results):
            ok = r.positions >= 0
            pos.append(r.positions[ok] + self.offsets[i])
            score.append(r.scores[ok])
            shard.append(np.full(int(ok.sum()), i))
        pos, score, shard = (np.concatenate(a) for a in (pos, score, shard))
        ops = sum(r.ops for r in results)
        if pos.size == 0:
            return SequenceResult.empty(k, ops)
        order = np.argsort(score, kind="stable")[:k]
        winner = int(shard[order[0]])
        confidence = results[winner].confidence
        rivals = [float(results[i].scores[0]) for i in range(len(results)) if i != winner]
        if rivals and min(rivals) <= float(score[order[0]]):
            confidence = 1.0
        pad = k - len(order)
        return SequenceResult(
            np.concatenate([pos[order], np.full(pad, -1)]),
            np.concatenate([score[order], np.full(pad, np.inf)]),
            confidence,
            ops,
        )

"""A shard set answers as one map: the best of every shard's own answer, in global positions."""

import numpy as np
import pytest
from conftest import smooth_route

from placeprint.codec import CoarseCodec
from placeprint.distributed.shards import ShardSet
from placeprint.errors import PlaceprintError
from placeprint.index import OverloadedIndex
from placeprint.sequence.matcher import SequenceMatcher


@pytest.fixture(scope="module")
def shards():
    rng = np.random.default_rng(3)
    db = smooth_route(9000, 64, rng).astype(np.float32)
    codec = CoarseCodec(code_size=8).fit(db)
    parts = []
    for a in range(0, 9000, 3000):
        index = OverloadedIndex(codec, key_bits=12)
        index.add(db[a : a + 3000])
        parts.append(index)
    return db, parts, rng


def test_planted_queries_come_back_at_their_global_position(shards):
    db, parts, rng = shards
    found = ShardSet(parts)
    assert found.ntotal == 9000
    assert found.nbytes() == sum(sum(p.nbytes().values()) for p in parts)
    alone = [SequenceMatcher(p) for p in parts]
    hits = 0
    for end in (500, 2900, 3100, 4500, 6050, 8999):
        q = (db[end - 29 : end + 1] + 0.4 * rng.normal(size=(30, 64))).astype(np.float32)
        r = found.search(q, k=3)
        hits += abs(r.best - end) <= 2
        # the merged answer is the lowest-scoring of the shards' own answers, shifted
        own = [m.match(q, k=3) for m in alone]
        best = min(range(3), key=lambda i: own[i].scores[0])
        assert r.best == own[best].positions[0] + 3000 * best
        assert r.scores[0] == own[best].scores[0]
        assert r.ops == sum(o.ops for o in own)
    assert hits == 6


def test_shards_of_other_codecs_or_key_lengths_are_refused(shards):
    db, parts, _ = shards
    other = OverloadedIndex(CoarseCodec(code_size=8).fit(db[:3000] * 2.0), key_bits=12)
    other.add(db[:3000])
    with pytest.raises(PlaceprintError, match="another codec"):
        ShardSet([parts[0], other])
    longer = OverloadedIndex(parts[0].codec, key_bits=14)
    longer.add(db[:3000])
    with pytest.raises(PlaceprintError, match="key bits"):
        ShardSet([parts[0], longer])
    with pytest.raises(PlaceprintError, match="not found"):
        ShardSet(["/nonexistent.ppidx"])

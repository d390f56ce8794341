"""Crowded buckets: the part that shares a query's next code bits, found by binary search.

Checked against a brute-force filter of the bucket, with the binary-search steps
counted by a plain reference, and end to end: a map whose every bucket is too large for
a frame's entry budget is searched (narrowed), not skipped.
"""

import numpy as np
import pytest

from placeprint.codec import CoarseCodec
from placeprint.index import OverloadedIndex
from placeprint.index.bitpack import unpack_fields
from placeprint.index.overloaded import rest_prefix
from placeprint.sequence import kernels
from placeprint.sequence.matcher import SequenceMatcher


@pytest.fixture(scope="module")
def crowded():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(20000, 64)).astype(np.float32)
    codec = CoarseCodec(code_size=8).fit(X)
    index = OverloadedIndex(codec, key_bits=4)  # 16 buckets of about 1,250 places
    index.add(X)
    index.build()
    return X, index


def _steps(values: list[int], target: int, after: bool) -> tuple[int, int]:
    """First index with value >= target (> when ``after``) and the comparisons made."""
    lo, hi, steps = 0, len(values), 0
    while lo < hi:
        mid = (lo + hi) // 2
        steps += 1
        if values[mid] < target or (after and values[mid] == target):
            lo = mid + 1
        else:
            hi = mid
    return lo, steps


def test_narrowed_part_equals_brute_force_filter(crowded):
    _, index = crowded
    p = index.prefix_bits
    ids = unpack_fields(index.ids, index.id_bits, 0, index.ntotal).astype(np.int64)
    prefix = rest_prefix(index.rest_of(ids), p).astype(np.int64)
    rng = np.random.default_rng(0)
    for trial in range(200):
        key = int(rng.integers(0, 16))
        a, z = int(index.offsets[key]), int(index.offsets[key + 1])
        query = int(rng.integers(0, 1 << p))
        room = int(rng.choice([1, 3, 10, 40, 300]))
        work = np.zeros(len(kernels.WORK_NAMES), np.int64)
        lo, hi = kernels.narrow_bucket(
            index.ids,
            np.int64(index.id_bits),
            index.rest,
            np.int64(index.rest_bits),
            np.int64(p),
            np.int64(a),
            np.int64(z),
            np.uint64(query),
            np.int64(room),
            work,
        )
        # reference: the fewest bits b (from the first whose expected share fits) whose
        # part of the bucket fits the room, found by filtering the whole bucket
        b = 1
        while b < p and ((z - a) >> b) > room:
            b += 1
        expected, steps, start = None, 0, a
        while True:
            shift = p - b
            part = np.flatnonzero(prefix[a:z] >> shift == query >> shift) + a
            sub = [int(v) >> shift for v in prefix[start:z]]
            first, n1 = _steps(sub, query >> shift, False)
            end = min(len(sub), first + room + 1)
            _, n2 = _steps(sub[first:end], query >> shift, True)
            steps += n1 + n2
            start += first
            if len(part) <= room:
                expected = part
                break
            if b >= p:
                expected = part[:0]
                break
            b += 1
        assert sorted(ids[lo:hi]) == sorted(ids[expected]), trial
        assert work[kernels.W_SEARCH] == steps, trial
        assert work.sum() == work[kernels.W_SEARCH]


def test_a_map_of_crowded_buckets_is_searched_not_skipped(crowded):
    X, index = crowded
    q = X[5000:5050]  # the same descriptors: every code bit agrees
    settings = {"entry_budget": 2000, "probe_budget": 3200}  # 40 entries a frame < 1,250
    skipped = SequenceMatcher(index, narrow_probes=0, **settings).match(q)
    assert skipped.work["bucket_search"] == 0 and skipped.work["entries"] == 0
    assert skipped.best != 5049
    narrowed = SequenceMatcher(index, **settings).match(q)
    assert narrowed.best == 5049
    assert narrowed.work["bucket_search"] > 0 and narrowed.work["entries"] > 0
    assert narrowed.ops == sum(narrowed.work.values())


def test_search_steps_use_up_the_frames_probes(crowded):
    """Every ``search_per_probe`` search steps count as one probe of the frame's budget."""
    X, index = crowded
    q = X[5049:5050]
    made = {}
    for spp in (1, 1 << 30):
        m = SequenceMatcher(index, probes=None, search_per_probe=spp, narrow_probes=8)
        keys, rest, costs, valid, _ = m._frame_codes(m.index.codec.transform(q))
        work = np.zeros(len(kernels.WORK_NAMES), np.int64)
        frames, positions, ranks = kernels.visit_frames(
            index.offsets,
            index.occupied,
            index.ids,
            np.int64(index.id_bits),
            keys.astype(np.int64),
            costs,
            valid,
            np.int64(5),  # probes a frame
            np.int64(m.settings.flip_bits),
            np.int64(m.settings.max_flips),
            np.int64(1000),  # entries a frame: every bucket (~1,250) must be narrowed
            index.rest,
            np.int64(index.rest_bits),
            np.int64(index.prefix_bits),
            rest_prefix(rest, index.prefix_bits),
            np.int64(8),
            np.int64(spp),
            work,
        )
        assert 5049 in positions[ranks == 0]  # the frame's own bucket, narrowed
        assert work[kernels.W_SEARCH] >= 10  # log2 of a bucket of ~1,250 places, at least
        made[spp] = work[kernels.W_BITMAP]  # one bitmap test a probe
    # one step a probe: the first search (>= 10 steps) spends all 5 probes
    assert made[1] == 1 and made[1 << 30] > 1

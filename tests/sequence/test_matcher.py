"""The compact sequence matcher: planted routes, brute-force agreement, exact op counts."""

import itertools

import numpy as np
import pytest
from conftest import smooth_route

from placeprint.codec import CoarseCodec
from placeprint.errors import PlaceprintError
from placeprint.index import OverloadedIndex
from placeprint.index.bitpack import codes_to_int
from placeprint.sequence.kernels import WORK_NAMES, frame_probes
from placeprint.sequence.matcher import SequenceMatcher, StreamingMatcher

EXHAUSTIVE = dict(
    probes=10**6,
    flip_bits=24,
    max_flips=24,
    anchors=10**9,
    local=10**9,
    step=1,
    shortlist=10**9,
)


@pytest.fixture(scope="module")
def route():
    rng = np.random.default_rng(7)
    db = smooth_route(20000, 64, rng).astype(np.float32)
    codec = CoarseCodec(code_size=8).fit(db)
    index = OverloadedIndex(codec)
    index.add(db)
    return db, index, rng


def sample_along(db, end, length, velocity, rng, noise):
    pos = end - np.floor(velocity * (length - 1 - np.arange(length)) + 0.5).astype(int)
    return (db[pos] + rng.normal(size=(length, db.shape[1])) * noise).astype(np.float32)


@pytest.mark.parametrize("velocity", [1.0, 0.8, 0.9, 1.2])
def test_finds_planted_sequences(route, velocity):
    db, index, rng = route
    matcher = SequenceMatcher(index)
    correct = 0
    for end in rng.integers(200, len(db), size=20):
        q = sample_along(db, end, 40, velocity, rng, noise=0.5)
        r = matcher.match(q)
        correct += abs(r.best - end) <= 2
    assert correct >= 19


def _brute_force(rest_db, rest_q, velocities):
    """Best (end, mean distance) over every trajectory inside the database, by direct loops."""
    L, n = len(rest_q), len(rest_db)
    best = (None, np.inf)
    for v in velocities:
        steps = np.floor(v * (L - 1 - np.arange(L)) + 0.5).astype(int)
        for e in range(n):
            pos = e - steps
            if pos.min() < 0:
                continue
            d = np.mean(
                [bin(int(a) ^ int(b)).count("1") for a, b in zip(rest_q, rest_db[pos], strict=True)]
            )
            if d < best[1]:
                best = (e, d)
    return best


@pytest.mark.parametrize("seed,key_frames", [(0, 1), (1, 4), (2, 3)])
def test_exhaustive_settings_agree_with_brute_force(seed, key_frames):
    rng = np.random.default_rng(seed)
    db = smooth_route(300, 32, rng).astype(np.float32)
    codec = CoarseCodec(code_size=4).fit(db)
    index = OverloadedIndex(codec, key_bits=6, key_frames=key_frames)
    index.add(db)
    q = sample_along(db, 250, 12, 1.1, rng, noise=1.0)
    velocities = (0.8, 1.0, 1.1, 1.2)
    result = SequenceMatcher(index, velocities=velocities, **EXHAUSTIVE).match(q, k=1)
    own = np.uint64(index.own_bits)
    assert index.own_bits == -(-6 // key_frames)  # earlier lags get the remainder
    rest_db = index.reconstruct_int() >> own
    rest_q = codes_to_int(codec.encode(q)) >> own
    end, dist = _brute_force(rest_db, rest_q, velocities)
    assert result.scores[0] * index.rest_bits == pytest.approx(dist)
    assert result.best == end


def _hand_index():
    """Codes written by hand: 1-byte codes, 2-bit key, 6 rest bits."""
    rng = np.random.default_rng(0)
    codec = CoarseCodec(code_size=1).fit(rng.normal(size=(100, 8)))
    codes = np.array(
        [[0b000001_00], [0b111111_01], [0b000011_00], [0b000000_10], [0b000111_00], [0b101010_11]],
        np.uint8,
    )
    index = OverloadedIndex(codec, key_bits=2, key_frames=1)
    index.add_codes(codes)
    return codec, index


def _projected_frame(codec, code: int) -> np.ndarray:
    """A projected frame ``(1, n_dims)`` whose 1-bit code is ``code``, 1 unit from every median."""
    bits = (code >> np.arange(codec.n_dims)) & 1
    return (codec.thresholds_[:, 0] + np.where(bits == 1, 1.0, -1.0))[None, :].astype(np.float32)


def test_operation_count_on_a_hand_checked_case():
    codec, index = _hand_index()
    np.testing.assert_array_equal(index.lookup(0), [0, 2, 4])
    matcher = SequenceMatcher(index, velocities=(1.0,), probes=1, radius=1)
    # one frame with code 000001_00: key 0 (bucket 0 holds places 0, 2, 4), rest 000001
    r = matcher.match_projected(_projected_frame(codec, 0b000001_00), k=3)
    assert r.best == 0 and r.scores[0] == 0.0  # rest 000001 equals place 0's rest
    assert r.work == {
        "keys": 1 + 2,  # the key and the reliability of its 2 bits
        "probes": 2 + 1,  # ranking 2 bits, emitting the key itself
        "bucket_offsets": 2,  # start and end of bucket 0
        "bucket_bitmap": 1,  # bucket 0 is not empty
        "entries": 3,
        "votes": 3,  # one vote-table entry per hit; one frame: no multi-vote bin
        # anchors picked 3, local scores sorted 3, (end, v) de-duplicated 3, coarse
        # sorted 3, refinement's band sorted 1 (one velocity, reach 0), answers sorted 3
        # and examined for distinctness 3
        "sort": 3 + 3 + 3 + 3 + 1 + 3 + 3,
        # local window of a 1-frame query is the anchor alone (3), sub-sampled (3) and
        # full (3) trajectories of one frame; refinement: its band's one end sub-sampled
        # (1) and in full (1)
        "compare": 3 + 3 + 3 + 1 + 1,
        "bucket_search": 0,  # the bucket fits the frame's budget: read whole
    }
    assert r.ops == sum(r.work.values()) == 45


def test_probes_come_in_order_of_likelihood_with_counted_work():
    rng = np.random.default_rng(5)
    k, n_probes, flip_bits, max_flips = 14, 40, 10, 3
    for _ in range(20):
        costs = rng.exponential(2.0, size=k)
        key = int(rng.integers(0, 1 << k))
        out, cost = np.full(n_probes, -1, np.int64), np.zeros(n_probes)
        work = np.zeros(len(WORK_NAMES), np.int64)
        got = frame_probes(key, costs, n_probes, flip_bits, max_flips, out, cost, work)
        # reference: every subset of the flip_bits least reliable bits, by total cost
        weak = np.argsort(costs)[:flip_bits]
        subsets = [()]
        for r in range(1, max_flips + 1):
            subsets += list(itertools.combinations(weak, r))
        ref = sorted(subsets, key=lambda sub: sum(costs[list(sub)]))[:n_probes]
        expected = [key ^ sum(1 << int(b) for b in sub) for sub in ref]
        assert got == n_probes and out.tolist() == expected
        np.testing.assert_allclose(cost, [sum(costs[list(sub)]) for sub in ref])
        # ranking k bits, the key, then one pop per further probe and at most 2 pushes each
        pops = n_probes - 1
        assert k + 1 + pops + 1 <= work[0 + 1] <= k + 1 + pops + 1 + 2 * pops
        assert work.sum() == work[1]


def test_probe_path_work_matches_an_independent_count(route):
    db, index, rng = route
    m = SequenceMatcher(index, entry_budget=10**9, max_map_share=1.0)
    q = sample_along(db, 12000, 30, 1.0, rng, noise=0.5)
    r = m.match(q)
    probed = m.probed_keys(q)
    assert (probed >= 0).all() and probed.shape == (30, m.probes_per_frame(30))
    # every probe of a frame is a distinct key
    assert all(len(set(row)) == len(row) for row in probed.tolist())
    sizes = [len(index.lookup(int(key))) for key in probed.ravel()]
    # one bitmap test a probe; the two offsets only of the buckets that hold places
    assert r.work["bucket_bitmap"] == probed.size
    assert r.work["bucket_offsets"] == 2 * sum(size > 0 for size in sizes)
    entries = sum(sizes)
    assert r.work["entries"] == entries and r.work["votes"] == entries
    assert r.work["keys"] == 30 * (1 + index.key_bits)
    assert r.ops == sum(r.work.values())
    assert r.work["compare"] > 0 and r.work["sort"] > 0


def test_streaming_follows_the_route(route):
    db, index, rng = route
    stream = StreamingMatcher(index, length=20)
    q = sample_along(db, 15000, 60, 1.0, rng, noise=0.5)
    updates = [stream.update(f) for f in q]
    truth = 15000 - 59 + np.arange(60)
    hits = [abs(u.position - t) <= 2 for u, t in zip(updates[10:], truth[10:], strict=True)]
    assert np.mean(hits) >= 0.95
    assert updates[-1].frames_used == 20
    batch = SequenceMatcher(index).match(q[-20:])
    assert batch.best == updates[-1].position


def test_bad_queries(route):
    db, index, _ = route
    m = SequenceMatcher(index, min_length=3)
    with pytest.raises(PlaceprintError, match="empty"):
        m.match(np.zeros((0, 64), np.float32))
    with pytest.raises(PlaceprintError, match="at least 3"):
        m.match(db[:2])
    with pytest.raises(PlaceprintError, match="dimensions"):
        m.match(db[:5, :10])
    bad = db[:5].copy()
    bad[2, 3] = np.nan
    with pytest.raises(PlaceprintError, match="NaN"):
        m.match(bad)
    bad[2, 3] = np.inf
    with pytest.raises(PlaceprintError, match="inf"):
        m.match(bad)
    with pytest.raises(PlaceprintError, match="longer than the database"):
        SequenceMatcher(index).match(np.zeros((20001, 64), np.float32))
    with pytest.raises(PlaceprintError, match="unknown matcher option"):
        SequenceMatcher(index, speed=3)
    with pytest.raises(PlaceprintError, match="velocities"):
        SequenceMatcher(index, velocities=(0.0,))
    with pytest.raises(PlaceprintError, match="one descriptor"):
        StreamingMatcher(index).update(db[:2])


def test_probe_budgets(route):
    db, index, rng = route
    m = SequenceMatcher(index)
    # 2,000 entries a query (the validated default) over L frames
    assert m.probes_per_frame(100) == 32 and m.entries_per_frame(100) == 20
    # 3,200 probes a query: short queries probe deeper, up to max_probes
    assert m.probes_per_frame(50) == 64 and m.probes_per_frame(1) == 1024
    assert SequenceMatcher(index, max_probes=100).probes_per_frame(25) == 100
    assert m.entries_per_frame(25) == 80  # short queries search each frame deeper
    assert m.entries_per_frame(1) == 200  # but at most 1 % of the 20,000 places a frame
    wide = SequenceMatcher(index, max_map_share=1.0)
    assert wide.entries_per_frame(1) == 2000
    assert SequenceMatcher(index, probes=3).probes_per_frame(100) == 3
    assert m.local_keep(100) == 32 and m.local_keep(10) == 320 and m.local_keep(1) == 512
    assert m.anchors_keep(100) == 512 and m.anchors_keep(50) == 1024  # 51,200 / L
    assert m.anchors_keep(1) == 4096 and SequenceMatcher(index, anchors=5).anchors_keep(50) == 5
    q = sample_along(db, 9000, 30, 1.0, rng, noise=0.5)
    r = m.match(q)
    assert abs(r.best - 9000) <= 2
    # the entry budget holds: no frame reads more than its share
    probed = m.probed_keys(q)
    sizes = [sum(len(index.lookup(int(k))) for k in row if k >= 0) for row in probed]
    assert max(sizes) <= m.entries_per_frame(30) and r.work["entries"] == sum(sizes)
    # probes are made as needed: a frame that fills its budget early stops probing
    assert r.work["bucket_bitmap"] < m.probes_per_frame(30) * 30
    with pytest.raises(PlaceprintError, match="agreement"):
        SequenceMatcher(index, agreement=0.4)


def test_anchor_cut_keeps_the_single_hits_that_agree_with_their_frame():
    """When single hits overflow the anchors, their own rest bits decide (not probe depth)."""
    from placeprint.index.bitpack import pack_fields
    from placeprint.sequence import kernels

    rest_bits = 12
    q = np.array([0b101010101010, 0b111100001111], np.uint64)  # rest bits of frames 0, 1
    # places 0..5: place 4 equals frame 1's code (a true hit found by a deep probe),
    # the others differ from their frame in 5-6 bits
    rest_values = np.array(
        [
            0b010110101010,
            0b101010010101,
            0b000011111111,
            0b111111110000,
            0b111100001111,
            0b010101011010,
        ],
        np.uint64,
    )
    rest = pack_fields(rest_values, rest_bits)
    frames = np.array([0, 0, 1, 1, 1, 0], np.int64)
    positions = np.array([0, 1, 2, 3, 4, 5], np.int64)
    ranks = np.array([0, 0, 0, 1, 5, 1], np.int64)  # place 4 came from probe rank 5
    multi = np.array([5], np.int64)  # hit 5 has a multi-vote bin: always first
    work = np.zeros(len(kernels.WORK_NAMES), np.int64)
    got = kernels.pick_anchors(
        ranks, multi, np.int64(3), rest, np.int64(rest_bits), q, frames, positions, work
    )
    dist = [bin(int(r) ^ int(q[f])).count("1") for r, f in zip(rest_values, frames, strict=True)]
    singles = sorted(range(5), key=lambda h: (dist[h], ranks[h]))  # hand ranking
    assert got.tolist() == [5, *singles[:2]] and got[1] == 4
    assert work[kernels.W_COMPARE] == 5  # one comparison per single hit
    # when everything fits, nothing is compared
    work[:] = 0
    every = kernels.pick_anchors(
        ranks, multi, np.int64(10), rest, np.int64(rest_bits), q, frames, positions, work
    )
    assert sorted(every.tolist()) == list(range(6)) and work[kernels.W_COMPARE] == 0


def test_refinement_finds_the_true_end_next_to_a_proposed_one():
    """Brute force over the band: refine_end returns its best full-trajectory distance."""
    from placeprint.index.bitpack import pack_fields, read_field
    from placeprint.sequence import kernels

    rng = np.random.default_rng(3)
    bits, n, L = 36, 400, 40
    values = rng.integers(0, 1 << bits, n, dtype=np.uint64)
    rest = pack_fields(values, bits)
    truth_end = 250
    flips = rng.random((L, bits)) < 0.2  # the query: places 211..250, 20 % of bits changed
    noise = (flips * (np.uint64(1) << np.arange(bits, dtype=np.uint64))).sum(axis=1)
    q = values[truth_end - L + 1 : truth_end + 1] ^ noise.astype(np.uint64)
    velocities = np.array([0.9, 1.0, 1.1])
    proposed, reach = truth_end + 6, 8  # an anchor on a neighbouring diagonal
    work = np.zeros(len(kernels.WORK_NAMES), np.int64)
    end, v, d = kernels.refine_end(
        rest,
        np.int64(bits),
        np.int64(n),
        q,
        np.int64(proposed),
        velocities,
        np.int64(reach),
        np.int64(4),
        np.int64(3),
        work,
    )
    assert end == truth_end and velocities[v] == 1.0

    def full(e, vel):  # independent: the trajectory by hand
        ds = [
            bin(
                int(read_field(rest, e - int(np.floor(vel * (L - 1 - t) + 0.5)), bits) ^ q[t])
            ).count("1")
            for t in range(L)
        ]
        return sum(ds) / L

    best = min(
        full(e, vel) for e in range(proposed - reach, proposed + reach + 1) for vel in velocities
    )
    assert d == pytest.approx(best) == pytest.approx(full(truth_end, 1.0))
    # every (end, velocity) of the band on every 4th frame, then 3 in full
    band = (2 * reach + 1) * len(velocities)
    assert work[kernels.W_COMPARE] == band * len(range(0, L, 4)) + 3 * L
    assert work[kernels.W_SORT] == band

"""The headline's peers: sparse voting against a brute-force count, peers on a known route."""

import numpy as np
import pytest

from placeprint.codec import CoarseCodec
from placeprint.evaluate.peers import PEERS, make_peer, sparse_votes
from placeprint.sequence.seqslam import trajectory_offsets


def brute_votes(positions, n_places, velocities):
    """For every (end, velocity): how many frames have a neighbour on that trajectory."""
    L = positions.shape[0]
    out = {}
    for vi, v in enumerate(velocities):
        off = trajectory_offsets(L, v)
        for e in range(n_places):
            if e - off[0] < 0:
                continue
            n = sum(any(p >= 0 and p + off[t] == e for p in positions[t]) for t in range(L))
            if n:
                out[(e, vi)] = n
    return out


def test_sparse_votes_match_a_brute_force_count():
    rng = np.random.default_rng(3)
    positions = rng.integers(-1, 60, size=(12, 4))
    positions[:, 0] = np.arange(20, 32)  # a true trajectory at velocity 1 ending at 31
    positions[5, 1] = positions[5, 0]  # a frame listing one place twice votes once
    vel = (0.8, 1.0, 1.2)
    ends, vis, votes = sparse_votes(positions, 64, vel)
    got = {(int(e), int(v)): int(n) for e, v, n in zip(ends, vis, votes, strict=True)}
    assert got == brute_votes(positions, 64, vel)
    assert (int(ends[0]), int(vis[0]), int(votes[0])) == (31, 1, 12)
    assert np.all(np.diff(votes) <= 0)  # most votes first


@pytest.fixture(scope="module")
def route():
    """A smooth random route of 6000 places and a noisy second traverse of it."""
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=(6000, 64)), axis=0) * 0.3 + rng.normal(size=(6000, 64))
    db = walk.astype(np.float32)
    queries = (db + 0.3 * rng.normal(size=db.shape)).astype(np.float32)
    codec = CoarseCodec(code_size=7, pca_dims=64).fit(db)
    return codec, db, queries


@pytest.mark.parametrize("name", PEERS)
def test_every_peer_finds_a_noisy_sequence(route, name):
    codec, db, queries = route
    Z = codec.transform(db).astype(np.float32)
    peer = make_peer(name, codec, k_frames=10).fit(Z, codec.quantize(Z))
    for end in (400, 2500, 5999):
        r = peer.search(queries[end - 29 : end + 1], k=3)
        assert abs(int(r.positions[0]) - end) <= 2
    # bytes: at least the codes themselves, and the projection is counted
    assert peer.bytes_per_place() * len(db) >= peer.nbytes() + codec.nbytes
    if name == "binary_hash_rescore":  # hash table codes + flat copy for rescoring
        assert peer.nbytes() >= 2 * 7 * len(db)


def test_unknown_peer_is_one_clear_error(route):
    from placeprint.errors import PlaceprintError

    with pytest.raises(PlaceprintError, match="unknown peer"):
        make_peer("hnsw", route[0])

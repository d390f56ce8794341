"""Baselines: Hamming brute force on codes and faiss retrieval + voting, on planted sequences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from placeprint.errors import PlaceprintError
from placeprint.evaluate import baselines
from placeprint.evaluate.baselines import (
    CodeBruteForce,
    FaissSequenceVoting,
    SeqSLAM,
    bytes_per_place,
    hamming_matrix,
    vote_scores,
)
from placeprint.sequence.seqslam import seqslam_search


class SignCodec:
    """Tiny test codec: sign bits of a fixed random projection, packed to bytes."""

    def __init__(self, d: int, bits: int, seed: int = 0) -> None:
        self.P = np.random.default_rng(seed).normal(size=(d, bits)).astype(np.float32)
        self.nbytes = self.P.nbytes

    def encode(self, X: np.ndarray) -> np.ndarray:
        return np.packbits(X @ self.P > 0, axis=1)


def _planted(N=3000, d=32, L=30, end=2200, velocity=1.0, noise=0.6, seed=0):
    rng = np.random.default_rng(seed)
    db = rng.normal(size=(N, d)).astype(np.float32)
    idx = end - np.rint(velocity * np.arange(L - 1, -1, -1)).astype(int)
    query = db[idx] + noise * rng.normal(size=(L, d)).astype(np.float32)
    return db, query


def test_public_names() -> None:
    for name in baselines.__all__:
        assert hasattr(baselines, name), name
    for name in ("CodeBruteForce", "FaissSequenceVoting", "SeqSLAM", "bytes_per_place"):
        assert name in baselines.__all__


@pytest.mark.parametrize("code_size", [1, 3, 8, 12])
def test_hamming_matrix_matches_unpackbits(code_size: int) -> None:
    rng = np.random.default_rng(code_size)
    db = rng.integers(0, 256, size=(50, code_size), dtype=np.uint8)
    q = rng.integers(0, 256, size=(4, code_size), dtype=np.uint8)
    bits_db, bits_q = np.unpackbits(db, axis=1), np.unpackbits(q, axis=1)
    ref = (bits_q[:, None, :] != bits_db[None, :, :]).sum(axis=2)
    got = hamming_matrix(db, q)
    assert got.shape == (4, 50) and got.dtype == np.float32
    np.testing.assert_array_equal(got, ref)


def test_hamming_matrix_errors() -> None:
    with pytest.raises(PlaceprintError):
        hamming_matrix(np.zeros((3, 2), np.uint8), np.zeros((3, 3), np.uint8))
    with pytest.raises(PlaceprintError):
        hamming_matrix(np.zeros((3, 2), np.int32), np.zeros((3, 2), np.int32))


@pytest.mark.parametrize("velocity", [1.0, 0.8])
@pytest.mark.parametrize("contrast_window", [0, 10])
def test_code_brute_force_finds_planted(velocity: float, contrast_window: int) -> None:
    db, query = _planted(velocity=velocity)
    codec = SignCodec(32, 64)
    model = CodeBruteForce(codec, contrast_window=contrast_window).fit(db)
    res = model.search(query, k=5)
    assert res.best == 2200
    assert res.ops == 30 * 3000 * 5  # 64-bit codes: one comparison per trajectory term
    assert res.confidence > 1.0
    assert model.bytes_per_place() == pytest.approx(8 + codec.nbytes / 3000)
    assert bytes_per_place(model) == model.bytes_per_place()


def test_code_brute_force_equals_seqslam_on_hamming() -> None:
    db, query = _planted(N=400, L=12, end=300, noise=1.0)
    codec = SignCodec(32, 96)  # 12 bytes = 2 comparisons of <= 8 bytes
    model = CodeBruteForce(codec).fit(db[:250]).add(db[250:])
    res = model.search(query, k=4)
    ref = seqslam_search(hamming_matrix(codec.encode(db), codec.encode(query)), k=4)
    np.testing.assert_array_equal(res.positions, ref.positions)
    np.testing.assert_allclose(res.scores, ref.scores)
    assert res.ops == 12 * 400 * 5 * math.ceil(12 / 8)


def test_code_brute_force_errors() -> None:
    with pytest.raises(PlaceprintError, match="encode"):
        CodeBruteForce(object())

    class BadCodec:
        def encode(self, X):
            return X

    with pytest.raises(PlaceprintError, match="uint8"):
        CodeBruteForce(BadCodec()).fit(np.zeros((5, 4)))
    with pytest.raises(PlaceprintError, match="fit"):
        CodeBruteForce(SignCodec(4, 8)).search(np.zeros((3, 4)))


def test_search_frames_flat_is_exact() -> None:
    rng = np.random.default_rng(5)
    db = rng.normal(size=(500, 16)).astype(np.float32)
    q = rng.normal(size=(7, 16)).astype(np.float32)
    dist, pos = FaissSequenceVoting("flat").fit(db).search_frames(q, 3)
    d2 = ((q[:, None, :] - db[None, :, :]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(pos, np.argsort(d2, axis=1)[:, :3])
    np.testing.assert_allclose(dist, np.sort(d2, axis=1)[:, :3], rtol=1e-4)
    assert pos.dtype == np.int64


@pytest.fixture(scope="module")
def planted_db() -> np.ndarray:
    return _planted(N=1500, end=1200)[0]


@pytest.fixture(scope="module")
def pq_model(planted_db: np.ndarray) -> FaissSequenceVoting:
    # faiss trains PQ slowly on these shared machines (seconds): train it once per module
    model = FaissSequenceVoting("pq", pq_bytes=8, k_frames=50)
    return model.fit(planted_db[:1000]).add(planted_db[1000:])


def _assert_finds_planted(model: FaissSequenceVoting, db: np.ndarray) -> None:
    rng = np.random.default_rng(7)
    for velocity in (1.0, 0.8):
        idx = 1200 - np.rint(velocity * np.arange(29, -1, -1)).astype(int)
        query = db[idx] + 0.8 * rng.normal(size=(30, db.shape[1])).astype(np.float32)
        res = model.search(query, k=5)
        assert res.best == 1200, velocity
        assert res.ops == 30 * 1500 + 30 * 50 * 5
        assert res.scores[0] < -10  # more than 10 of the 30 frames voted for it
        assert res.confidence > 1.0


@pytest.mark.parametrize("pca", [None, 16])
def test_faiss_flat_voting_finds_planted(planted_db: np.ndarray, pca: int | None) -> None:
    model = FaissSequenceVoting("flat", pca_dim=pca, k_frames=50).fit(planted_db)
    _assert_finds_planted(model, planted_db)


def test_faiss_pq_voting_finds_planted(planted_db: np.ndarray, pq_model) -> None:
    _assert_finds_planted(pq_model, planted_db)


def test_faiss_bytes_per_place(pq_model) -> None:
    import faiss

    rng = np.random.default_rng(6)
    db = rng.normal(size=(600, 16)).astype(np.float32)
    flat = FaissSequenceVoting("flat").fit(db[:200]).add(db[200:])
    assert flat.ntotal == 600
    assert 64 <= flat.bytes_per_place() < 64.5
    assert pq_model.ntotal == 1500
    codebooks = 8 * 256 * 4 * 4  # M x 256 centroids x 4 dims x float32
    assert 8 + codebooks / 1500 <= pq_model.bytes_per_place() < 8 + codebooks / 1500 + 0.5
    assert pq_model.factory_string() == "PQ8x8"
    assert FaissSequenceVoting("pq", pca_dim=64).factory_string() == "PCA64,PQ8x8"
    threads = faiss.omp_get_max_threads()
    flat.search(db[:5])
    assert faiss.omp_get_max_threads() == threads  # restored after the search


def test_faiss_errors() -> None:
    with pytest.raises(PlaceprintError):
        FaissSequenceVoting("hnsw")
    with pytest.raises(PlaceprintError, match="multiple"):
        FaissSequenceVoting("pq", pq_bytes=7).fit(np.zeros((300, 32), np.float32))
    with pytest.raises(PlaceprintError, match="256"):
        FaissSequenceVoting("pq").fit(np.zeros((100, 32), np.float32))
    with pytest.raises(PlaceprintError, match="fit"):
        FaissSequenceVoting().search(np.zeros((3, 4), np.float32))


def test_vote_scores_hand_case() -> None:
    # L=3 frames, velocity 1: frame t's neighbour p votes for end p + (2 - t)
    positions = np.array([[4, 0], [5, 9], [6, -1]])
    s = vote_scores(positions, 10, velocities=(1.0,))
    # end 6: votes from 4 (rank 0), 5 (rank 0), 6 (rank 0) -> -3
    assert s[6] == pytest.approx(-3.0)
    # end 2: 0 (rank 1) at t=0 -> -1 + 1/2; end 9 (9 + 1 = 10) lies beyond the database
    assert s[2] == pytest.approx(-0.5)
    assert np.count_nonzero(s) == 2


def test_seqslam_exported_for_the_harness() -> None:
    db, query = _planted(N=500, end=400)
    assert SeqSLAM().fit(db).search(query).best == 400

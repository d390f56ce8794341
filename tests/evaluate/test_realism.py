"""Distractor realism statistics against brute-force Python references on tiny inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats as sps

from placeprint.errors import PlaceprintError
from placeprint.evaluate.realism import (
    code_words,
    distractor_realism,
    hamming,
    moments,
    pair_histogram,
)
from placeprint.index.bitpack import codes_to_int


def bits(code: np.ndarray) -> list[int]:
    """Bits of one uint8 code, as a Python list (the reference, no numpy popcount)."""
    return [(int(byte) >> i) & 1 for byte in code for i in range(8)]


def ref_distance(a: np.ndarray, b: np.ndarray) -> int:
    return sum(x != y for x, y in zip(bits(a), bits(b), strict=True))


def near(code: np.ndarray, flips: int, rng: np.random.Generator) -> np.ndarray:
    """``code`` with ``flips`` distinct random bits flipped."""
    out = code.copy()
    for b in rng.choice(8 * len(code), flips, replace=False):
        out[b // 8] ^= np.uint8(1 << (b % 8))
    return out


@pytest.fixture(scope="module")
def tiny():
    """7-byte codes: 12 queries, 40 real places, 150 distractors, with planted near pairs."""
    rng = np.random.default_rng(3)
    real = rng.integers(0, 256, (40, 7), dtype=np.uint8)
    truth = rng.choice(40, 12, replace=False)
    queries = np.stack([near(real[t], int(rng.integers(3, 16)), rng) for t in truth])
    dis = rng.integers(0, 256, (150, 7), dtype=np.uint8)
    for i in range(0, 150, 5):  # a share of the distractors close to some query
        dis[i] = near(queries[i % 12], int(rng.integers(2, 16)), rng)
    for j in range(0, 40, 7):  # and some wrong real places close to queries too
        real[j] = near(queries[j % 12], int(rng.integers(4, 15)), rng)
    return queries, truth, real, dis


def reference(queries, truth, real, dis, radii=(10, 12, 14), exclusion=2) -> dict:
    """The statistics by plain loops over all pairs."""
    out = {}
    for side, places, excl in (("real", real, True), ("distractor", dis, False)):
        dists, per_place = [], [[0] * len(places) for _ in radii]
        for qi, q in enumerate(queries):
            for j, p in enumerate(places):
                if excl and abs(j - int(truth[qi])) <= exclusion:
                    continue
                d = ref_distance(q, p)
                dists.append(d)
                for k, r in enumerate(radii):
                    per_place[k][j] += d <= r
        out[side] = {"mean": sum(dists) / len(dists), "pairs": len(dists)}
        n_hub = max(1, round(0.01 * len(places)))
        for k, r in enumerate(radii):
            close = sum(d <= r for d in dists)
            top = sum(sorted(per_place[k], reverse=True)[:n_hub])
            out[side][r] = (close / len(dists), close, top / close if close else None)
    return out


def test_matches_brute_force_reference(tiny):
    queries, truth, real, dis = tiny
    got = distractor_realism(queries, truth, real, dis)
    ref = reference(queries, truth, real, dis)
    assert got["pairs"] == {"real": ref["real"]["pairs"], "distractor": ref["distractor"]["pairs"]}
    assert got["mean_hamming"]["real"] == pytest.approx(ref["real"]["mean"])
    assert got["mean_hamming"]["distractor"] == pytest.approx(ref["distractor"]["mean"])
    factors = []
    for r in (10, 12, 14):
        row = got["radii"][str(r)]
        p_real, hits_real, hub_real = ref["real"][r]
        p_dis, hits_dis, hub_dis = ref["distractor"][r]
        assert hits_real > 0 and hits_dis > 0  # the planted pairs make every radius count
        assert (row["hits_real"], row["hits_distractor"]) == (hits_real, hits_dis)
        assert row["p_real"] == pytest.approx(p_real)
        assert row["p_distractor"] == pytest.approx(p_dis)
        assert row["ratio"] == pytest.approx(p_dis / p_real)
        assert row["hub_share_real"] == pytest.approx(hub_real)
        assert row["hub_share_distractor"] == pytest.approx(hub_dis)
        factors.append(max(p_dis / p_real, p_real / p_dis))
    assert got["worst_factor"] == pytest.approx(max(factors))
    json.dumps(got, allow_nan=False)


def test_uint64_codes_give_the_same_result(tiny):
    queries, truth, real, dis = tiny
    a = distractor_realism(queries, truth, real, dis)
    b = distractor_realism(codes_to_int(queries), truth, codes_to_int(real), codes_to_int(dis))
    assert a["radii"] == b["radii"] and a["mean_hamming"] == b["mean_hamming"]


def test_hamming_on_long_codes_matches_loops():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (5, 11), dtype=np.uint8)  # 11 bytes: two words, one padded
    b = rng.integers(0, 256, (7, 11), dtype=np.uint8)
    got = hamming(code_words(a), code_words(b))
    want = [[ref_distance(x, y) for y in b] for x in a]
    assert got.tolist() == want


def test_exclusion_leaves_out_neighbours_of_the_truth():
    rng = np.random.default_rng(1)
    real = rng.integers(0, 256, (20, 7), dtype=np.uint8)
    query = real[10:11].copy()
    real[12] = real[10]  # 2 rows away: a correct match, never counted
    real[14] = real[10]  # 4 rows away: a wrong place at distance 0
    hist, hits = pair_histogram(code_words(query), code_words(real), (0,), np.array([10]), 2)
    assert hist.sum() == 20 - 5 and hist[0] == 1
    assert hits[0].tolist() == [int(j == 14) for j in range(20)]
    hist, _ = pair_histogram(code_words(query), code_words(real), (0,), np.array([10]), 4)
    assert hist.sum() == 20 - 9 and hist[0] == 0


def test_moments_match_scipy_and_a_hand_computed_case():
    x = np.array([[0.0, 1.0], [0.0, 2.0], [0.0, 3.0], [4.0, 4.0]])
    m = moments(x)
    # dim 0: values 0,0,0,4: mean 1, central moments m2 = 3, m3 = 6, m4 = 21 (by hand)
    assert m["per_dim_skew"][0] == pytest.approx(6 / 3**1.5)
    assert m["per_dim_kurtosis"][0] == pytest.approx(21 / 9 - 3)
    rng = np.random.default_rng(2)
    y = rng.standard_exponential((2000, 5))
    m = moments(y)
    assert m["per_dim_kurtosis"] == pytest.approx(list(sps.kurtosis(y, axis=0)), rel=1e-9)
    assert m["per_dim_skew"] == pytest.approx(list(sps.skew(y, axis=0)), rel=1e-9)
    assert m["kurtosis"]["mean"] == pytest.approx(float(np.mean(sps.kurtosis(y, axis=0))))


def test_rows_add_kurtosis_and_skew(tiny):
    queries, truth, real, dis = tiny
    rng = np.random.default_rng(4)
    out = distractor_realism(
        queries, truth, real, dis, rng.laplace(size=(3000, 4)), rng.normal(size=(3000, 4))
    )
    assert out["kurtosis"]["real"]["mean"] > 2.0  # Laplace: excess kurtosis 3
    assert abs(out["kurtosis"]["distractor"]["mean"]) < 0.5
    assert set(out["skew"]) == {"real", "distractor"}


def test_no_close_real_pair_gives_no_ratio():
    real = np.zeros((10, 7), np.uint8)
    queries = np.full((2, 7), 255, np.uint8)  # 56 bits from every real place
    out = distractor_realism(queries, np.array([0, 9]), real, queries.copy())
    assert out["radii"]["10"]["ratio"] is None and out["worst_factor"] is None
    assert out["radii"]["10"]["p_distractor"] == 1.0
    json.dumps(out, allow_nan=False)


def test_bad_inputs_raise_our_error(tiny):
    queries, truth, real, dis = tiny
    with pytest.raises(PlaceprintError, match="same code size"):
        distractor_realism(queries, truth, real, dis[:, :5])
    with pytest.raises(PlaceprintError, match="one row per query"):
        distractor_realism(queries, truth[:3], real, dis)
    with pytest.raises(PlaceprintError, match="truth rows"):
        distractor_realism(queries, truth + 100, real, dis)
    with pytest.raises(PlaceprintError, match="uint8"):
        distractor_realism(queries.astype(np.int32), truth, real, dis)

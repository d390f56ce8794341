"""Fold construction, key-hit rate against brute force, and the quantizer options (synthetic)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from placeprint.codec.coarse import CoarseCodec
from placeprint.errors import PlaceprintError
from placeprint.evaluate.code_selection import (
    DescriberVariant,
    compare_options,
    default_options,
    first_bits_keys,
    hamming_matrix,
    itq_rotation,
    key_hits,
    recall_sequence,
    recall_single,
    route_blocked_folds,
    score_codes,
)
from placeprint.evaluate.pipeline import synthetic_stand_in


@pytest.mark.parametrize("k,gap", [(4, 50), (3, 7), (5, 0)])
def test_folds_are_blocked_with_a_gap_and_cover_every_tuning_row_once(k, gap):
    frames = np.arange(10, 25001, 10)
    folds = route_blocked_folds(frames, last_tune_frame=20000, k=k, gap=gap)
    assert len(folds) == k
    tuning = np.flatnonzero(frames <= 20000)
    evaluated = np.concatenate([e for _, e in folds])
    assert np.array_equal(np.sort(evaluated), tuning)  # each tuning row exactly once
    for fit, ev in folds:
        assert np.all(np.diff(ev) == 1)  # one contiguous block
        assert np.all(frames[fit] <= 20000) and np.all(frames[ev] <= 20000)
        assert not np.intersect1d(fit, ev).size
        nearest = np.abs(fit[:, None] - ev[None, :]).min()
        assert nearest > gap  # no eval row within `gap` rows of a fit row
        # every tuning row outside the block and its gap is used for fitting
        far = tuning[(tuning < ev[0] - gap) | (tuning > ev[-1] + gap)]
        assert np.array_equal(np.sort(fit), far)


def test_folds_follow_frame_order_not_row_order():
    rng = np.random.default_rng(1)
    frames = np.arange(10, 3001, 10)
    perm = rng.permutation(len(frames))
    folds = route_blocked_folds(frames[perm], last_tune_frame=2000, k=2, gap=5)
    for fit, ev in folds:
        f_ev = np.sort(frames[perm][ev])
        assert np.all(np.diff(f_ev) == 10)  # contiguous along the route
        gaps = np.abs(frames[perm][fit][:, None] - f_ev[None, :]).min()
        assert gaps > 5 * 10


def test_folds_reject_too_few_rows():
    with pytest.raises(PlaceprintError):
        route_blocked_folds(np.arange(10, 200, 10), k=4, gap=50)


def _brute_force_hit(true_key, base_key, err, n_probes, flip_bits, max_flips):
    """Enumerate every key that flips <= max_flips of the flip_bits least reliable bits,
    rank by probability under independent bit errors, keep the n_probes most likely."""
    k = len(err)
    least = np.argsort(-err, kind="stable")[:flip_bits]  # highest error = least reliable
    cands = []
    for r in range(max_flips + 1):
        for combo in itertools.combinations(least, r):
            flipped = np.zeros(k, bool)
            flipped[list(combo)] = True
            logp = np.where(flipped, np.log(err), np.log1p(-err)).sum()
            key = base_key
            for b in combo:
                key ^= 1 << int(b)
            cands.append((logp, key))
    cands.sort(key=lambda c: -c[0])
    return true_key in {key for _, key in cands[:n_probes]}


@pytest.mark.parametrize("key_bits,n_probes", [(6, 1), (6, 5), (8, 12), (9, 24)])
def test_key_hits_match_brute_force(key_bits, n_probes):
    rng = np.random.default_rng(key_bits * 100 + n_probes)
    X = rng.normal(size=(300, 24)).astype(np.float32)
    Y = (X + rng.normal(scale=0.8, size=X.shape)).astype(np.float32)
    codec = CoarseCodec(code_size=2).fit(X, paired=Y)
    Zd, Zq = codec.transform(X[:60]), codec.transform(Y[:60])
    hits = key_hits(codec, Zd, Zq, key_bits, n_probes, flip_bits=6, max_flips=3)
    true_keys = first_bits_keys(codec.quantize(Zd), key_bits)
    base = first_bits_keys(codec.quantize(Zq), key_bits)
    # the key is the first key_bits code bits, bit i = dimension i's sign
    bits = (Zq[:, :key_bits] > codec.thresholds_[:key_bits, 0]).astype(np.int64)
    assert np.array_equal(base, (bits << np.arange(key_bits)).sum(axis=1))
    err = codec.bit_error_rates(codec.key_margins(Zq, key_bits))
    expected = [
        _brute_force_hit(int(t), int(b), e, n_probes, 6, 3)
        for t, b, e in zip(true_keys, base, err, strict=True)
    ]
    assert hits.tolist() == expected
    assert 0 < np.mean(expected) < 1  # a non-trivial example


def test_recalls_on_handmade_distances():
    n = 30
    D = np.full((n, n), 10, np.int64)
    D[np.arange(n), np.arange(n)] = 0
    assert recall_single(D) == 1.0
    D2 = D.copy()
    D2[:, 0] = 0  # every query ties with place 0: right only for queries 0..2 (within 2)
    D2[0, 0] = 0
    r = recall_single(D2)
    assert r == pytest.approx((3 + (n - 3) * 0.5) / n)
    # sequences: only the diagonal carries zero distance
    assert recall_sequence(D, 5) == 1.0
    shifted = np.roll(D, 7, axis=1)  # true place of query q is column q + 7
    assert recall_sequence(shifted, 5) < 0.5


def test_hamming_matrix_counts_differing_bits():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, (5, 56), dtype=np.uint8)
    b = rng.integers(0, 2, (4, 56), dtype=np.uint8)
    expected = (a[:, None, :] != b[None, :, :]).sum(-1)
    assert np.array_equal(hamming_matrix(a, b), expected)


def test_itq_rotation_is_orthogonal_and_reduces_quantization_loss():
    rng = np.random.default_rng(0)
    V = rng.normal(size=(400, 8)) @ rng.normal(size=(8, 8))
    V -= V.mean(0)
    for paired in (None, V + rng.normal(scale=0.3, size=V.shape)):
        R = itq_rotation(V, paired, n_iter=30)
        assert np.allclose(R @ R.T, np.eye(8), atol=1e-8)
        loss = lambda M: ((np.sign(V @ M) - V @ M) ** 2).sum()  # noqa: E731
        assert loss(R) <= loss(np.eye(8)) + 1e-6


def test_every_option_scores_on_a_synthetic_route():
    route = synthetic_stand_in(n=700, dims=64, seed=3)
    folds = route_blocked_folds(route.frames, last_tune_frame=7000, k=2, gap=10)
    options = default_options()
    rows = compare_options({"synthetic": DescriberVariant(route)}, options, folds)
    assert [r["option"] for r in rows] == list(options)
    for r in rows:
        assert r["folds"] == 2 and len(r["per_fold"]) == 2
        assert 0.5 < r["agree_all"] <= 1.0
        assert 0.0 <= r["hit_k17_p1"] <= r["hit_k17_p12"] <= r["hit_k17_p24"] <= 1.0
        assert 0.0 <= r["r1_single"] <= 1.0 and 0.0 <= r["r1_L25"] <= 1.0
    # 7-byte codes, 1 bit a dimension, whatever the option
    fit, ev = folds[0]
    codec = options["inv+bpitq"]()
    score_codes(route.database, route.queries, fit, ev, codec)
    assert codec.code_size == 7 and codec.bits_per_dim == 1
    assert codec.encode(route.database[:3]).shape == (3, 7)
    assert np.allclose(codec.transform(route.database[fit]).std(axis=0), 1.0, atol=1e-3)


def test_pairs_find_the_stable_directions():
    # the change of condition lives in the 8 highest-variance dimensions: PCA keys on
    # them, the invariant projection (and its rotations) must not
    route = synthetic_stand_in(n=900, dims=64, seed=4)
    rng = np.random.default_rng(5)
    q = route.database.copy()
    q[:, :8] += rng.normal(scale=4.0, size=(len(q), 8)).astype(np.float32)
    route.queries = q
    folds = route_blocked_folds(route.frames, last_tune_frame=9000, k=3, gap=10)
    opts = {o: default_options()[o] for o in ("pca", "inv", "inv+pitq")}
    by = {r["option"]: r for r in compare_options({"s": route}, opts, folds)}
    assert by["inv"]["agree_k17"] > by["pca"]["agree_k17"] + 0.05
    assert by["inv+pitq"]["agree_k17"] > by["pca"]["agree_k17"] + 0.05
    assert by["inv"]["hit_k17_p24"] > by["pca"]["hit_k17_p24"]


def test_validation_prefers_the_cheaper_of_tied_matchers_within_the_budget():
    from placeprint.evaluate.validate import choose_matcher

    scored = [
        (True, 0.885, -33_230, {"name": "a"}, {}),
        (True, 0.876, -29_000, {"name": "cheaper tie"}, {}),
        (True, 0.860, -20_000, {"name": "worse"}, {}),
        (False, 0.950, -60_000, {"name": "over budget"}, {}),
    ]
    assert choose_matcher(scored)[0] == {"name": "cheaper tie"}
    # nothing within the budget: the best of what there is
    over = [(False, 0.5, -50_000, {"name": "x"}, {}), (False, 0.7, -60_000, {"name": "y"}, {})]
    assert choose_matcher(over)[0] == {"name": "y"}


def test_validation_bound_penalises_a_setting_that_wins_on_one_block():
    from placeprint.evaluate.validate import lower_bound

    steady = [{"50": {"r1": 0.9}, "100": {"r1": 1.0}}] * 4  # 0.95 on every fold
    lucky = [{"50": {"r1": r}, "100": {"r1": 1.0}} for r in (1.0, 1.0, 1.0, 0.84)]
    b_steady, figs = lower_bound(steady)
    b_lucky, figs_lucky = lower_bound(lucky)
    assert figs == pytest.approx([0.95] * 4) and b_steady == pytest.approx(0.95)
    # mean 0.98 but spread: 0.98 - std([1, 1, 1, 0.92], ddof=1) / 2 = 0.98 - 0.02
    assert figs_lucky == pytest.approx([1.0, 1.0, 1.0, 0.92])
    assert b_lucky == pytest.approx(0.98 - np.std([1, 1, 1, 0.92], ddof=1) / 2)
    assert lower_bound([{"50": {"r1": 0.7}}]) == (0.7, [0.7])

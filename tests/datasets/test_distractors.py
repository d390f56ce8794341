"""Segment distractor routes: determinism, chunking, structure, transforms, and realism on
real Nordland codes (where the Gaussian generator must fail the same check)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from placeprint.datasets.distractors import (
    BLOCK,
    SegmentRouteGenerator,
    calibrate,
    nearest_rows,
    rotation_pool,
)
from placeprint.errors import PlaceprintError


def toy_route(n: int = 600, d: int = 8, seed: int = 0) -> np.ndarray:
    """A smooth random walk of ``n`` places in ``d`` dims, float32."""
    rng = np.random.default_rng(seed)
    return (np.cumsum(rng.standard_normal((n, d)), axis=0) * 0.2).astype(np.float32)


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return toy_route()


@pytest.fixture(scope="module")
def gen(rows) -> SegmentRouteGenerator:
    return SegmentRouteGenerator(seed=5).fit(rows)


# ----------------------------------------------------------------------------- determinism


def test_same_seed_same_route_other_seed_differs(rows, gen):
    n = BLOCK + 500
    a = np.concatenate(list(gen.database(n, chunk=4096)))
    b = np.concatenate(list(SegmentRouteGenerator(seed=5).fit(rows).database(n, chunk=4096)))
    c = np.concatenate(list(SegmentRouteGenerator(seed=6).fit(rows).database(n, chunk=4096)))
    assert a.dtype == np.float32 and a.shape == (n, rows.shape[1])
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_chunking_start_and_random_access_agree(gen):
    n = 2 * BLOCK + 777
    whole = np.concatenate(list(gen.database(n, chunk=n)))
    for chunk in (1_000, BLOCK, 5_003):
        parts = list(gen.database(n, chunk=chunk))
        assert all(len(p) <= chunk for p in parts)
        assert np.array_equal(np.concatenate(parts), whole)
    start = BLOCK - 100  # straddles a block boundary
    tail = np.concatenate(list(gen.database(n - start, chunk=333, start=start)))
    assert np.array_equal(tail, whole[start:])
    pos = np.array([n - 1, 0, BLOCK, BLOCK - 1, 12_345, 3, 3])
    assert np.array_equal(gen.database_rows(pos), whole[pos])
    assert np.array_equal(gen.sources(pos), gen.sources(np.arange(n))[pos])


# ----------------------------------------------------------------------------- structure


def test_copies_follow_segments_of_the_source(rows):
    gen = SegmentRouteGenerator(seed=1, mix=0.0, rotation=0.0, length=(20, 200)).fit(rows)
    n = 3 * BLOCK
    src = gen.sources(np.arange(n))
    assert np.array_equal(gen.database_rows(np.arange(n)), rows[src])  # plain copies
    m = len(rows)
    step = (np.diff(src) + m // 2) % m - m // 2  # signed step along the loop
    inside = np.abs(step) <= 2  # speed <= 1.4 rows a place, rounded
    assert inside.mean() > 0.97
    assert (step[inside] > 0).sum() > 0.3 * inside.sum()  # both directions occur
    assert (step[inside] < 0).sum() > 0.3 * inside.sum()
    assert 40 < gen.stats()["mean_segment_length"] < 100  # log-uniform 20..200: about 70
    counts = np.bincount(src, minlength=m)  # the source is read as a loop: even use,
    ends = counts[:5].sum() + counts[-5:].sum()  # its first and last rows included
    assert ends > 0.6 * 10 * counts.mean()
    assert counts.reshape(10, -1).sum(axis=1).min() > 0.6 * n / 10


def test_segments_do_not_depend_on_the_transform_strengths(rows):
    pos = np.arange(0, 2 * BLOCK, 7)
    base = SegmentRouteGenerator(seed=2).fit(rows).sources(pos)
    for kw in ({"mix": 0.0}, {"rotation": 0.0}, {"mix": 1.0, "rotation": 0.5, "pivot": 0.0}):
        assert np.array_equal(SegmentRouteGenerator(seed=2, **kw).fit(rows).sources(pos), base)


def test_rotation_about_the_origin_keeps_norms(rows):
    gen = SegmentRouteGenerator(seed=3, mix=0.0, rotation=0.4, pivot=0.0).fit(rows)
    pos = np.arange(BLOCK)
    out, src = gen.database_rows(pos), gen.sources(pos)
    want = np.linalg.norm(rows[src], axis=1)
    assert np.allclose(np.linalg.norm(out, axis=1), want, rtol=1e-4, atol=1e-5)
    assert not np.allclose(out, rows[src], atol=1e-3)


def test_neighbour_step_stays_inside_clusters():
    rng = np.random.default_rng(0)
    centres = np.repeat(np.array([[10.0, 0.0, 0.0], [-10.0, 0.0, 0.0], [0.0, 10.0, 0.0]]), 100, 0)
    rows = (centres + rng.normal(scale=0.5, size=centres.shape)).astype(np.float32)
    gen = SegmentRouteGenerator(seed=0, mix=1.0, rotation=0.3, pivot=1.0, neighbours=5)
    gen.fit(rows)
    pos = np.arange(BLOCK)
    out, src = gen.database_rows(pos), gen.sources(pos)
    assert np.linalg.norm(out - centres[src], axis=1).max() < 4.0  # clusters are 14+ apart
    assert np.abs(out - rows[src]).max() > 0.1  # and places did move


def test_rotation_pool_is_orthogonal_and_near_identity():
    pool = rotation_pool(seed=1, dim=32, angle=0.3, size=8)
    assert pool.shape == (8, 32, 32) and pool.dtype == np.float32
    eye = np.eye(32)
    for r in pool.astype(np.float64):
        assert np.allclose(r @ r.T, eye, atol=1e-5)
        assert np.linalg.det(r) == pytest.approx(1.0, abs=1e-4)
    x = np.random.default_rng(0).standard_normal((500, 32))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    turned = np.arccos(np.clip(((x @ pool[0]) * x).sum(axis=1), -1, 1))
    assert 0.2 < turned.mean() < 0.4
    assert rotation_pool(seed=1, dim=32, angle=0.0).shape == (0, 32, 32)
    assert np.array_equal(rotation_pool(1, 32, 0.3, 8), pool)


def test_nearest_rows_match_brute_force():
    x = np.random.default_rng(4).standard_normal((70, 5))
    got = nearest_rows(x, 6)
    for i in range(len(x)):
        d = [(float(np.sum((x[i] - x[j]) ** 2)), j) for j in range(len(x)) if j != i]
        assert got[i].tolist() == [j for _, j in sorted(d)[:6]]


# ----------------------------------------------------------------------------- API


def test_fit_keeps_parameters_and_learns_underscored_state(rows):
    gen = SegmentRouteGenerator(seed=4, length=(10, 50), mix=0.3)
    before = dict(vars(gen))
    gen.fit(rows)
    assert {k: v for k, v in vars(gen).items() if not k.endswith("_")} == before
    assert gen.neighbours_.shape == (len(rows), 10) and gen.centres_.shape == rows.shape
    assert gen.rows_ is not rows and np.array_equal(gen.rows_, rows)
    stats = gen.stats()
    json.dumps(stats, allow_nan=False)
    assert stats["n_source"] == len(rows) and stats["mix"] == 0.3
    assert 0.0 < stats["shift_rms"] < 2.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seed": -1},
        {"length": (0, 10)},
        {"length": (50, 10)},
        {"speed": (0.0, 1.0)},
        {"neighbours": 0},
        {"mix": 1.5},
        {"rotation": -0.1},
        {"pivot": 2.0},
    ],
)
def test_bad_parameters_raise_our_error(rows, kwargs):
    with pytest.raises(PlaceprintError):
        SegmentRouteGenerator(**kwargs).fit(rows)


def test_bad_use_raises_our_error(rows, gen):
    with pytest.raises(PlaceprintError, match="not fitted"):
        next(SegmentRouteGenerator().database(5))
    with pytest.raises(PlaceprintError, match="source rows"):
        SegmentRouteGenerator().fit(rows[:20])
    with pytest.raises(PlaceprintError, match="NaN"):
        SegmentRouteGenerator().fit(np.full((100, 3), np.nan))
    with pytest.raises(PlaceprintError, match=">= 0"):
        gen.database_rows(np.array([-1]))
    with pytest.raises(PlaceprintError, match="int"):
        gen.database_rows(np.array([1.5]))
    with pytest.raises(PlaceprintError, match="n must be"):
        next(gen.database(0))


def test_calibrate_returns_a_tried_value_with_its_table():
    rng = np.random.default_rng(1)
    db = toy_route(n=600, d=16, seed=1)
    queries = db + rng.normal(scale=0.3, size=db.shape).astype(np.float32)
    median = np.median(db, axis=0)

    def encode(z: np.ndarray) -> np.ndarray:
        return np.packbits(z > median, axis=1, bitorder="little")

    out = calibrate(db, queries, encode, values=(0.0, 0.3), gap=20, n=5_000, min_hits=1)
    assert out["value"] in (0.0, 0.3) and out["param"] == "rotation"
    assert [row["value"] for row in out["table"]] == [0.0, 0.3]
    assert set(out["table"][0]["realism"]) == {"10", "12", "14"}
    json.dumps(out)
    with pytest.raises(PlaceprintError, match="rows"):
        calibrate(db[:200], queries[:200], encode, gap=100)


# ----------------------------------------------------------------------------- real data


def fast_pca(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and top-``k`` principal axes ``(d, k)`` by a seeded randomized SVD."""
    mean = x.mean(axis=0)
    xc = x - mean
    y = xc @ np.random.default_rng(0).standard_normal((x.shape[1], k + 16)).astype(np.float32)
    y, _ = np.linalg.qr(y)
    y, _ = np.linalg.qr(xc @ (xc.T @ y))
    _, _, vt = np.linalg.svd(y.T @ xc, full_matrices=False)
    return mean, vt[:k].T


@pytest.fixture(scope="module")
def nordland_codes(nordland_descriptors):
    """Nordland in a 7-byte codec's projected space, learned as the benchmark does.

    A fast stand-in for ``fit_pipeline``: PCA-128 by randomized SVD on summer, then a
    ``CoarseCodec`` whose invariant projection learns from the summer/winter pairs of
    frames <= 20000. Test queries are winter frames >= 20010.
    """
    from conftest import require_real_data

    from placeprint.codec import CoarseCodec
    from placeprint.datasets.nordland import load_nordland
    from placeprint.evaluate.pipeline import TEST_FIRST_FRAME, TUNE_LAST_FRAME

    frames = load_nordland(require_real_data("nordland")).frames
    summer, winter, _ = nordland_descriptors
    mean, axes = fast_pca(summer, 128)
    db, q = (summer - mean) @ axes, (winter - mean) @ axes
    tune = int(np.searchsorted(frames, TUNE_LAST_FRAME, side="right"))
    codec = CoarseCodec(code_size=7).fit(db, paired=q[:tune])
    test = np.flatnonzero(frames >= TEST_FIRST_FRAME)
    return codec, db, q, tune, test


def test_segment_distractors_are_as_confusable_as_real_places(nordland_codes):
    from conftest import require_real_data

    from placeprint.evaluate.realism import distractor_realism

    require_real_data("nordland")
    codec, db, q, tune, test = nordland_codes
    z_db = codec.transform(db)
    gen = SegmentRouteGenerator(seed=0).fit(z_db[:tune])  # tuning places only
    z = np.concatenate(list(gen.database(100_000)))
    out = distractor_realism(
        codec.encode(q[test]), test, codec.encode(db), codec.quantize(z), z_db[:tune], z
    )
    for r, row in out["radii"].items():
        assert row["hits_real"] >= 50, r  # enough real close pairs to compare with
        assert 1 / 1.5 <= row["ratio"] <= 1.5, (r, row)
    kurt = out["kurtosis"]
    assert abs(kurt["distractor"]["mean"] - kurt["real"]["mean"]) < 0.3
    skew = out["skew"]
    assert abs(skew["distractor"]["std"] - skew["real"]["std"]) < 0.15
    src = codec.quantize(z_db[:tune][gen.sources(np.arange(len(z)))])
    flips = np.unpackbits(src ^ codec.quantize(z), axis=1).sum(axis=1)
    assert np.median(flips) >= 5 and (flips == 0).mean() < 0.1  # not copies of the source


def test_gaussian_distractors_fail_the_same_check(nordland_codes):
    from conftest import require_real_data

    from placeprint.datasets.synthetic import RouteGenerator
    from placeprint.evaluate.realism import distractor_realism

    require_real_data("nordland")
    codec, db, q, tune, test = nordland_codes
    gen = RouteGenerator(seed=0).fit(db[:tune], q[:tune])
    x = np.concatenate(list(gen.database(100_000)))
    out = distractor_realism(codec.encode(q[test]), test, codec.encode(db), codec.encode(x))
    assert out["radii"]["10"]["ratio"] < 1 / 1.5
    assert out["worst_factor"] > 5

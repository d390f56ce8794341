"""The synthetic route generator: determinism, random access, fitted statistics, errors."""

from __future__ import annotations

import os

import numpy as np
import pytest
from scipy.signal import lfilter

from placeprint.config import data_available
from placeprint.datasets.reduce import PCAReducer
from placeprint.datasets.synthetic import (
    BLOCK,
    MIN_ROWS,
    RouteGenerator,
    arma_coefficients,
    model_acf,
    route_acf,
)
from placeprint.errors import PlaceprintError

# A known reference model: per dim, a share W of the variance is AR(1) with coefficient R
# (the rest independent per place); queries = db + BIAS + (SLOPE - 1)(db - MEAN) + noise,
# the noise AR(1) with coefficient NOISE_R over all its variance.
MEAN = np.array([0.0, 2.0, -1.0, 0.5, 0.0, 3.0])
STD = np.array([8.0, 6.0, 4.0, 3.0, 2.0, 1.0])
W = np.array([0.9, 0.7, 0.5, 0.8, 0.3, 0.0])
R = np.array([0.95, 0.9, 0.8, 0.6, 0.5, 0.0])
BIAS = np.array([1.0, -2.0, 0.5, 0.0, 0.3, -0.2])
SLOPE = np.array([0.3, 0.5, 0.8, 1.0, 0.6, 0.9])
NOISE_STD = np.array([5.0, 4.0, 3.0, 2.0, 1.5, 1.0])
NOISE_R = np.array([0.9, 0.7, 0.0, 0.5, 0.8, 0.3])
LAGS = np.arange(1, 21)


def ar1(n: int, r: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance AR(1) per dim: ``(n, D)``, started from the stationary law."""
    out = np.empty((n, len(r)))
    for d, rd in enumerate(r):
        e = rng.standard_normal(n)
        e[0] /= np.sqrt(1.0 - rd * rd)
        out[:, d] = lfilter([np.sqrt(1.0 - rd * rd)], [1.0, -rd], e)
    return out


def reference_sample(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 6)`` database and queries drawn from the known model above."""
    rng = np.random.default_rng(seed)
    u = np.sqrt(W) * ar1(n, R, rng) + np.sqrt(1.0 - W) * rng.standard_normal((n, len(W)))
    x = MEAN + STD * u
    q = x + BIAS + (SLOPE - 1.0) * (x - MEAN) + NOISE_STD * ar1(n, NOISE_R, rng)
    return x.astype(np.float32), q.astype(np.float32)


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, np.ndarray]:
    return reference_sample(40_000)


@pytest.fixture(scope="module")
def gen(sample) -> RouteGenerator:
    return RouteGenerator(seed=7).fit(*sample)


@pytest.fixture(scope="module")
def route(gen) -> np.ndarray:
    """The first 200,000 places of ``gen``'s route."""
    return np.concatenate(list(gen.database(200_000, chunk=65_536)))


def weighted(values: np.ndarray, weights: np.ndarray) -> float:
    return float((values * weights).sum() / weights.sum())


# ----------------------------------------------------------------------------- fitting


def test_fit_recovers_the_reference_model(gen):
    assert np.allclose(gen.mean_, MEAN, atol=0.5)
    assert np.allclose(gen.std_, STD, rtol=0.05)
    true_acf = W * R ** LAGS[:, None]
    assert np.abs(model_acf(gen.weight_, gen.ar_, None, LAGS) - true_acf).max() < 0.05
    assert np.allclose(gen.bias_, BIAS, atol=0.4)
    assert np.allclose(gen.slope_, SLOPE, atol=0.05)
    assert np.allclose(gen.noise_std_, NOISE_STD, rtol=0.05)
    true_noise_acf = NOISE_R ** LAGS[:, None]
    noise_acf = model_acf(gen.noise_weight_, gen.noise_ar_, None, LAGS)
    assert np.abs(noise_acf - true_noise_acf).max() < 0.05


def test_arma_filter_has_the_model_correlation():
    weight = np.array([[0.3, 0.6], [0.0, 1.0], [0.2, 0.0], [0.0, 0.0], [0.5, 0.5]])
    ar = np.array([[0.4, 0.97], [0.0, 0.9], [0.7, 0.0], [0.0, 0.0], [0.2, 0.995]])
    phi, b = arma_coefficients(weight, ar)
    impulse = np.zeros(20_000)
    impulse[0] = 1.0
    for d in range(len(weight)):
        h = lfilter(b[d], [1.0, -phi[d, 0], -phi[d, 1]], impulse)
        acov = np.array([h[: len(h) - k] @ h[k:] for k in range(21)])
        assert acov[0] == pytest.approx(1.0, abs=1e-9)
        expected = model_acf(weight[d : d + 1], ar[d : d + 1], None, LAGS)[:, 0]
        assert np.allclose(acov[1:], expected, atol=1e-9)


def test_generated_route_matches_the_fitted_statistics(gen, route):
    assert route.shape == (200_000, 6) and route.dtype == np.float32
    x = route.astype(np.float64)
    assert np.allclose(x.var(axis=0) / gen.std_**2, 1.0, atol=0.10)
    assert np.allclose(x.mean(axis=0), gen.mean_, atol=0.1 * gen.std_)
    acf = route_acf(x, 5)
    expected = model_acf(gen.weight_, gen.ar_, None, [1, 5])
    assert np.abs(acf[[0, 4]] - expected).max() < 0.04
    # and the real (reference) numbers, variance-weighted over dims
    var = STD**2
    for k in (1, 5):
        assert weighted(acf[k - 1], var) == pytest.approx(weighted(W * R**k, var), abs=0.03)


def test_queries_are_database_plus_bias_and_noise(gen, route):
    pos = np.arange(200_000)
    q = gen.queries(pos).astype(np.float64)
    x = route.astype(np.float64)
    diff = q - x
    true_diff_std = np.sqrt((SLOPE - 1.0) ** 2 * STD**2 + NOISE_STD**2)
    assert np.allclose(diff.mean(axis=0), BIAS, atol=0.15 * true_diff_std)
    assert np.allclose(diff.std(axis=0), true_diff_std, rtol=0.10)
    resid = diff - gen.bias_ - (gen.slope_ - 1.0) * (x - gen.mean_)
    expected = model_acf(gen.noise_weight_, gen.noise_ar_, None, [1, 5])
    assert np.abs(route_acf(resid, 5)[[0, 4]] - expected).max() < 0.04


def test_additive_queries_and_independent_noise(sample):
    gen = RouteGenerator(query_model="additive", correlated_noise=False, seed=1).fit(*sample)
    assert np.all(gen.slope_ == 1.0) and np.all(gen.noise_weight_ == 0.0)
    x = gen.database_rows(np.arange(50_000)).astype(np.float64)
    diff = gen.queries(np.arange(50_000)) - x
    real = sample[1].astype(np.float64) - sample[0]
    assert np.allclose(diff.std(axis=0), real.std(axis=0), rtol=0.05)
    assert np.abs(route_acf(diff, 1)).max() < 0.03


def test_box_smoothing_gives_triangular_correlation(sample):
    gen = RouteGenerator(smoothing=10, seed=3).fit(sample[0])
    x = np.concatenate(list(gen.database(100_000))).astype(np.float64)
    assert np.allclose(x.var(axis=0) / gen.std_**2, 1.0, atol=0.1)
    acf = route_acf(x, 12)
    assert np.allclose(acf[[0, 4, 9, 11]], np.array([0.9, 0.5, 0.0, 0.0])[:, None], atol=0.04)
    assert gen.stats()["acf_model"][5] == pytest.approx(0.5)


# ----------------------------------------------------------------------------- determinism


def test_database_is_the_same_however_it_is_chunked(gen):
    n = 3 * BLOCK + 1234
    whole = np.concatenate(list(gen.database(n, chunk=n)))
    for chunk in (1, 999, BLOCK, 50_000):
        if chunk == 1:  # one row at a time: only the first places, it is slow
            rows = np.concatenate(list(gen.database(300, chunk=1, start=BLOCK - 150)))
            assert np.array_equal(rows, whole[BLOCK - 150 : BLOCK + 150])
            continue
        chunks = list(gen.database(n, chunk=chunk))
        assert all(len(c) == chunk for c in chunks[:-1]) and 0 < len(chunks[-1]) <= chunk
        assert np.array_equal(np.concatenate(chunks), whole)
    start = BLOCK + 77
    tail = np.concatenate(list(gen.database(n - start, chunk=4321, start=start)))
    assert np.array_equal(tail, whole[start:])


def test_random_access_equals_streamed_rows(gen, route):
    rng = np.random.default_rng(0)
    pos = np.concatenate([rng.integers(0, len(route), 50), [0, BLOCK - 1, BLOCK, len(route) - 1]])
    assert np.array_equal(gen.database_rows(pos), route[pos])
    assert gen.database_rows(np.array([], np.int64)).shape == (0, 6)


def test_queries_do_not_depend_on_the_other_positions(gen):
    pos = np.array([5, 17, BLOCK + 3, 10 * BLOCK + 9])
    together = gen.queries(pos)
    alone = np.concatenate([gen.queries(pos[i : i + 1]) for i in range(len(pos))])
    assert np.array_equal(together, alone)
    assert np.array_equal(gen.queries(pos[::-1]), together[::-1])


def test_seed_changes_the_route(sample, gen):
    other = RouteGenerator(seed=8).fit(*sample)
    a, b = next(gen.database(100)), next(other.database(100))
    assert not np.allclose(a, b)
    assert np.array_equal(next(RouteGenerator(seed=7).fit(*sample).database(100)), a)


def test_save_load_round_trip(gen, tmp_path):
    path = gen.save(tmp_path / "gen.npz")
    loaded = RouteGenerator.load(path)
    pos = np.array([0, 5, BLOCK + 1])
    assert np.array_equal(loaded.database_rows(pos), gen.database_rows(pos))
    assert np.array_equal(loaded.queries(pos), gen.queries(pos))
    assert loaded.stats() == gen.stats()
    assert [p.name for p in tmp_path.iterdir()] == ["gen.npz"]  # no temporary file left
    arrays = gen.to_arrays()
    arrays["magic"] = np.array("something else")
    with pytest.raises(PlaceprintError, match="not a"):
        RouteGenerator.from_arrays(arrays)
    with pytest.raises(PlaceprintError, match="not found"):
        RouteGenerator.load(tmp_path / "missing.npz")


def test_stats_are_plain_numbers(gen):
    import json

    stats = gen.stats()
    json.dumps(stats)
    assert stats["dim"] == 6 and stats["n_fit"] == 40_000
    assert stats["acf_model"][1] == pytest.approx(stats["acf_real"][1], abs=0.02)
    assert stats["diff_std_total_model"] == pytest.approx(stats["diff_std_total_real"], rel=1e-6)


# ----------------------------------------------------------------------------- errors


def test_bad_input_raises_placeprint_error(sample):
    x, q = sample[0][:500], sample[1][:500]
    bad = x.copy()
    bad[3, 2] = np.nan
    cases = [
        (lambda: RouteGenerator().fit(bad), "NaN"),
        (lambda: RouteGenerator().fit(x, np.where(bad > 0, q, np.inf)), "NaN or inf"),
        (lambda: RouteGenerator().fit(x[:, 0]), "2-D"),
        (lambda: RouteGenerator().fit(x[: MIN_ROWS - 1]), f"at least {MIN_ROWS} rows"),
        (lambda: RouteGenerator().fit(x, q[:-1]), "one row per database place"),
        (lambda: RouteGenerator().fit(x, q[:, :-1]), "6 columns"),
        (lambda: RouteGenerator(smoothing=0).fit(x), "smoothing"),
        (lambda: RouteGenerator(seed=-1).fit(x), "seed"),
        (lambda: RouteGenerator(query_model="nope").fit(x), "query_model"),
        (lambda: RouteGenerator().database(10), "not fitted"),
    ]
    gen = RouteGenerator().fit(x)
    cases += [
        (lambda: gen.database(0), "n must be an int >= 1"),
        (lambda: gen.database(-5), "n must be"),
        (lambda: gen.database(10, chunk=0), "chunk"),
        (lambda: gen.database(10, start=-1), "start"),
        (lambda: gen.database(2.5), "n must be"),
        (lambda: gen.database_rows(np.array([-1])), ">= 0"),
        (lambda: gen.database_rows(np.array([1.5])), "integers"),
        (lambda: gen.database_rows(np.zeros((2, 2), int)), "1-D"),
        (lambda: gen.queries(np.array([1])), "with real queries"),
    ]
    for call, message in cases:
        with pytest.raises(PlaceprintError, match=message):
            call()


# ----------------------------------------------------------------------------- PCA


def test_pca_reducer_projects_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 40)) * np.linspace(5, 0.1, 40) + 3.0
    pca = PCAReducer(8).fit(x)
    y = pca.transform(x)
    assert y.shape == (300, 8) and y.dtype == np.float32
    assert np.allclose(y.mean(axis=0), 0.0, atol=1e-4)
    assert np.all(np.diff(y.var(axis=0)) <= 1e-6)  # sorted by variance
    assert np.allclose(pca.components_ @ pca.components_.T, np.eye(8), atol=1e-10)
    assert np.allclose(PCAReducer(8).fit(x[:30]).transform(x[:2]).shape, (2, 8))  # n < d path
    # fewer rows than dims: the same axes as numpy's SVD of the centred rows (sign-fixed),
    # also when some asked-for axes have no variance (30 centred rows span 29 of them)
    few = x[:30] - x[:30].mean(axis=0)
    vt = np.linalg.svd(few, full_matrices=False)[2]
    for k in (8, 30):
        got = PCAReducer(k).fit(x[:30]).components_
        want = vt[:k] * np.sign(vt[:k][np.arange(k), np.abs(vt[:k]).argmax(axis=1)])[:, None]
        np.testing.assert_allclose(got[:29], want[:29], atol=1e-9)
    loaded = PCAReducer.load(pca.save(tmp_path / "pca.npz"))
    assert np.array_equal(loaded.transform(x), y)
    with pytest.raises(PlaceprintError, match="n_components"):
        PCAReducer(41).fit(x)
    with pytest.raises(PlaceprintError, match="40 columns"):
        pca.transform(x[:, :5])


# ----------------------------------------------------------------------------- real data


def test_fitted_to_nordland_matches_real_statistics():
    if not data_available("nordland"):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Nordland data missing in CI: set PLACEPRINT_DATA to ../shared/data")
        pytest.skip("Nordland not found under $PLACEPRINT_DATA (default ../shared/data)")
    from placeprint import describe
    from placeprint.datasets.nordland import load_nordland

    nordland = load_nordland()
    describer = describe.get("seqslam")
    summer, winter = describer(nordland.summer), describer(nordland.winter)
    pca = PCAReducer(96).fit(summer)
    x, q = pca.transform(summer), pca.transform(winter)
    gen = RouteGenerator(seed=0).fit(x, q)
    stats = gen.stats()
    for k in (1, 5):  # the real route is strongly correlated, and so is the change of season
        assert stats["acf_real"][k] > 0.2 and stats["noise_acf_real"][k] > 0.2
        assert stats["acf_model"][k] == pytest.approx(stats["acf_real"][k], abs=0.02)
        assert stats["noise_acf_model"][k] == pytest.approx(stats["noise_acf_real"][k], abs=0.02)
    pos = np.arange(50_000)
    syn = gen.database_rows(pos).astype(np.float64)
    syn_q = gen.queries(pos).astype(np.float64)
    assert np.allclose(syn.var(axis=0) / gen.std_**2, 1.0, atol=0.10)
    lag1 = weighted(route_acf(syn, 1)[0], gen.std_**2)
    assert lag1 == pytest.approx(stats["acf_real"][1], abs=0.03)
    diff = syn_q - syn
    assert np.sqrt(diff.var(axis=0).sum()) == pytest.approx(stats["diff_std_total_real"], rel=0.05)
    # the regression query model keeps the real (low) sign agreement of the top 24 dims
    centre = gen.mean_[:24]
    agree = float(np.mean(np.sign(syn[:, :24] - centre) == np.sign(syn_q[:, :24] - centre)))
    assert agree == pytest.approx(stats["sign_agreement_real_top24"], abs=0.03)

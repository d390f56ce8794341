"""vMF mixture against closed forms and quadrature; mean shift against planted clusters."""

import numpy as np
import pytest

from placeprint.errors import PlaceprintError
from placeprint.geo.distance import EARTH_RADIUS_KM, haversine_km
from placeprint.geo.sphere import (
    Mode,
    VmfMixture,
    kappa_for_km,
    mean_shift_modes,
    to_latlon,
    to_unit,
)


def test_round_trip_poles_antimeridian():
    lat = np.array([0.0, 45.0, -33.9, 89.999, -89.999, 10.0, 10.0, 60.0])
    lon = np.array([0.0, 180.0, 151.2, 20.0, -120.0, -179.999, 179.999, -75.0])
    la, lo = to_latlon(to_unit(lat, lon))
    np.testing.assert_allclose(la, lat, atol=1e-9)
    # compare longitudes modulo 360 (180 and -180 are the same meridian)
    np.testing.assert_allclose(np.angle(np.exp(1j * np.radians(lo - lon))), 0, atol=1e-9)
    # exact poles: the vector is the axis, the latitude exact, longitude arbitrary
    v = to_unit([90.0, -90.0], [37.0, 37.0])
    np.testing.assert_allclose(v, [[0, 0, 1], [0, 0, -1]], atol=1e-15)
    np.testing.assert_allclose(to_latlon(v)[0], [90.0, -90.0])
    # unnormalised input and a (3,) vector; hand-checked directions
    la, lo = to_latlon([0.0, -5.0, 0.0])
    assert la[0] == pytest.approx(0) and lo[0] == pytest.approx(-90)
    la, lo = to_latlon([[-2.0, 0.0, 2.0]])
    assert la[0] == pytest.approx(45) and abs(lo[0]) == pytest.approx(180)
    np.testing.assert_allclose(np.linalg.norm(to_unit(lat, lon), axis=1), 1, rtol=1e-15)


def test_kappa_for_km():
    assert kappa_for_km(EARTH_RADIUS_KM) == pytest.approx(1.0)
    assert kappa_for_km(1.0) == pytest.approx(EARTH_RADIUS_KM**2)
    for bad in [0, -1, np.nan, np.inf, "x"]:
        with pytest.raises(PlaceprintError):
            kappa_for_km(bad)


@pytest.mark.parametrize("kappa", [1e-6, 0.3, 10.0, 1e3, 1e9])
def test_single_kernel_peak_closed_form(kappa):
    m = VmfMixture(kappa).fit([12.0], [-40.0])
    expected = (
        kappa * np.exp(kappa) / (4 * np.pi * np.sinh(kappa))
        if kappa < 700
        else (kappa / (2 * np.pi))
    )  # C(k) e^k = k / (2 pi (1 - e^{-2k}))
    assert m.log_pdf([12.0], [-40.0])[0] == pytest.approx(np.log(expected), rel=1e-10)
    # antipode: C(k) e^{-k}, in log space to avoid overflow
    la, lo = -12.0, 140.0
    log_anti = np.log(kappa) - np.log(2 * np.pi) - np.log(-np.expm1(-2 * kappa)) - 2 * kappa
    assert m.log_pdf([la], [lo])[0] == pytest.approx(log_anti, rel=1e-9)


def _grid_integral(m, n=1200):
    """Midpoint rule in (lat, lon) with the cos(lat) area element, over the whole sphere."""
    lat = -90 + (np.arange(n) + 0.5) * 180 / n
    lon = -180 + (np.arange(2 * n) + 0.5) * 360 / (2 * n)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    p = np.exp(m.log_pdf(la.ravel(), lo.ravel())).reshape(la.shape)
    dA = np.radians(180 / n) * np.radians(360 / (2 * n)) * np.cos(np.radians(la))
    return float((p * dA).sum())


@pytest.mark.parametrize("kappa", [10.0, 1000.0])
def test_mixture_integrates_to_one(kappa):
    m = VmfMixture(kappa).fit([0.0, 50.0, -70.0], [0.0, 100.0, -30.0], weights=[1, 2, 3])
    assert _grid_integral(m) == pytest.approx(1.0, abs=2e-3)


def test_sharp_kernel_integrates_to_one_locally():
    # 1 km kernel: integrate over a small cap in local tangent-plane (azimuthal) coordinates.
    k = kappa_for_km(1.0)
    m = VmfMixture(k).fit([47.3], [8.5])
    mu = to_unit([47.3], [8.5])[0]
    e1 = np.cross([0.0, 0.0, 1.0], mu)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(mu, e1)
    # polar coordinates (theta, phi) around mu; area element sin(theta) dtheta dphi
    nt, nphi = 2000, 16
    theta_max = 10.0 / EARTH_RADIUS_KM  # 10 km = 10 sigma
    th = (np.arange(nt) + 0.5) * theta_max / nt
    ph = (np.arange(nphi) + 0.5) * 2 * np.pi / nphi
    T, P = np.meshgrid(th, ph, indexing="ij")
    x = (
        np.cos(T)[..., None] * mu
        + np.sin(T)[..., None] * (np.cos(P)[..., None] * e1 + np.sin(P)[..., None] * e2)
    ).reshape(-1, 3)
    la, lo = to_latlon(x)
    p = np.exp(m.log_pdf(la, lo)).reshape(T.shape)
    total = (p * np.sin(T)).sum() * (theta_max / nt) * (2 * np.pi / nphi)
    assert total == pytest.approx(1.0, abs=1e-4)
    # per km^2: near the centre a 2-D Gaussian with sigma = 1 km
    assert m.pdf_km2([47.3], [8.5])[0] == pytest.approx(1 / (2 * np.pi), rel=1e-6)


@pytest.mark.parametrize("kappa", [0.5, 5.0, 200.0, 1e8])
def test_sample_mean_resultant_length(kappa):
    m = VmfMixture(kappa).fit([-20.0], [33.0])
    lat, lon = m.sample(40000, rng=1)
    x = to_unit(lat, lon)
    mu = to_unit([-20.0], [33.0])[0]
    a = 1 / np.tanh(kappa) - 1 / kappa
    cos_t = x @ mu
    sd = np.sqrt(max(np.var(cos_t), 1e-30) / len(cos_t))
    assert cos_t.mean() == pytest.approx(a, abs=5 * sd + 1e-12)
    # mean direction is the centre (symmetry)
    mean = x.mean(axis=0)
    np.testing.assert_allclose(mean / np.linalg.norm(mean), mu, atol=0.02)
    if kappa == 1e8:  # 1 - cos(theta) is Exponential(1/kappa) for large kappa
        assert (1 - cos_t).mean() * kappa == pytest.approx(1.0, rel=0.03)


def test_sample_components_by_weight():
    m = VmfMixture(kappa_for_km(5.0)).fit([10.0, -40.0], [20.0, 120.0], weights=[3, 1])
    lat, lon = m.sample(8000, rng=np.random.default_rng(3))
    near_first = haversine_km(lat, lon, 10.0, 20.0) < 100
    assert near_first.mean() == pytest.approx(0.75, abs=0.02)


def test_credible_level_single_kernel_analytic():
    k = 8.0
    m = VmfMixture(k).fit([30.0], [60.0])
    theta = np.radians([0.0, 10.0, 25.0, 40.0, 70.0, 120.0])
    # points at angle theta from the centre, along its meridian (towards and over the pole)
    mu = to_unit([30.0], [60.0])[0]
    north = to_unit([60.0], [-120.0])[0]  # 90 degrees away, over the north pole
    x = np.cos(theta)[:, None] * mu + np.sin(theta)[:, None] * north
    lat, lon = to_latlon(x)
    # mass of the cap of angle theta: (1 - e^{k (cos th - 1)}) / (1 - e^{-2k})
    expected = -np.expm1(k * (np.cos(theta) - 1)) / -np.expm1(-2 * k)
    got = m.credible_level(lat, lon, samples=20000, rng=5)
    np.testing.assert_allclose(got, expected, atol=0.015)
    assert m.hpd_threshold(0.5, samples=20000, rng=5) == pytest.approx(
        np.log(k / (2 * np.pi * -np.expm1(-2 * k))) + k * (np.cos(_cap_angle(k, 0.5)) - 1),
        abs=0.05,
    )


def _cap_angle(k, p):
    """Angle of the cap holding mass p of a single vMF (inverse of the cap-mass formula)."""
    return np.arccos(1 + np.log1p(p * np.expm1(-2 * k)) / k)


def test_credible_level_uniform_under_model():
    lat = [48.0, 50.0, 40.0, -23.0]
    lon = [2.0, 8.0, -3.0, -46.0]
    kappa = np.array([kappa_for_km(100.0), kappa_for_km(300.0), kappa_for_km(50.0), 2.0])
    m = VmfMixture(kappa).fit(lat, lon, weights=[0.4, 0.3, 0.2, 0.1])
    tl, tn = m.sample(2000, rng=11)
    levels = m.credible_level(tl, tn, samples=4000, rng=12)
    assert (levels <= 0.5).mean() == pytest.approx(0.5, abs=0.05)
    assert (levels <= 0.9).mean() == pytest.approx(0.9, abs=0.04)


def test_zero_weight_kernel_ignored():
    a = VmfMixture(50.0).fit([0.0, 10.0], [0.0, 10.0], weights=[1.0, 0.0])
    b = VmfMixture(50.0).fit([0.0], [0.0])
    q = np.linspace(-30, 30, 7)
    np.testing.assert_allclose(a.log_pdf(q, q), b.log_pdf(q, q))


def test_log_pdf_chunked_equals_direct():
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(-60, 60, 1500), rng.uniform(-180, 180, 1500)
    m = VmfMixture(kappa_for_km(500.0)).fit(lat, lon)
    ql, qn = rng.uniform(-60, 60, 1000), rng.uniform(-180, 180, 1000)  # > 1 chunk
    x, mu = to_unit(ql, qn), to_unit(lat, lon)
    k = kappa_for_km(500.0)
    direct = np.log((np.exp(k * (x @ mu.T - 1)) * k / (2 * np.pi * -np.expm1(-2 * k))).mean(axis=1))
    np.testing.assert_allclose(m.log_pdf(ql, qn), direct, rtol=1e-10)


def _cluster(rng, lat, lon, n, km):
    d = rng.normal(0, km, (n, 2)) / 111.2
    return lat + d[:, 0], lon + d[:, 1] / np.cos(np.radians(lat))


def test_mean_shift_planted_modes():
    rng = np.random.default_rng(42)
    parts = [
        _cluster(rng, 48.85, 2.35, 30, 5.0),  # Paris
        _cluster(rng, 40.71, -74.0, 20, 5.0),  # New York
        _cluster(rng, -33.87, 151.2, 10, 5.0),  # Sydney, near nothing else
        _cluster(rng, 35.68, 139.7, 2, 2.0),  # Tokyo: 2 points, dropped
        (np.array([0.0, -60.0, 70.0]), np.array([-30.0, -70.0, 100.0])),  # outliers
    ]
    lat = np.concatenate([p[0] for p in parts])
    lon = np.concatenate([p[1] for p in parts])
    n = lat.size
    modes = mean_shift_modes(lat, lon, bandwidth_km=25.0, min_members=4)
    assert len(modes) == 3 and all(isinstance(m, Mode) for m in modes)
    for m, (clat, clon, size) in zip(
        modes, [(48.85, 2.35, 30), (40.71, -74.0, 20), (-33.87, 151.2, 10)], strict=True
    ):
        assert haversine_km(m.lat, m.lon, clat, clon) < 5.0
        assert m.mass == pytest.approx(size / n, abs=1e-12)  # exactly its points
        assert m.members.size == size
        assert 3.0 < m.radius_km < 20.0  # 90th pct of a 2-D Gaussian sigma 5: ~10.7 km
    assert np.array_equal(modes[0].members, np.arange(30))
    # weights: making New York heavy reorders the modes
    w = np.ones(n)
    w[30:50] = 5.0
    modes = mean_shift_modes(lat, lon, weights=w, bandwidth_km=25.0)
    assert haversine_km(modes[0].lat, modes[0].lon, 40.71, -74.0) < 5
    assert modes[0].mass == pytest.approx(100 / w.sum())


def test_mean_shift_radius_and_fallback():
    # two points 10 km apart, bandwidth 50 km: one mode midway, radius ~5 km, kept as fallback
    lat = np.array([0.0, 0.0])
    lon = np.array([0.0, 10.0 / 111.195])
    modes = mean_shift_modes(lat, lon, bandwidth_km=50.0, min_members=4)
    assert len(modes) == 1 and modes[0].members.size == 2 and modes[0].mass == pytest.approx(1)
    assert modes[0].radius_km == pytest.approx(5.0, abs=0.05)
    assert haversine_km(modes[0].lat, modes[0].lon, 0.0, 5.0 / 111.195) < 0.05
    # far apart with a tiny bandwidth: two modes, the heavier one kept
    modes = mean_shift_modes([0.0, 40.0], [0.0, 40.0], weights=[1, 3], bandwidth_km=1.0)
    assert len(modes) == 1 and modes[0].lat == pytest.approx(40.0)
    assert modes[0].mass == pytest.approx(0.75) and modes[0].radius_km == 0.0
    # across the antimeridian: one mode, not two
    modes = mean_shift_modes([10.0] * 4, [179.95, -179.95, 179.97, -179.97], bandwidth_km=20.0)
    assert len(modes) == 1 and abs(modes[0].lon) > 179.9


@pytest.mark.parametrize(
    "call",
    [
        lambda: to_unit([np.nan], [0.0]),
        lambda: to_unit([91.0], [0.0]),
        lambda: to_latlon([[0.0, 0.0, 0.0]]),
        lambda: to_latlon([[1.0, 2.0]]),
        lambda: VmfMixture(0.0).fit([0.0], [0.0]),
        lambda: VmfMixture(-1.0).fit([0.0], [0.0]),
        lambda: VmfMixture(np.nan).fit([0.0], [0.0]),
        lambda: VmfMixture([1.0, 2.0]).fit([0.0], [0.0]),
        lambda: VmfMixture(1.0).fit([0.0, 1.0], [0.0, 1.0], weights=[1.0, -1.0]),
        lambda: VmfMixture(1.0).fit([0.0, 1.0], [0.0, 1.0], weights=[0.0, 0.0]),
        lambda: VmfMixture(1.0).fit([0.0, 1.0], [0.0, 1.0], weights=[1.0]),
        lambda: VmfMixture(1.0).fit([], []),
        lambda: VmfMixture(1.0).log_pdf([0.0], [0.0]),
        lambda: VmfMixture(1.0).fit([0.0], [0.0]).hpd_threshold(0.0),
        lambda: VmfMixture(1.0).fit([0.0], [0.0]).sample(-1),
        lambda: mean_shift_modes([0.0, 95.0], [0.0, 0.0]),
        lambda: mean_shift_modes([0.0], [0.0], bandwidth_km=0.0),
        lambda: mean_shift_modes([0.0], [0.0], weights=[-1.0]),
        lambda: mean_shift_modes([0.0], [0.0], min_members=0),
    ],
)
def test_bad_input_raises(call):
    with pytest.raises(PlaceprintError):
        call()

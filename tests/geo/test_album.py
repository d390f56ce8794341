"""Album HMM against brute-force path enumeration and hand-computed transition matrices."""

import itertools
import math

import numpy as np
import pytest

from placeprint.errors import PlaceprintError
from placeprint.geo.album import (
    DEFAULT_SCALE_KM,
    forward_backward,
    smooth_album,
    transition_matrix,
)

# Paris, Versailles (~17 km), Lyon (~390 km), New York
CELL_LAT = np.array([48.8566, 48.8049, 45.7640, 40.7128])
CELL_LON = np.array([2.3522, 2.1204, 4.8357, -74.0060])


def _gc_km(a, b):
    """Independent great-circle distance (spherical law of cosines), R = 6371.0088 km."""
    p1, p2 = math.radians(CELL_LAT[a]), math.radians(CELL_LAT[b])
    dl = math.radians(CELL_LON[b] - CELL_LON[a])
    c = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)
    return 6371.0088 * math.acos(min(1.0, max(-1.0, c)))


def test_transition_matrix_hand_computed():
    dt, speed, tele = 1800.0, 60.0, 0.01  # 30 minutes at 60 km/h: scale 30 km
    got = transition_matrix(CELL_LAT, CELL_LON, dt, speed_kmh=speed, teleport=tele)
    c = len(CELL_LAT)
    for i in range(c):
        dec = [math.exp(-_gc_km(i, j) / 30.0) for j in range(c)]
        for j in range(c):
            assert got[i, j] == pytest.approx((1 - tele) * dec[j] / sum(dec) + tele / c, rel=1e-9)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-12)


def test_transition_limits():
    c = len(CELL_LAT)
    tele = 1e-3
    # dt -> 0: scale = min_km = 1 km, cells >= 17 km apart: stay with 1 - teleport + teleport/C
    a = transition_matrix(CELL_LAT, CELL_LON, 0.0, teleport=tele)
    np.testing.assert_allclose(np.diag(a), 1 - tele + tele / c, rtol=1e-6)
    off = a[~np.eye(c, dtype=bool)]
    np.testing.assert_allclose(off, tele / c, rtol=1e-3)
    # dt huge: the decay is flat, rows nearly uniform
    b = transition_matrix(CELL_LAT, CELL_LON, 1e10, teleport=tele)
    np.testing.assert_allclose(b, 1.0 / c, rtol=1e-3)
    # teleport = 0 with dt = 0: the identity up to exp(-17 km / 1 km) (no NaN from underflow)
    np.testing.assert_allclose(
        transition_matrix(CELL_LAT, CELL_LON, 0.0, teleport=0.0), np.eye(c), atol=1e-7
    )
    # unknown gap: the default 1000 km scale, same as 1000 km of travel at 80 km/h
    u = transition_matrix(CELL_LAT, CELL_LON, None)
    np.testing.assert_allclose(u, transition_matrix(CELL_LAT, CELL_LON, np.nan))
    np.testing.assert_allclose(u, transition_matrix(CELL_LAT, CELL_LON, 3600 * 1000 / 80.0))
    assert DEFAULT_SCALE_KM == 1000.0
    # closer cells are more likely: from Paris, Versailles > Lyon > New York
    mid = transition_matrix(CELL_LAT, CELL_LON, 3 * 3600.0)
    assert mid[0, 1] > mid[0, 2] > mid[0, 3]


def _brute_force(lik, trans, prior):
    t_len, c = lik.shape
    post = np.zeros((t_len, c))
    for path in itertools.product(range(c), repeat=t_len):
        p = prior[path[0]] * lik[0, path[0]]
        for t in range(1, t_len):
            p *= trans[t - 1][path[t - 1], path[t]] * lik[t, path[t]]
        for t, s in enumerate(path):
            post[t, s] += p
    return post / post.sum(axis=1, keepdims=True)


def test_smooth_album_equals_brute_force_out_of_order():
    rng = np.random.default_rng(7)
    lat, lon = CELL_LAT[:3], CELL_LON[:3]
    lik = rng.uniform(0.01, 1.0, (4, 3))
    ts = np.array([5000.0, 0.0, 20000.0, 1200.0])  # input not in time order
    prior = np.array([0.5, 0.3, 0.2])
    opts = dict(speed_kmh=50.0, min_km=2.0, teleport=0.05)
    got = smooth_album(lik, lat, lon, timestamps=ts, prior=prior, **opts)

    order = np.argsort(ts)
    dts = np.diff(ts[order])
    trans = [transition_matrix(lat, lon, dt, **opts) for dt in dts]
    ref_sorted = _brute_force(lik[order], trans, prior)
    ref = np.empty_like(ref_sorted)
    ref[order] = ref_sorted
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-12)
    # the core on its own, with arbitrary (non-distance) stochastic matrices
    mats = [m / m.sum(axis=1, keepdims=True) for m in rng.uniform(0, 1, (3, 3, 3))]
    np.testing.assert_allclose(
        forward_backward(lik, mats, prior), _brute_force(lik, mats, prior), rtol=1e-10
    )
    # no timestamps: input order, unknown gaps
    none = smooth_album(lik, lat, lon, prior=prior, **opts)
    trans_u = [transition_matrix(lat, lon, None, **opts)] * 3
    np.testing.assert_allclose(none, _brute_force(lik, trans_u, prior), rtol=1e-10)


def test_single_photo_is_prior_times_likelihood():
    lik = np.array([[0.2, 0.6, 0.1, 0.1]])
    prior = np.array([0.4, 0.1, 0.25, 0.25])
    got = smooth_album(lik, CELL_LAT, CELL_LON, timestamps=[3.0], prior=prior)
    ref = lik[0] * prior / (lik[0] * prior).sum()
    np.testing.assert_allclose(got[0], ref, rtol=1e-12)


def test_flat_photo_inherits_neighbours():
    flat = np.ones(4)
    ny = np.array([0.01, 0.01, 0.01, 0.97])
    lik = np.stack([ny, flat, ny])
    got = smooth_album(lik, CELL_LAT, CELL_LON, timestamps=[0.0, 600.0, 1200.0])
    assert got[1, 3] > 0.99
    # with day-long gaps the pull is weaker, but New York still leads
    slow = smooth_album(lik, CELL_LAT, CELL_LON, timestamps=[0.0, 86400.0 * 30, 86400.0 * 60])
    assert slow[1, 3] < got[1, 3] and slow[1].argmax() == 3


def test_tiny_likelihoods_do_not_underflow():
    lik = np.array([[1e-300, 2e-300, 1e-300], [3e-310, 1e-310, 1e-310]])
    got = smooth_album(lik, CELL_LAT[:3], CELL_LON[:3], timestamps=[0.0, 60.0])
    ref = smooth_album(
        lik / lik.max(axis=1, keepdims=True), CELL_LAT[:3], CELL_LON[:3], [0.0, 60.0]
    )
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert np.all(np.isfinite(got))


@pytest.mark.parametrize(
    "call",
    [
        lambda: smooth_album(np.ones(4), CELL_LAT, CELL_LON),
        lambda: smooth_album(np.ones((2, 3)), CELL_LAT, CELL_LON),
        lambda: smooth_album(np.array([[1.0, np.nan, 1, 1]]), CELL_LAT, CELL_LON),
        lambda: smooth_album(np.array([[1.0, -1.0, 1, 1]]), CELL_LAT, CELL_LON),
        lambda: smooth_album(np.zeros((1, 4)), CELL_LAT, CELL_LON),
        lambda: smooth_album(np.ones((2, 4)), CELL_LAT, CELL_LON, timestamps=[0.0]),
        lambda: smooth_album(np.ones((2, 4)), CELL_LAT, CELL_LON, timestamps=[0.0, np.nan]),
        lambda: smooth_album(np.ones((2, 4)), CELL_LAT, CELL_LON, prior=np.ones(3)),
        lambda: smooth_album(np.ones((2, 4)), CELL_LAT, CELL_LON, teleport=1.0),
        lambda: smooth_album(np.ones((2, 4)), CELL_LAT, CELL_LON, speed_kmh=0.0),
        lambda: transition_matrix(CELL_LAT, CELL_LON, -5.0),
        lambda: transition_matrix(CELL_LAT, CELL_LON[:2], 5.0),
        lambda: transition_matrix([95.0], [0.0], 5.0),
        lambda: transition_matrix([np.nan], [0.0], 5.0),
        lambda: transition_matrix(CELL_LAT, CELL_LON, 5.0, min_km=0.0),
        lambda: forward_backward(np.ones((3, 2)), [np.eye(2)], None),
        lambda: forward_backward(np.ones((2, 2)), [np.ones((2, 2))], None),
        lambda: forward_backward(np.ones((2, 2)), [np.eye(3)], None),
        # identity transitions with disjoint likelihoods: nothing reachable
        lambda: forward_backward(np.array([[1.0, 0.0], [0.0, 1.0]]), [np.eye(2)], None),
    ],
)
def test_bad_input_raises(call):
    with pytest.raises(PlaceprintError):
        call()

"""Geolocator: kNN density, cells, classifier, albums, calibration, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from placeprint.errors import PlaceprintError
from placeprint.geo.cells import AdaptiveCells
from placeprint.geo.distance import haversine_km
from placeprint.geo.geolocator import (
    Geolocator,
    em_mixing_weights,
    kappa_of_km,
    log_vmf,
    neighbour_weights,
)
from placeprint.geo.sphere import VmfMixture

CITIES = {  # lat, lon
    "berlin": (52.52, 13.405),
    "lund": (55.7047, 13.191),
    "sydney": (-33.8688, 151.2093),
    "lima": (-12.0464, -77.0428),
}


def city_world(per_city: int = 60, dim: int = 16, noise: float = 0.15, seed: int = 0):
    """Photos scattered ~2 km around four cities; each city has its own descriptor centre."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(CITIES), dim))
    lat, lon, X, label = [], [], [], []
    for c, (la, lo) in enumerate(CITIES.values()):
        lat.append(la + rng.normal(0, 0.02, per_city))
        lon.append(lo + rng.normal(0, 0.02, per_city))
        X.append(centres[c] + noise * rng.normal(size=(per_city, dim)))
        label += [c] * per_city
    X = np.vstack(X).astype(np.float32)
    return np.concatenate(lat), np.concatenate(lon), X, np.array(label), centres


def test_log_vmf_matches_the_mixture_density():
    kappa = kappa_of_km(5.0)
    m = VmfMixture(kappa).fit([10.0], [20.0])
    lat, lon = np.array([10.0, 10.03, 9.9]), np.array([20.0, 20.0, 20.1])
    from placeprint.geo.sphere import to_unit

    dots = to_unit(lat, lon) @ to_unit([10.0], [20.0])[0]
    np.testing.assert_allclose(log_vmf(dots, kappa), m.log_pdf(lat, lon), rtol=1e-9, atol=1e-6)


def test_neighbour_weights_by_hand():
    w = neighbour_weights(np.array([[1.0, 1.5, 3.0]]), 0.5)
    e = np.exp([0.0, -1.0, -4.0])
    np.testing.assert_allclose(w[0], e / e.sum())
    np.testing.assert_allclose(neighbour_weights(np.array([[1.0, 2.0]]), np.inf)[0], [0.5, 0.5])


def test_em_recovers_planted_mixing_weights():
    """Draws from a known 3-component mixture: EM finds its weights (maximum likelihood)."""
    rng = np.random.default_rng(0)
    truth = np.array([0.6, 0.3, 0.1])
    z = rng.choice(3, 20000, p=truth)
    x = rng.normal(np.array([-3.0, 0.0, 4.0])[z], 1.0)
    ll = -0.5 * (x[:, None] - np.array([-3.0, 0.0, 4.0])[None]) ** 2 - 0.5 * np.log(2 * np.pi)
    pi = em_mixing_weights(ll)
    np.testing.assert_allclose(pi, truth, atol=0.015)
    from scipy.optimize import minimize  # independent: direct optimisation on the simplex

    def nll(v):
        p = np.exp(v) / np.exp(v).sum()
        return -np.log(np.exp(ll) @ p).mean()

    p_direct = np.exp(minimize(nll, np.zeros(3)).x)
    np.testing.assert_allclose(pi, p_direct / p_direct.sum(), atol=2e-3)


@pytest.fixture(scope="module")
def world():
    return city_world()


@pytest.fixture(scope="module")
def fitted(world):
    lat, lon, X, _, _ = world
    return Geolocator(k=10, land=False).fit(X, lat, lon)


def test_query_lands_in_its_city_with_high_probability(fitted, world):
    _, _, _, _, centres = world
    preds = fitted.predict_proba(centres.astype(np.float32))
    for pred, (la, lo) in zip(preds, CITIES.values(), strict=True):
        assert haversine_km(pred.best.lat, pred.best.lon, la, lo) < 10.0  # photos spread ~2 km
        assert pred.best.probability > 0.5
        assert pred.best.matches >= 4
        # the other cities get almost nothing
        far = [m for m in pred.modes if haversine_km(m.lat, m.lon, la, lo) > 100]
        assert sum(m.probability for m in far) < 0.1
        assert pred.credible_level(la, lo) < 0.9
        assert pred.credible_level(-la, lo + 90) > 0.99  # nowhere near


def test_ambiguous_query_splits_between_two_cities(fitted, world):
    _, _, _, _, centres = world
    q = ((centres[0] + centres[2]) / 2).astype(np.float32)[None]
    pred = fitted.predict_proba(q)[0]
    top = pred.modes[:2]
    assert len(pred.modes) >= 2
    near = sorted(
        min(haversine_km(m.lat, m.lon, *CITIES[c]) for c in ("berlin", "sydney")) for m in top
    )
    assert near[1] < 10.0
    assert 0.2 < top[0].probability and 0.2 < top[1].probability


def test_mixing_weights_favour_the_city_scale(fitted):
    """Photos lie ~2 km around their city: the 0.05 km kernel is useless, 500+ km rare."""
    w = dict(zip(fitted.component_names(), fitted.weights_, strict=True))
    assert w["knn_0.05km"] < 0.1
    assert w["knn_0.5km"] + w["knn_5km"] > 0.6
    np.testing.assert_allclose(sum(w.values()), 1.0)


def test_save_load_round_trip(fitted, world, tmp_path):
    _, _, _, _, centres = world
    path = tmp_path / "g.geo"
    fitted.save(path, meta={"describer": {"name": "tiny"}})
    loaded = Geolocator.load(path)
    assert loaded.user_meta_ == {"describer": {"name": "tiny"}}
    a = fitted.predict_proba(centres.astype(np.float32))
    b = loaded.predict_proba(centres.astype(np.float32))
    for p, q in zip(a, b, strict=True):
        assert [m.to_dict() for m in p.modes] == [m.to_dict() for m in q.modes]
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(PlaceprintError):
        Geolocator.load(path)


def test_bad_input(fitted, world):
    lat, lon, X, _, _ = world
    with pytest.raises(PlaceprintError, match="not fitted"):
        Geolocator().predict_proba(X[:1])
    with pytest.raises(PlaceprintError, match="descriptors must be"):
        fitted.predict_proba(X[:1, :3])
    bad = X[:2].copy()
    bad[0, 0] = np.nan
    with pytest.raises(PlaceprintError, match="NaN"):
        fitted.predict_proba(bad)
    with pytest.raises(PlaceprintError):
        Geolocator().fit(X, lat + 100, lon)
    with pytest.raises(PlaceprintError, match="positions"):
        Geolocator().fit(X, lat[:-1], lon[:-1])
    with pytest.raises(PlaceprintError):
        Geolocator(k=0)


def test_cells_classifier_and_album(world):
    """With cells: the classifier alone finds the city; an album pulls a blurred photo home."""
    lat, lon, X, label, centres = world
    cells = AdaptiveCells(max_photos=30, min_photos=3, min_level=2, max_level=10)
    geo = Geolocator(k=10, cells=cells, knn=False, land=False).fit(X, lat, lon)
    assert "classifier" in geo.component_names()
    for c, (la, lo) in enumerate(CITIES.values()):
        best = geo.predict_proba(centres[c : c + 1].astype(np.float32))[0].best
        assert haversine_km(best.lat, best.lon, la, lo) < 150.0
    both = Geolocator(k=10, cells=cells, land=False).fit(X, lat, lon)
    rng = np.random.default_rng(5)
    album = (centres[1] + 0.15 * rng.normal(size=(4, centres.shape[1]))).astype(np.float32)
    album[2] = (centres[1] + centres[3]) / 2  # as much Lund as Lima
    single = both.predict_proba(album)
    smoothed = both.predict_album(album, np.arange(4) * 300.0)

    def near_lund(pred) -> float:
        s_lat, s_lon = pred.density.sample(4000, 1)
        return float((haversine_km(s_lat, s_lon, *CITIES["lund"]) < 100).mean())

    assert near_lund(smoothed[2]) > 0.9 and near_lund(smoothed[2]) > near_lund(single[2]) + 0.1
    assert haversine_km(smoothed[2].best.lat, smoothed[2].best.lon, *CITIES["lund"]) < 50
    assert smoothed[2].cell_probs is not None
    np.testing.assert_allclose(smoothed[2].cell_probs.sum(), 1.0)


def street_world(n: int, seed: int, noise: float = 0.6, dim: int = 32):
    """Photos along a 3 km walk; descriptors a smooth function of the position plus noise
    (the function is the same for every seed: one world, different photos)."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 3.0, n)  # km along the walk
    lat = 55.70 + t / 111.0
    lon = 13.19 + 0.002 * np.sin(t * 3)
    freq = np.random.default_rng(99).normal(0, 4.0, dim)
    phase = np.random.default_rng(98).uniform(0, 2 * np.pi, dim)
    X = np.cos(t[:, None] * freq[None] + phase[None]) + noise * rng.normal(size=(n, dim))
    return lat, lon, X.astype(np.float32)


def test_a_mode_states_the_mass_inside_its_disc():
    """Uncalibrated, a mode's probability is the density's mass inside its stated disc."""
    lat, lon, X = street_world(8, 0)
    geo = Geolocator(k=5, holdout=0.25).fit(X, lat, lon)
    assert not geo.calibrated  # 8 photos: too few to calibrate, and it says so
    _, _, Q = street_world(5, 3)
    for pred in geo.predict_proba(Q):
        s_lat, s_lon = pred.density.sample(20000, np.random.default_rng(7))  # independent draw
        for m in pred.modes:
            inside = haversine_km(s_lat, s_lon, m.lat, m.lon) <= m.radius_km
            assert m.probability == pytest.approx(min(inside.mean(), 0.99), abs=0.03)
            assert m.probability <= 0.99  # never certain


def test_small_collection_is_calibrated_by_leave_one_out_and_holds_on_new_photos():
    lat, lon, X = street_world(30, 0)
    geo = Geolocator(k=10, holdout=0.25).fit(X, lat, lon)
    assert geo.calibrated and geo.calibration_count_ == 30  # every photo, each held out
    ql, qo, Q = street_world(300, 1)
    preds = geo.predict_proba(Q)
    stated = np.array([p.best.probability for p in preds])
    hit = np.array(
        [
            haversine_km(p.best.lat, p.best.lon, a, b) <= p.best.radius_km
            for p, a, b in zip(preds, ql, qo, strict=True)
        ]
    )
    assert stated.max() <= 31 / 32  # (n + 1) / (n + 2): 30 hits are not certainty
    assert abs(stated.mean() - hit.mean()) <= 0.08
    levels = np.array([p.credible_level(a, b) for p, a, b in zip(preds, ql, qo, strict=True)])
    assert abs((levels <= 0.5).mean() - 0.5) <= 0.1
    assert abs((levels <= 0.9).mean() - 0.9) <= 0.08


def test_verified_probability_by_hand():
    from placeprint.geo.verified import verified_probability

    assert verified_probability(14) == 0.0  # below min_inliers: no verification
    assert verified_probability(15) == pytest.approx(0.8)
    assert verified_probability(25) == pytest.approx(0.9)
    assert verified_probability(35) == pytest.approx(0.95)
    assert verified_probability(10_000) == 0.999  # never certainty


def test_a_verified_position_takes_its_mass_and_leads_the_answer():
    from placeprint.geo.verified import Evidence

    lat, lon, X = street_world(30, 0)
    geo = Geolocator(k=10, holdout=0.25).fit(X, lat, lon)
    _, _, Q = street_world(1, 5)
    pred = geo.predict_proba(Q)[0]
    # verification found the photo 1.5 km from where retrieval put it
    far = pred.best.lat + 1.5 / 111.0
    ev = Evidence(True, 60, far, pred.best.lon, 0.015, 0.97, [0, 1], 10, 0.1)
    out = geo.with_verified_kernel(pred, ev)
    best = out.best
    assert best.verified and best.inliers == 60
    assert haversine_km(best.lat, best.lon, far, pred.best.lon) < 0.02
    # what it states is the mass inside its disc (independent draw), and about the verified mass
    s_lat, s_lon = out.density.sample(40000, np.random.default_rng(3))
    inside = haversine_km(s_lat, s_lon, best.lat, best.lon) <= best.radius_km
    assert best.probability == pytest.approx(inside.mean(), abs=0.02)
    # the disc holds 90 % of the mode's own mass, nearly all of it the verified kernel's
    assert 0.9 * 0.97 - 0.03 <= best.probability <= 0.999
    assert sum(m.probability for m in out.modes) <= 1.0 + 1e-9
    assert out.components["verified"] == 0.97
    assert not any(m.verified for m in out.modes[1:])


def mixed_world(n: int, seed: int):
    """The street world with a hard half: those photos' descriptors are mostly noise."""
    lat, lon, X = street_world(n, seed, noise=0.3)
    hard = np.random.default_rng(seed + 50).random(n) < 0.5
    X[hard] += 2.0 * np.random.default_rng(seed + 60).normal(size=(int(hard.sum()), X.shape[1]))
    return lat, lon, X, hard


class HardPhotosFail:
    """A stand-in verifier: easy photos verify at their own position, hard ones do not."""

    def __init__(self, lat, lon, hard):
        self.lat, self.lon, self.hard = lat, lon, hard

    def image_of_row(self, row):
        return None  # no photo: the check below decides by row

    def check(self, image, pred, in_collection=False):
        from placeprint.geo.verified import Evidence

        r = self.row
        if self.hard[r]:
            return Evidence(False)
        return Evidence(True, 40, self.lat[r], self.lon[r], 0.02, 0.95, [int(r)], 10, 0.0)


def test_answers_that_fail_verification_are_calibrated_on_photos_that_failed(tmp_path):
    lat, lon, X, hard = mixed_world(100, 0)
    geo = Geolocator(k=10, holdout=0.25).fit(X, lat, lon)
    fake = HardPhotosFail(lat, lon, hard)
    held = geo._held_out_predictions
    expect = []

    def spying(rows):  # the fake verifier learns which row it checks
        for r, pred in held(rows):
            fake.row = r
            if hard[r]:
                expect.append(pred.density.credible_level([lat[r]], [lon[r]])[0])
            yield r, pred

    geo._held_out_predictions = spying
    assert geo.calibrate_verified(fake) == int((~hard).sum())
    del geo._held_out_predictions
    np.testing.assert_array_equal(geo.failed_level_table_, np.sort(expect))  # by hand
    # on new hard photos, the failed-verification calibration holds its stated levels
    # better than the calibration of all photos, which the easy half makes too confident
    ql, qo, Q, q_hard = mixed_world(400, 1)
    preds = [p for p, h in zip(geo.predict_proba(Q), q_hard, strict=True) if h]
    truth = [(a, b) for a, b, h in zip(ql, qo, q_hard, strict=True) if h]
    plain = np.array([p.credible_level(a, b) for p, (a, b) in zip(preds, truth, strict=True)])
    failed = np.array(
        [geo.with_failed_verification(p).credible_level(a, b)
         for p, (a, b) in zip(preds, truth, strict=True)]
    )  # fmt: skip
    n_failed = int(hard.sum())
    assert geo.calibration_of(geo.with_failed_verification(preds[0])) == {
        "answers": "failed verification", "photos": n_failed}  # fmt: skip
    assert geo.calibration_of(preds[0]) == {"answers": "all", "photos": 100}
    for q in (0.5, 0.9):
        assert abs((failed <= q).mean() - q) < abs((plain <= q).mean() - q)
        assert abs((failed <= q).mean() - q) <= 0.12  # measured 0.06 and 0.10
    # saved and loaded with the rest
    geo.save(tmp_path / "g.geo")
    back = Geolocator.load(tmp_path / "g.geo")
    np.testing.assert_array_equal(back.failed_level_table_, geo.failed_level_table_)
    np.testing.assert_array_equal(back.failed_y_, geo.failed_y_)


def test_calibrating_with_a_progress_bar_learns_the_same_tables():
    lat, lon, X, hard = mixed_world(60, 2)
    tables = []
    for progress in (False, True):
        geo = Geolocator(k=10, holdout=0.25).fit(X, lat, lon)
        fake = HardPhotosFail(lat, lon, hard)
        held = geo._held_out_predictions

        def spying(rows, held=held, fake=fake):
            for r, pred in held(rows):
                fake.row = r
                yield r, pred

        geo._held_out_predictions = spying
        n = geo.calibrate_verified(fake, progress=progress)
        tables.append((n, geo.verified_level_table_.copy(), geo.failed_level_table_.copy()))
    assert tables[0][0] == tables[1][0] == int((~hard).sum())
    np.testing.assert_array_equal(tables[0][1], tables[1][1])
    np.testing.assert_array_equal(tables[0][2], tables[1][2])

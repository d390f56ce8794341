"""Verification beyond the voters: the geolocator's shortlist and the verifier's rounds."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from placeprint.errors import PlaceprintError
from placeprint.geo.geolocator import Geolocator
from placeprint.geo.verified import AnswerVerifier


def walk(n: int, seed: int, dim: int = 16):
    """Photos along a 3 km walk, descriptors a smooth function of the position plus noise."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 3.0, n)
    freq = np.random.default_rng(99).normal(0, 4.0, dim)
    X = np.cos(t[:, None] * freq[None]) + 0.6 * rng.normal(size=(n, dim))
    return 55.70 + t / 111.0, 13.19 + 0.0 * t, X.astype(np.float32)


def nearest_rows(X_db: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Brute force: database rows by squared distance to ``x``, nearest first."""
    return np.argsort(((X_db.astype(float) - x.astype(float)) ** 2).sum(1), kind="stable")


def test_a_prediction_carries_the_shortlist_and_votes_with_the_first_k():
    lat, lon, X = walk(80, 0)
    _, _, Q = walk(3, 1)
    geo = Geolocator(k=10, holdout=0.25, shortlist=30).fit(X, lat, lon)
    plain = Geolocator(k=10, holdout=0.25).fit(X, lat, lon)
    for q, pred, base in zip(Q, geo.predict_proba(Q), plain.predict_proba(Q), strict=True):
        truth = nearest_rows(X, q)
        np.testing.assert_array_equal(pred.shortlist, truth[:30])
        np.testing.assert_array_equal(pred.neighbours, truth[:10])
        np.testing.assert_array_equal(base.shortlist, truth[:10])  # no longer than the voters
        # the density is the voters' alone: the same answer as without a shortlist
        assert pred.best.lat == pytest.approx(base.best.lat)
        assert pred.best.probability == pytest.approx(base.best.probability)


def test_held_out_shortlists_leave_the_photo_itself_out():
    lat, lon, X = walk(60, 2)
    geo = Geolocator(k=8, holdout=0.25, shortlist=20).fit(X, lat, lon)
    rows = np.array([0, 7, 33])
    for r, pred in geo._held_out_predictions(rows):
        others = [int(j) for j in nearest_rows(X, X[r]) if j != r]
        np.testing.assert_array_equal(pred.shortlist, others[:20])


def test_the_shortlist_is_saved_with_the_geolocator(tmp_path):
    lat, lon, X = walk(40, 3)
    geo = Geolocator(k=5, holdout=0.25, shortlist=12).fit(X, lat, lon)
    geo.save(tmp_path / "g.geo")
    back = Geolocator.load(tmp_path / "g.geo")
    assert back.shortlist == 12
    assert len(back.predict_proba(X[:1])[0].shortlist) == 12
    with pytest.raises(PlaceprintError, match="shortlist"):
        Geolocator(shortlist=-1)


class CountingReranker:
    """A stand-in for the geometric check: inliers by database photo, calls counted."""

    def __init__(self, inliers: dict[str, int]):
        self.inliers = inliers
        self.checked: list[str] = []

    def features(self, image):
        return SimpleNamespace(path=str(image))

    def verify(self, query, db):
        self.checked.append(db.path)
        return SimpleNamespace(inliers=self.inliers.get(db.path, 0))


def verifier_over(geo, inliers: dict[int, int], **options) -> tuple[AnswerVerifier, list[str]]:
    """An AnswerVerifier of ``geo`` whose pairs have the given inliers by database row."""
    paths = [f"db/{r}.jpg" for r in range(len(geo.lat_))]
    ver = AnswerVerifier(geo, lambda r: paths[r], **options)
    fake = CountingReranker({paths[r]: n for r, n in inliers.items()})
    ver.reranker = fake
    ver.cache = lambda key: fake.features(key)
    return ver, fake.checked


def test_candidates_are_the_voters_by_weight_then_the_shortlist():
    ver = AnswerVerifier.__new__(AnswerVerifier)  # only candidates() is exercised
    ver.top = 6
    pred = SimpleNamespace(
        neighbours=np.array([4, 9, 2]),
        neighbour_weights=np.array([0.2, 0.5, 0.3]),
        shortlist=np.array([4, 2, 9, 7, 2, 1, 8, 5]),
    )
    assert ver.candidates(pred) == [9, 2, 4, 7, 1, 8]
    ver.top = 2
    assert ver.candidates(pred) == [9, 2]


def test_a_strong_verification_in_the_first_round_ends_the_search():
    lat, lon, X = walk(120, 4)
    geo = Geolocator(k=10, holdout=0.25, shortlist=60).fit(X, lat, lon)
    pred = geo.predict_proba(X[5:6] + 0.01)[0]
    order = [int(r) for r in pred.neighbours[np.argsort(-pred.neighbour_weights, kind="stable")]]
    deep = [int(r) for r in pred.shortlist if int(r) not in order]
    # settled: a voter verifies with 70 inliers, so the deeper rows are never looked at
    ver, checked = verifier_over(geo, {order[3]: 70, deep[30]: 200}, top=60, round_size=10)
    ev = ver.check("query.jpg", pred)
    assert ev.verified and ev.inliers == 70 and ev.checked == 10 and len(checked) == 10
    assert ev.rows == [order[3]]
    # not settled: the first verification is weak (20), so rounds go on until one settles
    ver, checked = verifier_over(geo, {order[3]: 20, deep[25]: 90}, top=60, round_size=10)
    ev = ver.check("query.jpg", pred)
    assert ev.checked == len(checked) == 40  # 10 voters + three rounds of the shortlist
    assert ev.verified and ev.inliers == 90
    assert order[3] in ev.rows or deep[25] in ev.rows
    # nothing strong anywhere: every candidate up to top is checked, the best kept
    ver, checked = verifier_over(geo, {deep[40]: 30}, top=60, round_size=10)
    ev = ver.check("query.jpg", pred)
    assert ev.checked == len(checked) == 60 and ev.verified and ev.inliers == 30
    # top bounds the depth; rows below min_inliers count as nothing
    ver, checked = verifier_over(geo, {deep[40]: 30, order[0]: 14}, top=25, round_size=10)
    ev = ver.check("query.jpg", pred)
    assert ev.checked == 25 and not ev.verified and ev.inliers == 0


def test_rounds_are_checked_options():
    lat, lon, X = walk(20, 5)
    geo = Geolocator(k=5, holdout=0.25).fit(X, lat, lon)
    with pytest.raises(PlaceprintError, match="round_size"):
        AnswerVerifier(geo, lambda r: None, round_size=0)
    with pytest.raises(PlaceprintError, match="settle_inliers"):
        AnswerVerifier(geo, lambda r: None, min_inliers=15, settle_inliers=10)


def test_the_verified_position_is_the_weighted_mean_of_the_verified_photos_near_the_best():
    from placeprint.geo.distance import haversine_km
    from placeprint.geo.verified import GPS_KM, VIEW_KM, verified_probability

    lat, lon, X = walk(60, 6)
    geo = Geolocator(k=10, holdout=0.25, shortlist=10).fit(X, lat, lon)
    pred = geo.predict_proba(X[3:4] + 0.01)[0]
    rows = [int(r) for r in pred.neighbours]
    found = {rows[0]: 40, rows[1]: 20, rows[2]: 16, rows[3]: 10}  # the last is below 15
    ver, _ = verifier_over(geo, found, top=10, cluster_km=0.2)
    ev = ver.check("query.jpg", pred)
    best = rows[0]
    near = [r for r in rows[:3] if haversine_km(lat[r], lon[r], lat[best], lon[best]) <= 0.2]
    w = np.array([found[r] for r in near], float)  # inlier-weighted
    c_lat, c_lon = np.average(lat[near], weights=w), np.average(lon[near], weights=w)
    d = haversine_km(lat[near], lon[near], c_lat, c_lon)
    spread = np.sqrt(np.average(d**2, weights=w) + GPS_KM**2 + VIEW_KM**2)
    assert ev.verified and ev.inliers == 40 and sorted(ev.rows) == sorted(near)
    assert ev.lat == pytest.approx(c_lat) and ev.lon == pytest.approx(c_lon)
    assert ev.spread_km == pytest.approx(spread)
    assert ev.mass == pytest.approx(verified_probability(40))

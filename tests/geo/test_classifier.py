"""Cell classifier: numpy prediction equals scikit-learn's, floors, state round trip."""

import numpy as np
import pytest

from placeprint.errors import PlaceprintError
from placeprint.geo.classifier import CellClassifier
from placeprint.geo.world import split_world


def _blobs(n_per=60, n_classes=5, d=8, seed=0, spread=1.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 6, (n_classes, d))
    X = np.concatenate([c + spread * rng.normal(size=(n_per, d)) for c in centres])
    return X, np.repeat(np.arange(n_classes), n_per), centres


def _log_loss(p, y):
    return -np.mean(np.log(p[np.arange(len(y)), y]))


@pytest.mark.parametrize("hidden", [None, 16])
def test_separable_blobs_and_numpy_matches_sklearn(hidden):
    X, y, centres = _blobs()
    clf = CellClassifier(hidden=hidden).fit(X, y, n_cells=5)
    Xt, yt, _ = _blobs(seed=0)
    rng = np.random.default_rng(1)
    Xt = centres[yt] + rng.normal(size=Xt.shape)  # fresh test points from the same blobs
    assert np.mean(clf.predict(Xt) == yt) > 0.95
    proba = clf.predict_proba(Xt)
    assert proba.dtype == np.float64 and proba.shape == (len(Xt), 5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    reference = clf.model_.predict_proba((Xt - clf.mean_) / clf.scale_)
    np.testing.assert_allclose(proba, reference, atol=1e-6)


@pytest.mark.parametrize("hidden", [None, 8])
def test_binary_case_matches_sklearn(hidden):
    X, y, _ = _blobs(n_classes=2, spread=4.0)
    clf = CellClassifier(hidden=hidden).fit(X, y, n_cells=2)
    reference = clf.model_.predict_proba((X - clf.mean_) / clf.scale_)
    np.testing.assert_allclose(clf.predict_proba(X), reference, atol=1e-6)


def test_unseen_cells_get_exactly_the_floor():
    X, y, _ = _blobs(n_classes=3)
    cells = np.array([1, 4, 6])[y]  # cells 0, 2, 3, 5, 7 never seen
    clf = CellClassifier(floor=1e-4).fit(X, cells, n_cells=8)
    p = clf.predict_proba(X[:20])
    unseen = [0, 2, 3, 5, 7]
    assert np.all(p[:, unseen] == 1e-4)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    reference = clf.model_.predict_proba((X[:20] - clf.mean_) / clf.scale_)
    np.testing.assert_allclose(p[:, [1, 4, 6]], reference * (1 - 5e-4), atol=1e-6)
    assert set(clf.predict(X)) <= {1, 4, 6}


@pytest.mark.parametrize("hidden", [None, 12])
def test_state_round_trip_without_pickle(hidden):
    X, y, _ = _blobs(n_classes=4)
    clf = CellClassifier(hidden=hidden, floor=1e-5).fit(X, y * 2, n_cells=9)
    arrays = clf.state()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in arrays.values())
    again = CellClassifier.from_state(arrays, clf.get_params())
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    assert again.model_ is None
    broken = dict(arrays)
    del broken["w0"]
    with pytest.raises(PlaceprintError):
        CellClassifier.from_state(broken, clf.get_params())


def test_bad_input_is_rejected():
    X, y, _ = _blobs(n_classes=3)
    clf = CellClassifier()
    with pytest.raises(PlaceprintError):
        clf.predict_proba(X)  # not fitted
    with pytest.raises(PlaceprintError):
        clf.fit(X, y, n_cells=2)  # label 2 out of range
    with pytest.raises(PlaceprintError):
        clf.fit(X, y[:-1], n_cells=3)
    with pytest.raises(PlaceprintError):
        clf.fit(X, y.astype(float), n_cells=3)
    with pytest.raises(PlaceprintError):
        clf.fit(X, np.zeros(len(X), dtype=int), n_cells=3)  # one cell only
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(PlaceprintError):
        clf.fit(bad, y, n_cells=3)
    clf.fit(X, y, n_cells=3)
    with pytest.raises(PlaceprintError):
        clf.predict(X[:, :4])
    with pytest.raises(PlaceprintError):
        CellClassifier(l2=0).fit(X, y, n_cells=3)


def test_simulated_world_beats_the_prior():
    # cells: 30 x 30 degree lat/lon bins on the held-out-query protocol of split_world
    rng = np.random.default_rng(0)
    lat = np.degrees(np.arcsin(rng.uniform(-0.9, 0.9, 4000)))
    lon = rng.uniform(-180, 180, 4000)
    db, q = split_world(2000, 800, dim=32, signal=1.0, noise=0.5, lat=lat, lon=lon, seed=3)

    def cell(w):
        return (np.floor((w.lat + 90) / 30) * 12 + np.floor((w.lon + 180) / 30)).astype(int)

    n_cells = 6 * 12
    clf = CellClassifier(l2=1e-3).fit(db.descriptors, cell(db), n_cells=n_cells)
    prior = np.bincount(cell(db), minlength=n_cells) + 1.0  # add-one smoothed frequencies
    prior_p = np.tile(prior / prior.sum(), (len(q), 1))
    yq = cell(q)
    assert _log_loss(clf.predict_proba(q.descriptors), yq) < _log_loss(prior_p, yq) - 0.5
    assert np.mean(clf.predict(q.descriptors) == yq) > 2 * np.mean(prior.argmax() == yq)

"""Geolocation metrics against hand-computed values."""

import numpy as np
import pytest

from placeprint.errors import PlaceprintError
from placeprint.geo.metrics import (
    THRESHOLDS_KM,
    accuracy_at,
    calibration,
    discrete_credible_level,
    geolocation_errors_km,
    summarise,
)

ERRORS = np.array([0.5, 10.0, 100.0, 1000.0, 5000.0])


def test_thresholds_are_the_im2gps_scales():
    assert THRESHOLDS_KM == {
        "street": 1.0,
        "city": 25.0,
        "region": 200.0,
        "country": 750.0,
        "continent": 2500.0,
    }


def test_accuracy_hand_computed():
    acc = accuracy_at(ERRORS)
    assert acc == {"street": 0.2, "city": 0.4, "region": 0.6, "country": 0.6, "continent": 0.8}
    # the threshold itself counts as correct (<=)
    assert accuracy_at([25.0, 25.0001], {"city": 25.0}) == {"city": 0.5}


def test_errors_known_geometry():
    # a quarter of the equator, one degree of latitude, and a zero error
    err = geolocation_errors_km([0.0, 1.0, 48.0], [90.0, 5.0, 2.0], [0.0, 0.0, 48.0], [0, 5, 2])
    r = 6371.0088
    np.testing.assert_allclose(err, [np.pi / 2 * r, np.pi / 180 * r, 0.0], rtol=1e-12, atol=1e-9)
    with pytest.raises(PlaceprintError):
        geolocation_errors_km([0.0, 1.0], [0.0, 1.0], [0.0], [0.0])
    with pytest.raises(PlaceprintError):
        geolocation_errors_km([95.0], [0.0], [0.0], [0.0])
    with pytest.raises(PlaceprintError):
        accuracy_at([1.0, np.nan])


def test_calibration_shares():
    levels = np.array([0.1, 0.5, 0.6, 0.9, 0.95, 1.0, 0.3, 0.85])
    # <= 0.5: 0.1, 0.5, 0.3 -> 3/8 ; <= 0.9: all but 0.95, 1.0 -> 6/8
    assert calibration(levels) == {"0.5": 3 / 8, "0.9": 6 / 8}
    assert calibration(levels, ps=(0.25, 1.0)) == {"0.25": 1 / 8, "1": 1.0}
    with pytest.raises(PlaceprintError):
        calibration([1.5])


def test_discrete_credible_level_three_cells():
    probs = np.array([[0.5, 0.3, 0.2]] * 3 + [[0.4, 0.4, 0.2], [0.2, 0.4, 0.4], [0.5, 0.3, 0.2]])
    true = np.array([0, 1, 2, 0, 0, -1])
    level = discrete_credible_level(probs, true)
    # most probable cell: its own mass; second: 0.5 + 0.3; least: everything
    # tie of 0.4 and 0.4: 0.4 + half the other 0.4; lowest cell under a tie above: 0.2+0.8
    np.testing.assert_allclose(level, [0.5, 0.8, 1.0, 0.6, 1.0, 1.0], atol=1e-12)
    # three-way tie: own third plus half of the other two thirds = 2/3
    uniform = np.full((1, 3), 1 / 3)
    np.testing.assert_allclose(discrete_credible_level(uniform, np.array([1])), [2 / 3])
    with pytest.raises(PlaceprintError):
        discrete_credible_level(probs, np.array([0, 1, 2, 3, 0, 0]))


def test_discrete_credible_level_matches_brute_force_with_ties():
    # brute force: walk cells in decreasing probability; a tie block is entered as a whole,
    # and the true cell sits, on average, in the middle of the other tied cells
    rng = np.random.default_rng(0)
    probs = rng.integers(1, 5, size=(200, 6)).astype(float)  # many exact ties
    probs /= probs.sum(axis=1, keepdims=True)
    true = rng.integers(0, 6, size=200)
    expected = []
    for row, t in zip(probs, true, strict=True):
        above = sum(p for p in row if p > row[t])
        others_tied = sum(p for i, p in enumerate(row) if p == row[t] and i != t)
        expected.append(above + row[t] + others_tied / 2)
    np.testing.assert_allclose(discrete_credible_level(probs, true), expected, atol=1e-12)


def test_summarise():
    out = summarise(ERRORS, levels=[0.1, 0.2, 0.6, 0.95, 1.0])
    assert out["n"] == 5
    assert out["median_km"] == 100.0
    assert out["mean_km"] == pytest.approx((0.5 + 10 + 100 + 1000 + 5000) / 5)
    assert out["accuracy"]["city"] == 0.4
    assert out["calibration"] == {"0.5": 0.4, "0.9": 0.6}
    assert "calibration" not in summarise(ERRORS)
    with pytest.raises(PlaceprintError):
        summarise(ERRORS, levels=[0.1])

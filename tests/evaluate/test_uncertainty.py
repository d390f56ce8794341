"""The paired bootstrap interval of a gain, against the normal approximation."""

import numpy as np
import pytest

from placeprint.errors import PlaceprintError
from placeprint.evaluate.uncertainty import paired_gain_interval


def test_interval_matches_the_normal_approximation_of_paired_differences():
    rng = np.random.default_rng(3)
    before = (rng.random(2000) < 0.2).astype(float)
    after = before.copy()
    after[rng.random(2000) < 0.15] = 1.0  # some queries gained
    after[rng.random(2000) < 0.03] = 0.0  # a few lost
    d = after - before
    half = 1.96 * d.std(ddof=1) / np.sqrt(len(d))
    low, high = paired_gain_interval(after, before)
    assert low == pytest.approx(d.mean() - half, abs=0.006)
    assert high == pytest.approx(d.mean() + half, abs=0.006)


def test_pairing_keeps_shared_outcomes_out_of_the_interval():
    rng = np.random.default_rng(4)
    before = (rng.random(300) < 0.5).astype(float)
    after = before.copy()
    after[np.flatnonzero(before == 0)[:15]] = 1.0  # exactly 15 of 300 queries gained
    low, high = paired_gain_interval(after, before)
    assert 0 < low < 0.05 < high < 0.1  # unpaired, two 50 % rates would span about +-0.08
    assert paired_gain_interval(before, before) == (0.0, 0.0)


def test_bad_input():
    with pytest.raises(PlaceprintError, match="equal"):
        paired_gain_interval(np.ones(3), np.ones(4))
    with pytest.raises(PlaceprintError, match="confidence"):
        paired_gain_interval(np.ones(3), np.zeros(3), confidence=1.5)

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


def test_groups_widen_the_interval_by_how_alike_their_queries_are():
    rng = np.random.default_rng(5)
    group_gain = rng.normal(0.05, 0.2, 100)  # 100 stretches of 20 frames, each all-alike
    groups = np.repeat(np.arange(100), 20)
    after, before = group_gain[groups], np.zeros(2000)
    half = 1.96 * group_gain.std(ddof=1) / np.sqrt(100)  # 100 samples, not 2,000
    low, high = paired_gain_interval(after, before, groups=groups)
    assert low == pytest.approx(group_gain.mean() - half, abs=0.01)
    assert high == pytest.approx(group_gain.mean() + half, abs=0.01)
    narrow = paired_gain_interval(after, before)  # as if 2,000 independent queries
    assert (narrow[1] - narrow[0]) < 0.5 * (high - low)


def test_bad_input():
    with pytest.raises(PlaceprintError, match="equal"):
        paired_gain_interval(np.ones(3), np.ones(4))
    with pytest.raises(PlaceprintError, match="confidence"):
        paired_gain_interval(np.ones(3), np.zeros(3), confidence=1.5)
    with pytest.raises(PlaceprintError, match="two groups"):
        paired_gain_interval(np.ones(3), np.zeros(3), groups=np.zeros(3))
    with pytest.raises(PlaceprintError, match="a group per score"):
        paired_gain_interval(np.ones(3), np.zeros(3), groups=np.zeros(2))

"""The rows a codec is fitted on: all of a small database, an even sample of a large one."""

import numpy as np
import pytest

from placeprint.codec import CoarseCodec
from placeprint.codec.sample import fit_on_sample, fit_rows
from placeprint.errors import PlaceprintError


def test_rows_by_hand():
    np.testing.assert_array_equal(fit_rows(3, 5), [0, 1, 2])
    np.testing.assert_array_equal(fit_rows(5, 5), [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(fit_rows(10, 4), [0, 2, 5, 7])  # floor(i * 10 / 4)
    np.testing.assert_array_equal(fit_rows(1_000_000, 3), [0, 333_333, 666_666])
    with pytest.raises(PlaceprintError):
        fit_rows(10, 0)


def test_a_small_database_fits_exactly_as_before():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 32)).astype(np.float32)
    P = X[:200] + 0.1 * rng.normal(size=(200, 32)).astype(np.float32)
    for paired in (None, P):
        a = fit_on_sample(CoarseCodec(code_size=2), X, paired)
        b = CoarseCodec(code_size=2).fit(X, paired=paired)
        np.testing.assert_array_equal(a.encode(X), b.encode(X))
        np.testing.assert_array_equal(a.projection_, b.projection_)


def test_a_large_database_fits_on_the_sample_and_its_pairs():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 32)).astype(np.float32)
    P = X[:250] + 0.1 * rng.normal(size=(250, 32)).astype(np.float32)
    rows = fit_rows(400, 100)  # every 4th row; rows < 250 have a pair
    a = fit_on_sample(CoarseCodec(code_size=2), X, P, limit=100)
    with_pair = np.flatnonzero(rows < 250)
    assert len(with_pair) == 63  # rows 0, 4, ..., 248
    b = CoarseCodec(code_size=2).fit(X[rows], paired=P[rows[with_pair]], paired_rows=with_pair)
    np.testing.assert_array_equal(a.thresholds_, b.thresholds_)
    np.testing.assert_array_equal(a.encode(X), b.encode(X))
    whole = CoarseCodec(code_size=2).fit(X, paired=P)
    assert not np.array_equal(a.thresholds_, whole.thresholds_)  # the sample is what it saw

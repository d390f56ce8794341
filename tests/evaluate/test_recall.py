"""Recall metrics on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from placeprint.errors import PlaceprintError
from placeprint.evaluate import recall
from placeprint.evaluate.recall import distinct_top, query_ends, recall_at


def test_public_names() -> None:
    for name in ("query_ends", "distinct_top", "recall_at", "TOLERANCE", "MIN_SEPARATION"):
        assert hasattr(recall, name), name
    assert recall.TOLERANCE == 2 and recall.MIN_SEPARATION == 5


def test_query_ends() -> None:
    assert query_ends(10, 1).tolist() == list(range(10))
    assert query_ends(10, 4).tolist() == [3, 4, 5, 6, 7, 8, 9]
    assert query_ends(10, 4, stride=3).tolist() == [3, 6, 9]
    assert query_ends(3, 4).size == 0
    assert query_ends(10, 4).dtype == np.int64
    with pytest.raises(PlaceprintError):
        query_ends(10, 0)
    with pytest.raises(PlaceprintError):
        query_ends(10, 2, stride=0)


def test_distinct_top_hand_case() -> None:
    positions = np.array([10, 11, 30, 12, 50, 31])
    scores = np.array([0.1, 0.2, 0.3, 0.05, 0.9, 0.15])
    # by score: 12, 10 (2 from 12: not distinct), 31, 11 (skip), 30 (skip), 50
    assert distinct_top(positions, scores, 3).tolist() == [3, 5, 4]
    assert distinct_top(positions, scores, 10).tolist() == [3, 5, 4]
    assert distinct_top(positions, scores, 3, min_separation=2).tolist() == [3, 0, 5]
    # exactly min_separation apart counts as distinct
    assert distinct_top(np.array([0, 5]), np.array([1.0, 2.0]), 2).tolist() == [0, 1]
    assert distinct_top(np.array([0, 4]), np.array([1.0, 2.0]), 2).tolist() == [0]


def test_distinct_top_ties_nan_and_empty() -> None:
    assert distinct_top(np.array([40, 20]), np.array([1.0, 1.0]), 2).tolist() == [1, 0]
    assert distinct_top(np.array([1, 20]), np.array([np.nan, 5.0]), 1).tolist() == [1]
    assert distinct_top(np.array([], int), np.array([]), 3).size == 0
    assert distinct_top(np.array([1]), np.array([1.0]), 0).size == 0
    with pytest.raises(PlaceprintError):
        distinct_top(np.array([1, 2]), np.array([1.0]), 1)


def _reference_distinct(positions, scores, k, sep):
    order = sorted(range(len(positions)), key=lambda i: (scores[i], positions[i]))
    taken = []
    for i in order:
        if all(abs(positions[i] - positions[j]) >= sep for j in taken):
            taken.append(i)
    return taken[:k]


@pytest.mark.parametrize("unique", [True, False])
def test_distinct_top_matches_reference(unique: bool) -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        n = 400
        positions = rng.permutation(1000)[:n] if unique else rng.integers(0, 60, n)
        scores = np.round(rng.normal(size=n), 1)  # many ties
        for k in (1, 3, 8):
            got = distinct_top(positions, scores, k, 5)
            ref = _reference_distinct(positions, scores, k, 5)
            # duplicated (position, score) pairs may come back as either copy
            assert positions[got].tolist() == positions[ref].tolist()
            assert scores[got].tolist() == scores[ref].tolist()


def test_recall_at_hand_case() -> None:
    truth = np.array([100, 200, 300, 400])
    predicted = np.array(
        [
            [102, 0, 0],  # R@1 (within 2)
            [197, 201, 0],  # 3 off, then correct: R@2
            [0, 0, 303],  # 3 off: never
            [-1, -1, -1],  # no answer
        ]
    )
    assert recall_at(predicted, truth, ks=(1, 2, 3)) == {1: 0.25, 2: 0.5, 3: 0.5}
    assert recall_at(predicted, truth, ks=(1, 3), tolerance=3) == {1: 0.5, 3: 0.75}
    assert recall_at(predicted, truth, ks=(10,))[10] == 0.5  # k beyond K uses all K
    assert recall_at(predicted[:, 0], truth, ks=(1,)) == {1: 0.25}  # 1-d = one answer each


def test_recall_at_minus_one_is_never_correct() -> None:
    assert recall_at(np.array([[-1]]), np.array([0]), ks=(1,)) == {1: 0.0}


def test_recall_at_errors() -> None:
    with pytest.raises(PlaceprintError):
        recall_at(np.zeros((3, 2), int), np.zeros(2, int))
    with pytest.raises(PlaceprintError):
        recall_at(np.zeros((2, 2), int), np.zeros(2, int), ks=(0,))
    assert np.isnan(recall_at(np.zeros((0, 2), int), np.zeros(0, int))[1])

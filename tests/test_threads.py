"""ordered_map: results in input order, a bounded number ahead, errors where they belong."""

import threading
import time

import pytest

from placeprint.threads import ordered_map


def test_results_come_in_input_order_whatever_order_they_finish_in():
    def slow_first(i):
        time.sleep(0.02 * (5 - i % 5))  # later items finish sooner
        return i * i

    for workers in (1, 3):
        assert list(ordered_map(slow_first, range(12), workers)) == [i * i for i in range(12)]


def test_at_most_ahead_times_workers_results_wait_unread():
    started, lock = [], threading.Lock()

    def note(i):
        with lock:
            started.append(i)
        return i

    results = ordered_map(note, range(100), workers=2, ahead=2)
    assert next(results) == 0
    time.sleep(0.1)  # the pool would run on if it could
    assert len(started) <= 2 * 2 + 1
    assert list(results) == list(range(1, 100))


def test_an_error_is_raised_at_its_item_and_the_rest_not_started():
    started = []

    def fail_at_3(i):
        started.append(i)
        if i == 3:
            raise ValueError("item 3")
        time.sleep(0.01)
        return i

    got = []
    with pytest.raises(ValueError, match="item 3"):
        for value in ordered_map(fail_at_3, range(1000), workers=2, ahead=2):
            got.append(value)
    assert got == [0, 1, 2] and len(started) < 20

"""Nordland's file pairing and dark frames, on a tiny made-up copy."""

import os

import numpy as np
from PIL import Image

from placeprint.datasets.nordland import load_nordland, mean_intensity


def _frame(path, level: int) -> None:
    Image.fromarray(np.full((32, 64), level, np.uint8)).convert("RGB").save(path)


def test_dark_frames_and_a_changed_file_is_read_again(tmp_path):
    for season in ("summer", "winter"):
        (tmp_path / season).mkdir()
    levels = {"summer": [10, 100, 200], "winter": [100, 20, 200]}
    for season, values in levels.items():
        for i, v in enumerate(values):
            _frame(tmp_path / season / f"images-{(i + 1) * 10:05d}.png", v)
    nl = load_nordland(tmp_path)
    assert nl.frames.tolist() == [10, 20, 30]
    # dark in either season: frame 10 (summer 10), frame 20 (winter 20)
    assert nl.dark_mask().tolist() == [True, True, False]
    assert nl.dark_mask(threshold=5).tolist() == [False, False, False]
    # remembered per file, but a rewritten file is measured again
    path = nl.summer[2]
    assert mean_intensity(path) == 200.0
    _frame(path, 3)
    os.utime(path, ns=(1, 1))  # a new modification time even on a coarse clock
    assert mean_intensity(path) == 3.0
    assert nl.dark_mask().tolist() == [True, True, True]

"""The mid-level benchmark: Nordland's test split and tuning folds by hand, and a small
run of every combiner on the synthetic style label."""

import json

import numpy as np
import pytest

from placeprint.errors import PlaceprintError
from placeprint.evaluate.midlevel_bench import (
    ELEMENTS,
    _difference,
    element_settings,
    midlevel_main,
)
from placeprint.midlevel.data import nordland_test_split, tuning_folds
from placeprint.midlevel.elements import ElementSettings

FRAMES = np.concatenate([np.arange(10, 25001, 10.0)] * 2)  # both seasons, as Nordland


def test_test_split_learns_up_to_frame_20000():
    learn, test = nordland_test_split(FRAMES)
    assert learn.sum() == 2 * 2000 and test.sum() == 2 * 500
    assert FRAMES[learn].max() == 20000 and FRAMES[test].min() == 20010


def test_season_folds_hold_out_each_block_of_5000_frames_of_the_learning_stretch():
    folds = tuning_folds("season", FRAMES)
    assert len(folds) == 4
    checked = np.zeros(len(FRAMES), int)
    for k, (learn, check) in enumerate(folds):
        assert not (learn & check).any()
        assert FRAMES[check].min() == 5000 * k + 10 and FRAMES[check].max() == 5000 * (k + 1)
        assert learn.sum() == 2 * 1500 and FRAMES[learn].max() <= 20000
        checked += check
    assert (checked[FRAMES <= 20000] == 1).all() and (checked[FRAMES > 20000] == 0).all()


def test_position_folds_check_the_stretch_after_the_learned_one():
    folds = tuning_folds("position", FRAMES)
    assert [(FRAMES[lr].max(), FRAMES[ch].min(), FRAMES[ch].max()) for lr, ch in folds] == [
        (5000, 5010, 10000),
        (10000, 10010, 15000),
        (15000, 15010, 20000),
    ]
    assert all(FRAMES[lr].min() == 10 for lr, _ in folds)
    with pytest.raises(PlaceprintError, match="no Nordland folds"):
        tuning_folds("style", FRAMES)


def test_each_combiner_gets_its_own_element_counts_unless_given():
    base = ElementSettings(per_bin=25)
    pooled = element_settings(base, "pooled")
    assert (pooled.seeds, pooled.keep, pooled.per_bin) == (*ELEMENTS["pooled"], 25)
    assert (
        element_settings(base, "mean", 30, 5).seeds,
        element_settings(base, "mean", 30, 5).keep,
    ) == (30, 5)


def test_small_tuning_run_scores_every_combiner(tmp_path):
    out = midlevel_main(
        ["--labels", "style", "--style-train", "80", "--style-test", "30", "--seeds", "40",
         "--keep", "6", "--tune", "--quiet", "--json", str(tmp_path / "m.json"),
         "--plots", str(tmp_path / "fig")]
    )  # fmt: skip
    saved = json.loads((tmp_path / "m.json").read_text())
    row = saved["labels"]["style"]
    assert set(row["midlevel_error_by_combiner"]) == {"mean", "stacked", "pooled"}
    assert row["elements"] == 6 and row["folds"] == 1 and row["test_images"] == 30
    for errors in row["midlevel_error_by_fold"].values():
        assert len(errors) == 1 and 0 <= errors[0] <= 1
    assert out["midlevel_error"]["style"] == row["midlevel_error_by_combiner"]["mean"]
    low, high = row["difference_interval"]
    difference = row["midlevel_error_by_combiner"]["mean"] - row["whole_image_error"]
    assert row["difference"] == pytest.approx(difference) and low <= difference <= high
    errors = row["midlevel_error_by_combiner"]
    best = min(errors, key=errors.get)
    shown = _difference(row)
    assert (
        shown.startswith(f"{best} ") and f"{errors[best] - row['whole_image_error']:+.3f}" in shown
    )
    assert (tmp_path / "fig" / "midlevel_style.png").stat().st_size > 1_000
    with pytest.raises(PlaceprintError, match="--labels"):
        midlevel_main(["--labels", "colour"])
    with pytest.raises(PlaceprintError, match="counts"):
        midlevel_main(["--keep", "0"])

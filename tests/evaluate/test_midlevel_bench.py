"""The mid-level benchmark: Nordland's test split and tuning folds by hand, and a small
run of every combiner on the synthetic style label."""

import json

import numpy as np
import pytest

from placeprint.errors import PlaceprintError
from placeprint.evaluate.midlevel_bench import (
    COMBINE,
    ELEMENTS,
    MAX_MEMBERS,
    _difference,
    best_variant,
    element_settings,
    midlevel_main,
    run_label,
    variant_name,
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
    own = COMBINE["style"]  # then scored with 2 to 5 sets of elements
    scored = ["mean", "stacked", "pooled", *(f"{own} x{k}" for k in range(2, MAX_MEMBERS + 1))]
    assert list(row["midlevel_error_by_variant"]) == scored
    assert row["elements"] == 6 and row["folds"] == 1 and row["test_images"] == 30
    for errors in row["midlevel_error_by_fold"].values():
        assert len(errors) == 1 and 0 <= errors[0] <= 1
    assert out["midlevel_error"]["style"] == row["midlevel_error_by_variant"]["mean"]
    low, high = row["difference_interval"]
    difference = row["midlevel_error_by_variant"]["mean"] - row["whole_image_error"]
    assert row["difference"] == pytest.approx(difference) and low <= difference <= high
    errors = row["midlevel_error_by_variant"]
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
    with pytest.raises(PlaceprintError, match="drop --members"):
        midlevel_main(["--tune", "--members", "2"])


def test_best_variant_is_the_lowest_error_and_the_fewest_sets_on_a_tie():
    assert best_variant({"pooled": 0.07, "pooled x2": 0.05, "pooled x3": 0.05}) == "pooled x2"
    assert best_variant({"mean": 0.2, "stacked": 0.1}) == "stacked"
    assert variant_name("pooled", 1) == "pooled" and variant_name("pooled", 3) == "pooled x3"


def test_a_variant_of_k_sets_is_scored_as_the_mean_of_the_first_k_sets():
    from placeprint.midlevel.ensemble import ElementEnsemble

    rng = np.random.default_rng(8)
    P = rng.normal(size=(60, 6, 8)).astype(np.float32)
    y = P[:, :, 0].max(axis=1) + 0.1 * rng.normal(size=60)  # a patch says the label
    splits = [(np.arange(40), np.arange(40, 60))]
    base = ElementSettings(top=4, bins=3, per_bin=3, seed=2)
    odd = np.arange(60) % 2 == 1
    row, _ = run_label("style", y, P, P.mean(axis=1), splits, base, True,
                       [("pooled", 2), ("pooled", 1)], (20, 4), subsets={"odd": odd})  # fmt: skip
    assert row["combine"] == "pooled" and row["members"] == 2
    model = ElementEnsemble(element_settings(base, "pooled", 20, 4), 2).fit(P[:40], y[:40])
    each = np.abs(model.member_predictions(P[40:]) - y[40:])
    assert row["midlevel_error_by_variant"]["pooled"] == pytest.approx(each[0].mean())
    two = np.abs(model.predict(P[40:]) - y[40:]).mean()
    assert row["midlevel_error"] == row["midlevel_error_by_variant"]["pooled x2"]
    assert row["midlevel_error"] == pytest.approx(two)
    within = row["subsets"]["odd"]  # the first variant, over the checked odd images only
    assert within["checked"] == 10
    odd_two = np.abs(model.predict(P[40:]) - y[40:])[odd[40:]].mean()
    assert within["midlevel_error"] == pytest.approx(odd_two)

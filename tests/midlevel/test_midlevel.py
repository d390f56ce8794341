"""Style-aware mid-level elements: entropy, bins, HOG windows, and a problem with a
known answer: a motif whose shape encodes the label, anywhere in the image."""

import numpy as np
import pytest

from placeprint.errors import PlaceprintError
from placeprint.midlevel.elements import (
    ElementSettings,
    StyleAwareElements,
    label_bins,
    label_entropy,
    whole_image_regression,
)
from placeprint.midlevel.hog import HogLayout, describe_images, hog_blocks, patches


def test_label_entropy_by_hand():
    edges = np.array([-1.0, 0.5, 2.0])
    assert label_entropy(np.array([0, 0, 1, 1]), edges) == pytest.approx(1.0)
    assert label_entropy(np.array([0, 0, 0]), edges) == pytest.approx(0.0)
    four = np.array([-0.5, 0.5, 1.5, 2.5, 3.5])
    assert label_entropy(np.array([0, 1, 2, 3]), four) == pytest.approx(2.0)


def test_label_bins_values_or_quantiles():
    np.testing.assert_allclose(label_bins(np.array([0, 1, 1, 0]), 8), [-1.0, 0.5, 2.0])
    edges = label_bins(np.arange(100.0), 4)
    assert len(edges) == 5 and edges[0] == 0 and edges[2] == pytest.approx(49.5)
    with pytest.raises(PlaceprintError, match="two values"):
        label_bins(np.zeros(5), 4)


def test_patches_are_windows_of_blocks():
    layout = HogLayout(size=(64, 48), cell=8, window=2)
    image = np.random.default_rng(0).uniform(0, 255, (48, 64))
    blocks = hog_blocks(image, layout)
    assert blocks.shape == (5, 7, 36)
    P = patches(blocks, layout)
    pos = layout.positions()
    assert P.shape == (len(pos), 2 * 2 * 36) == (4 * 6, 144)
    r, c = pos[7]
    np.testing.assert_array_equal(P[7], blocks[r : r + 2, c : c + 2].reshape(-1))
    with pytest.raises(PlaceprintError, match="too few"):
        HogLayout(size=(16, 16), cell=8, window=4).check()


def _motif_images(n, rng):
    """A bright bar whose angle is the label (0 -> horizontal, 1 -> vertical), at a random
    place on a noisy background."""
    images, labels = [], rng.uniform(0, 1, n)
    yy, xx = np.mgrid[0:24, 0:24] - 11.5
    for t in labels:
        a = t * np.pi / 2
        bar = (np.abs(-np.sin(a) * xx + np.cos(a) * yy) < 2.5) & (np.hypot(xx, yy) < 11)
        img = rng.normal(100, 25, (64, 128))
        r, c = rng.integers(0, 64 - 24), rng.integers(0, 128 - 24)
        img[r : r + 24, c : c + 24][bar] = 240
        images.append(np.clip(img, 0, 255))
    return images, labels


def _described(make_images, seed, train, test, window):
    """HOG patches, whole-image HOG and labels of ``train`` and ``test`` new images."""
    rng = np.random.default_rng(seed)
    layout = HogLayout(size=(128, 64), cell=8, window=window)
    sets = [make_images(n, rng) for n in (train, test)]
    return layout, [(*describe_images(images, layout), y) for images, y in sets]


@pytest.mark.parametrize("combine", ["mean", "stacked", "pooled"])
def test_elements_read_a_motif_anywhere_better_than_the_whole_image(tmp_path, combine):
    layout, [(P_tr, W_tr, y_train), (P_te, W_te, y_test)] = _described(_motif_images, 1, 240, 80, 3)
    settings = ElementSettings(seeds=120, top=12, keep=12, bins=4, per_bin=10, combine=combine)
    model = StyleAwareElements(settings).fit(P_tr, y_train)
    mid = np.abs(model.predict(P_te) - y_test).mean()
    whole = whole_image_regression(W_tr, y_train).predict(W_te)
    whole = np.abs(np.clip(whole, 0, 1) - y_test).mean()
    assert mid < whole and mid < 0.2  # a constant guess errs by 0.25
    model.save(tmp_path / "m.ppml", layout)
    again, layout_again = StyleAwareElements.load(tmp_path / "m.ppml")
    assert layout_again == layout
    np.testing.assert_allclose(again.predict(P_te), model.predict(P_te), rtol=1e-5)
    assert again.settings.combine == combine


def test_pooled_responses_are_each_detectors_best_and_mean_window_by_brute_force():
    from placeprint.midlevel.elements import _pooled_responses

    rng = np.random.default_rng(3)
    P = rng.normal(size=(7, 5, 6)).astype(np.float32)  # 7 images, 5 windows, 6 numbers
    W = rng.normal(size=(4, 6)).astype(np.float32)
    b = rng.normal(size=4).astype(np.float32)
    got = _pooled_responses(P, W, b)
    assert got.shape == (7, 4, 2)
    for i in range(7):
        for k in range(4):
            scores = [float(P[i, j] @ W[k]) + b[k] for j in range(5)]
            assert got[i, k, 0] == pytest.approx(max(scores), rel=1e-5, abs=1e-5)
            assert got[i, k, 1] == pytest.approx(sum(scores) / 5, rel=1e-5, abs=1e-5)


def _count_images(n, rng):
    """Between one and four copies of the same cross on a noisy background: the label is how
    many, which an element's best response alone cannot tell but its mean response can."""
    images, labels = [], rng.integers(1, 5, n).astype(float)
    cross = np.zeros((12, 12), bool)
    cross[5:7, :] = cross[:, 5:7] = True
    for count in labels.astype(int):
        img = rng.normal(100, 20, (64, 128))
        for slot in rng.choice(8, size=count, replace=False):  # 2 x 4 slots of 32 x 32
            r, c = 32 * (slot // 4) + rng.integers(2, 18), 32 * (slot % 4) + rng.integers(2, 18)
            img[r : r + 12, c : c + 12][cross] = 240
        images.append(np.clip(img, 0, 255))
    return images, labels


def test_pooled_elements_count_an_element_that_best_responses_cannot():
    _, [(P_tr, _, y_train), (P_te, _, y_test)] = _described(_count_images, 4, 200, 80, 2)
    errors = {}
    for combine in ("mean", "pooled"):
        settings = ElementSettings(seeds=60, top=10, keep=8, bins=4, per_bin=10, combine=combine)
        model = StyleAwareElements(settings).fit(P_tr, y_train)
        errors[combine] = np.abs(model.predict(P_te) - y_test).mean()
    guess = np.abs(np.median(y_train) - y_test).mean()  # about 1 copy
    assert errors["pooled"] < 0.5 * guess, errors
    assert errors["pooled"] < errors["mean"], errors


def test_bad_input():
    with pytest.raises(PlaceprintError, match="fit needs"):
        StyleAwareElements().fit(np.zeros((3, 4, 5)), np.zeros(3))
    with pytest.raises(PlaceprintError, match="not fitted"):
        StyleAwareElements().predict(np.zeros((3, 4, 5)))
    with pytest.raises(PlaceprintError, match="seeds"):
        ElementSettings(seeds=0).check()
    with pytest.raises(PlaceprintError, match="combine must be one of mean, stacked"):
        ElementSettings(combine="median").check()


def test_cli_fit_and_predict(tmp_path):
    from conftest import assert_one_line_error, run_cli
    from PIL import Image

    rng = np.random.default_rng(2)
    images, labels = _motif_images(60, rng)
    lines = ["path,label"]
    for i, (im, y) in enumerate(zip(images, labels, strict=True)):
        Image.fromarray(im.astype(np.uint8)).save(tmp_path / f"{i}.png")
        lines.append(f"{i}.png,{y}")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    proc = run_cli("midlevel", "fit", tmp_path / "labels.csv", "-o", tmp_path / "m.ppml",
                   "--seeds", "40", "--keep", "5", "--members", "2", "-q")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("midlevel", "predict", tmp_path / "m.ppml", tmp_path / "0.png")
    assert proc.returncode == 0, proc.stderr
    value = float(proc.stdout.split("\t")[1])
    assert 0 <= value <= 1  # held to the learned range
    from placeprint.midlevel.ensemble import ElementEnsemble

    model, layout = ElementEnsemble.load(tmp_path / "m.ppml")
    P, _ = describe_images([tmp_path / "0.png"], layout)
    assert len(model.members_) == 2 and model.predict(P)[0] == pytest.approx(value, rel=1e-5)
    assert_one_line_error(run_cli("midlevel", "fit", tmp_path / "labels.csv", "-o",
                                  tmp_path / "y", "--members", "0"), "--members")  # fmt: skip
    (tmp_path / "bad.csv").write_text("path,label\n0.png,high\n")
    assert_one_line_error(run_cli("midlevel", "fit", tmp_path / "bad.csv", "-o", tmp_path / "x"),
                          "not a number")  # fmt: skip

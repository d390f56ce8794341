"""The IM2GPS combination: block layout, per-block normalisation, save/load, real images."""

import numpy as np
import pytest
from conftest import require_real_data

from placeprint import describe
from placeprint.describe.base import Describer
from placeprint.describe.im2gps import (
    BLOCKS,
    Im2gpsDescriber,
    learn_block_weights,
    mean_pairwise_distance,
)
from placeprint.errors import PlaceprintError


def _images(n=8, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        y, x = np.mgrid[:48, :64].astype(np.float32)
        t = rng.uniform(0, np.pi)
        wave = np.sin((x * np.cos(t) + y * np.sin(t)) / rng.uniform(1, 4))
        img = 128 + 60 * wave[..., None] * rng.uniform(0.3, 1, 3) + rng.normal(0, 10, (48, 64, 3))
        img[: 8 + 4 * i] += rng.uniform(-50, 50, 3)  # a coloured band of varying height
        out.append(np.clip(img, 0, 255).astype(np.float32))
    return out


def _small(**kw):
    return Im2gpsDescriber(textons=8, **kw)


def test_mean_pairwise_distance_brute_force():
    X = np.random.default_rng(0).normal(size=(7, 5))
    brute = np.mean([np.linalg.norm(X[i] - X[j]) for i in range(7) for j in range(i + 1, 7)])
    assert mean_pairwise_distance(X) == pytest.approx(brute, rel=1e-6)


def test_unfitted_raises_then_every_block_has_unit_mean_pairwise_distance():
    imgs = _images()
    d = _small(blocks=BLOCKS)
    with pytest.raises(PlaceprintError, match="fit"):
        d(imgs[:1])
    dims = d.block_dims()
    assert dims == {
        "tiny": 768, "lab_hist": 784, "texton": 8, "lines": 34, "gist": 560, "geocontext": 48
    }  # fmt: skip
    np.testing.assert_array_equal(d.fit(imgs).weights_, np.ones(6))  # no positives: equal
    assert d.dim == sum(dims.values())
    X = d.fit(imgs)(imgs)
    assert X.shape == (8, d.dim) and X.dtype == np.float32 and np.all(np.isfinite(X))
    start = 0
    for name, size in dims.items():  # scale_sample >= n: the fitted sample is all images
        block = X[:, start : start + size]
        assert mean_pairwise_distance(block) == pytest.approx(1.0, rel=1e-4), name
        start += size
    # histogram blocks went through the sqrt map: their squares sum to 1 before scaling
    lab = X[:, 768 : 768 + 784] / d.scales_[1]
    np.testing.assert_allclose((lab**2).sum(1), 1, rtol=1e-4)
    np.testing.assert_array_equal(_small(blocks=BLOCKS).fit(imgs)(imgs), X)  # deterministic
    assert _small().blocks == BLOCKS[:5]  # the default: IM2GPS's five


def test_save_load_round_trip_and_given_textons(tmp_path):
    imgs = _images()
    d = _small(feature_map="chi2", blocks=("lab_hist", "texton", "gist"))
    d.fit(imgs)
    assert d.dim == 784 * 3 + 8 * 3 + 560
    d.save(tmp_path / "im2gps.describer")
    loaded = Describer.load(tmp_path / "im2gps.describer")
    assert isinstance(loaded, Im2gpsDescriber) and loaded.params() == d.params()
    assert loaded.config() == d.config()
    np.testing.assert_array_equal(loaded(imgs), d(imgs))
    # textons learned elsewhere are taken as they are
    other = _small(feature_map="chi2", blocks=("lab_hist", "texton", "gist"))
    other.fit(imgs[:4], textons=d.parts["texton"].textons_)
    np.testing.assert_array_equal(other.parts["texton"].textons_, d.parts["texton"].textons_)


def test_bad_options():
    with pytest.raises(PlaceprintError, match="blocks"):
        Im2gpsDescriber(blocks=("tiny", "sift"))
    with pytest.raises(PlaceprintError, match="blocks"):
        Im2gpsDescriber(blocks=("tiny", "tiny"))
    with pytest.raises(PlaceprintError, match="feature_map"):
        Im2gpsDescriber(feature_map="l1")
    with pytest.raises(PlaceprintError, match="at least 2"):
        _small().fit(_images(1))
    with pytest.raises(PlaceprintError, match="bad options"):
        describe.get("im2gps", colour=True)


def test_real_photo_and_nordland_frames():
    lund = require_real_data("geotagged", "lund", "01.jpg")
    nordland = require_real_data("nordland", "summer")
    frames = [nordland / f"images-{i:05d}.png" for i in (1000, 1010, 1020)]
    d = Im2gpsDescriber(textons=16, blocks=("lab_hist", "texton", "lines", "gist"))
    d.fit(frames)
    X = d([lund, *frames])
    assert X.shape == (4, d.dim) and np.all(np.isfinite(X))
    lines = describe.get("lines")([lund])[0]
    assert lines[:17].sum() == pytest.approx(1)  # a street photo has straight lines


def test_learned_weights_find_the_block_that_tells_places_apart():
    # block 0 shows the place (query = database row + small noise), block 1 is noise that
    # differs between the two conditions: the weights must favour block 0
    rng = np.random.default_rng(0)
    m = 60
    place = rng.normal(size=(m, 8))
    db = [place, rng.normal(size=(m, 8))]
    qs = [place + 0.1 * rng.normal(size=(m, 8)), rng.normal(size=(m, 8))]
    w = learn_block_weights(qs, db, np.arange(m))
    assert w.mean() == pytest.approx(1.0) and w[0] > 1.5 and w[1] < 0.5

    def r1(weights):
        D = sum(
            wb * ((q[:, None] - d[None]) ** 2).sum(-1)
            for wb, q, d in zip(weights, qs, db, strict=True)
        )
        return np.mean(D.argmin(axis=1) == np.arange(m))

    assert r1(w) > r1(np.ones(2))
    with pytest.raises(PlaceprintError, match="more than"):
        learn_block_weights([place[:3]], [place[:3]], np.arange(3))


def test_fixed_weights_scale_blocks_and_survive_save_load(tmp_path):
    imgs = _images()
    blocks = ("tiny", "gist")
    equal = Im2gpsDescriber(blocks=blocks).fit(imgs)
    tilted = Im2gpsDescriber(blocks=blocks, weights=[4.0, 1.0]).fit(imgs)
    X, Y = equal(imgs), tilted(imgs)
    np.testing.assert_allclose(Y[:, :768], 2 * X[:, :768], rtol=1e-5)  # sqrt(4) on distances
    np.testing.assert_allclose(Y[:, 768:], X[:, 768:], rtol=1e-5)
    tilted.save(tmp_path / "t.describer")
    np.testing.assert_array_equal(Describer.load(tmp_path / "t.describer")(imgs), Y)
    with pytest.raises(PlaceprintError, match="weights"):
        Im2gpsDescriber(blocks=blocks, weights=[1.0])
    with pytest.raises(PlaceprintError, match="weights"):
        Im2gpsDescriber(blocks=blocks, weights=[1.0, -1.0])


def test_positives_learn_weights_in_fit():
    imgs = _images(12)
    positives = [im + np.random.default_rng(i).normal(0, 3, im.shape).astype(np.float32)
                 for i, im in enumerate(imgs)]  # fmt: skip
    d = Im2gpsDescriber(blocks=("tiny", "lines"), fit_images=12).fit(imgs, positives=positives)
    assert d.weights_.shape == (2,) and d.weights_.mean() == pytest.approx(1.0, rel=1e-5)
    assert not np.allclose(d.weights_, 1.0)

"""Texton histograms: the filter bank against direct convolution, fitting, histograms."""

import numpy as np
import pytest
import scipy.ndimage

from placeprint import describe
from placeprint.describe.base import Describer
from placeprint.describe.histograms import chi2_distance
from placeprint.describe.texton import FilterBank, TextonDescriber, filter_bank, pixel_features
from placeprint.errors import PlaceprintError


def _stripes(angle_deg, period=6.0, shape=(48, 64), phase=0.0):
    y, x = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    t = np.deg2rad(angle_deg)
    wave = np.sin(2 * np.pi * (x * np.cos(t) + y * np.sin(t)) / period + phase)
    return np.repeat((128 + 100 * wave)[..., None], 3, axis=2)


def test_filter_bank_kernels_and_fft_filtering_match_direct_convolution():
    kernels = filter_bank(orientations=8, scales=(1.0, 2.0), elongation=3.0)
    assert len(kernels) == 8 * 2 * 2 + 2
    for k in kernels:
        assert k.shape[0] % 2 == 1 and k.shape[0] == k.shape[1]
        assert abs(k.sum()) < 1e-5 and abs(np.abs(k).sum() - 1) < 1e-5
    gray = np.random.default_rng(0).uniform(0, 255, (30, 41)).astype(np.float32)
    bank = FilterBank(kernels)
    out = bank.responses(gray)
    direct = np.stack(
        [scipy.ndimage.convolve(gray.astype(np.float64), k, mode="reflect") for k in kernels], -1
    )
    assert out.shape == (30, 41, len(kernels)) and out.dtype == np.float32
    np.testing.assert_allclose(out, direct, atol=1e-3)
    np.testing.assert_array_equal(bank.responses(gray, step=3), out[::3, ::3])


def test_edge_filter_prefers_its_orientation():
    bank = FilterBank(filter_bank(orientations=4, scales=(1.5,)))
    # vertical stripes vary along x: the filters "across" at 0 degrees respond most
    resp = np.abs(bank.responses(_stripes(0)[..., 0]))[8:-8, 8:-8].mean(axis=(0, 1))
    energy = resp[:8].reshape(4, 2).sum(1)  # (orientation, edge/bar)
    assert energy.argmax() == 0 and energy[0] > 3 * energy[2]


def test_unfitted_use_raises_and_fit_gives_histograms_summing_to_one(tmp_path):
    d = TextonDescriber(textons=8, fit_pixels=4000, niter=10)
    imgs = [_stripes(a, phase=p) for a in (0, 45, 90) for p in (0.0, 1.0)]
    with pytest.raises(PlaceprintError, match="fit"):
        d(imgs[:1])
    assert d.fit(imgs) is d and d.textons_.shape == (8, 34)
    X = d(imgs)
    assert X.shape == (6, 8) and X.dtype == np.float32
    np.testing.assert_allclose(X.sum(1), 1, rtol=1e-5)
    # same texture shifted in phase ~ same histogram; other orientation: different
    same = chi2_distance(X[0], X[1])
    other = chi2_distance(X[0], X[4])
    assert same < 0.1 < other
    # determinism: same seed, same textons and output
    again = TextonDescriber(textons=8, fit_pixels=4000, niter=10).fit(imgs)
    np.testing.assert_array_equal(again.textons_, d.textons_)
    np.testing.assert_array_equal(again(imgs), X)
    # save / load round trip
    d.save(tmp_path / "t.describer")
    loaded = Describer.load(tmp_path / "t.describer")
    assert isinstance(loaded, TextonDescriber) and loaded.params() == d.params()
    np.testing.assert_array_equal(loaded(imgs), X)


def test_pixel_features_grid_and_flat_images():
    bank = FilterBank(filter_bank(orientations=2, scales=(1.0,)))
    feats = pixel_features(np.random.default_rng(1).uniform(0, 255, (100, 90)), bank, 1000)
    assert len(feats) <= 1000 and feats.shape[1] == 2 * 2 + 1
    assert np.all(pixel_features(np.full((20, 20), 7.0), bank, None) == 0)


def test_bad_options_and_too_few_pixels():
    with pytest.raises(PlaceprintError):
        TextonDescriber(textons=1)
    with pytest.raises(PlaceprintError):
        TextonDescriber(scales=())
    with pytest.raises(PlaceprintError, match="fewer textons"):
        TextonDescriber(textons=600).fit([np.zeros((16, 16, 3))])
    assert describe.get("texton").dim == 512
    with pytest.raises(PlaceprintError, match="expected"):
        TextonDescriber(textons=8)._set_state({"textons": np.zeros((8, 3), np.float32)})

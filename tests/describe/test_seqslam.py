"""The SeqSLAM describer: patch normalisation against hand-computed values, the registry."""

import numpy as np
import pytest
from PIL import Image

from placeprint import describe
from placeprint.describe.seqslam import SeqSLAMDescriber, patch_normalise
from placeprint.errors import PlaceprintError


def test_patch_normalise_hand_computed():
    img = np.array([[0, 2, 5, 5], [0, 2, 5, 5]], np.float32)[None]
    out = patch_normalise(img, 2)
    # left block: values 0,2,0,2 -> mean 1, std 1 -> -1, 1; right block is flat -> 0
    np.testing.assert_allclose(out[0], [[-1, 1, 0, 0], [-1, 1, 0, 0]], atol=1e-6)


def test_every_block_has_zero_mean_unit_std():
    rng = np.random.default_rng(0)
    imgs = rng.uniform(0, 255, size=(3, 32, 64)).astype(np.float32)
    out = patch_normalise(imgs, 8).reshape(3, 4, 8, 8, 8)
    np.testing.assert_allclose(out.mean(axis=(2, 4)), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(2, 4)), 1, atol=1e-4)


def test_describer_shapes_paths_arrays_and_brightness_invariance(tmp_path):
    rng = np.random.default_rng(1)
    arr = rng.uniform(20, 200, size=(32, 64)).astype(np.float32)
    Image.fromarray(arr.astype(np.uint8)).save(tmp_path / "a.png")
    d = describe.get("seqslam")
    assert d.dim == 64 * 32 * 2 and d.config()["patches"] == [8, 16]
    from_path = d([tmp_path / "a.png"])
    from_array = d([arr.astype(np.uint8).astype(np.float32)])
    assert from_path.shape == (1, d.dim) and from_path.dtype == np.float32
    np.testing.assert_allclose(from_path, from_array, atol=1e-4)
    # patch normalisation removes any gain and offset of the brightness
    np.testing.assert_allclose(d([arr]), d([0.5 * arr + 40]), atol=1e-3)
    np.testing.assert_array_equal(d([arr]), d([arr]))  # deterministic
    single = SeqSLAMDescriber(patches=(8,))
    np.testing.assert_allclose(single([arr]), d([arr])[:, : 64 * 32])
    assert d([]).shape == (0, d.dim)


def test_bad_input(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(PlaceprintError, match="cannot read image"):
        describe.get("seqslam")([tmp_path / "bad.png"])
    with pytest.raises(PlaceprintError, match="not found"):
        describe.get("seqslam")([tmp_path / "missing.png"])
    with pytest.raises(PlaceprintError, match="multiple of patch size"):
        SeqSLAMDescriber(patches=(7,))
    with pytest.raises(PlaceprintError, match="unknown describer"):
        describe.get("nope")
    with pytest.raises(PlaceprintError, match="bad options"):
        describe.get("seqslam", colour=True)
    assert "seqslam" in describe.available()

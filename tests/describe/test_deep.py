"""NetVLAD aggregation and GeM pooling against hand-computed values; the deep describers
(shapes, determinism, fitting, save/load, pickling) on small synthetic images."""

import pickle

import numpy as np
import pytest
from conftest import require_real_data

from placeprint import describe
from placeprint.describe.base import Describer
from placeprint.describe.deep import GemDescriber, MobileNetBackbone, NetVladDescriber, gem
from placeprint.describe.netvlad import (
    init_alpha,
    netvlad_aggregate,
    netvlad_aggregate_batch,
    soft_assign,
)
from placeprint.errors import PlaceprintError


# -- NetVLAD ----------------------------------------------------------------------------
def test_soft_assign_is_a_softmax_of_squared_distances():
    rng = np.random.default_rng(0)
    X, centres = rng.normal(size=(7, 5)), rng.normal(size=(3, 5))
    a = soft_assign(X, centres, alpha=0.7)
    assert a.shape == (7, 3) and a.dtype == np.float32
    np.testing.assert_allclose(a.sum(axis=1), 1, atol=1e-6)
    for i in range(7):  # brute force, one row at a time
        e = np.exp([-0.7 * np.sum((X[i] - c) ** 2) for c in centres])
        np.testing.assert_allclose(a[i], e / e.sum(), rtol=1e-5)
    # huge alpha: a hard assignment to the nearest centre, without overflow
    hard = soft_assign(X * 100, centres * 100, alpha=1e6)
    nearest = np.argmin(((X[:, None] - centres[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(hard, np.eye(3)[nearest])


def test_aggregate_feature_at_its_centre_gives_a_zero_block():
    centres = np.array([[0.0, 0.0], [10.0, 0.0]])
    x = np.array([[0.0, 0.0]])
    hard = netvlad_aggregate(x, centres, alpha=100.0)  # exp(-100 * 100) underflows: a = (1, 0)
    assert hard.shape == (4,) and hard.dtype == np.float32
    np.testing.assert_array_equal(hard, 0)  # block 0: x - c_0 = 0; block 1: weight 0
    soft = netvlad_aggregate(x, centres, alpha=0.1)  # a = (1 - e, e), e = exp(-10) / (1 + ..)
    np.testing.assert_array_equal(soft[:2], 0)
    np.testing.assert_allclose(soft[2:], [-1, 0], atol=1e-6)  # unit vector from c_1 to x


def test_aggregate_two_features_by_hand():
    centres = np.array([[0.0, 0.0], [4.0, 0.0]])
    X = np.array([[1.0, 0.0], [3.0, 2.0]])
    alpha = 0.25
    # squared distances: x0 -> (1, 9), x1 -> (13, 5)
    a0 = np.exp([-0.25, -2.25]) / np.exp([-0.25, -2.25]).sum()
    a1 = np.exp([-3.25, -1.25]) / np.exp([-3.25, -1.25]).sum()
    V0 = a0[0] * (X[0] - centres[0]) + a1[0] * (X[1] - centres[0])
    V1 = a0[1] * (X[0] - centres[1]) + a1[1] * (X[1] - centres[1])
    expected = np.concatenate([V0 / np.linalg.norm(V0), V1 / np.linalg.norm(V1)]) / np.sqrt(2)
    np.testing.assert_allclose(netvlad_aggregate(X, centres, alpha), expected, rtol=1e-5)
    # weights multiply each feature's assignments: weight 0 removes a feature
    only_x0 = netvlad_aggregate(X[:1], centres, alpha)
    np.testing.assert_allclose(
        netvlad_aggregate(X, centres, alpha, weights=np.array([2.0, 0.0])), only_x0, atol=1e-6
    )
    batch = netvlad_aggregate_batch(np.stack([X, X[::-1]]), centres, alpha)
    np.testing.assert_allclose(batch, [expected, expected], rtol=1e-5)  # order-free
    with pytest.raises(PlaceprintError, match="weights"):
        netvlad_aggregate(X, centres, alpha, weights=np.ones(3))
    with pytest.raises(PlaceprintError):
        netvlad_aggregate(X, centres[:, :1], alpha)


def test_init_alpha_gives_the_requested_ratio():
    centres = np.array([[0.0], [1.0], [5.0]])
    X = np.array([[0.25], [0.75]])  # gap d2_second - d2_first is 0.5 for both
    alpha = init_alpha(X, centres, ratio=100)
    np.testing.assert_allclose(alpha, np.log(100) / 0.5)
    a = soft_assign(X, centres, alpha)
    np.testing.assert_allclose(a[0, 0] / a[0, 1], 100, rtol=1e-4)


# -- GeM ----------------------------------------------------------------------------------
def test_gem_by_hand():
    maps = np.array([1.0, 2.0, 3.0, 4.0, -5.0, 6.0]).reshape(1, 1, 2, 3)
    np.testing.assert_allclose(gem(maps, p=1.0), [[11 / 6]], rtol=1e-6)  # average, signed
    cubes = (1 + 8 + 27 + 64 + 0 + 216) / 6  # p = 3 clamps -5 to ~0
    np.testing.assert_allclose(gem(maps, p=3.0), [[cubes ** (1 / 3)]], rtol=1e-5)
    np.testing.assert_allclose(gem(maps, p=20.0), [[6.0]], rtol=0.1)  # tends to the max
    # a 2x1 grid of columns on 3 columns: adaptive bins [0, 2) and [1, 3)
    np.testing.assert_allclose(gem(maps, p=1.0, grid=(2, 1)), [[(1 + 2 + 4 - 5) / 4, 6 / 4]])
    # a grid as fine as the map returns the map (channel-major)
    m = np.random.default_rng(0).normal(size=(2, 3, 4, 5))
    np.testing.assert_allclose(gem(m, p=1.0, grid=(5, 4)), m.reshape(2, -1), rtol=1e-6)


# -- describers ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PLACEPRINT_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def images():
    """Eight smooth random 32x64 colour images (paths are tested elsewhere)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(3)
    raw = rng.uniform(0, 255, size=(8, 32, 64, 3))
    return [gaussian_filter(im, (2, 2, 0)).astype(np.float32) for im in raw]


def test_backbone_maps_and_pickling(cache, images):
    backbone = MobileNetBackbone(layer=6, threads=1)
    rgb = np.stack(images[:2])
    maps = backbone.feature_maps(rgb)
    assert maps.shape == (2, backbone.channels, 4, 8) and maps.dtype == np.float32
    assert backbone.channels == 32 and backbone.stride == 8
    clone = pickle.loads(pickle.dumps(backbone))
    assert clone._session is None
    np.testing.assert_array_equal(clone.feature_maps(rgb), maps)
    np.testing.assert_array_equal(backbone.feature_maps(rgb[1:]), maps[1:])  # batch-free
    with pytest.raises(PlaceprintError, match="unknown MobileNetV2 layer"):
        MobileNetBackbone(layer="pool5")


def test_gem_describer_unwhitened_equals_pooled_maps(cache, images):
    d = GemDescriber(whiten_dims=None, grid=(2, 1), p=3.0, layer="last", image_size=(64, 32))
    assert not d.learns and d.dim == 1280 * 2
    out = d(images[:3])
    maps = d.backbone.feature_maps(np.stack(images[:3]))  # already 64x32
    ref = np.stack([gem(maps[:, :, :, :1], 3.0)[:, :], gem(maps[:, :, :, 1:], 3.0)], axis=2)
    ref = ref.reshape(3, -1)
    np.testing.assert_allclose(out, ref / np.linalg.norm(ref, axis=1, keepdims=True), atol=1e-5)


def test_gem_describer_fit_shapes_determinism_save_load(cache, images, tmp_path):
    d = describe.get("cnn_gem", whiten_dims=4, scales=(1.0, 0.75))
    assert d.learns and d.dim == 4
    with pytest.raises(PlaceprintError, match="fit"):
        d(images)
    d.fit(images)
    out = d(images)
    assert out.shape == (8, 4) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(out, d(images))
    np.testing.assert_allclose(d(images[5:]), out[5:], atol=1e-6)  # batch-free
    d.save(tmp_path / "gem.describer")
    loaded = Describer.load(tmp_path / "gem.describer")
    assert isinstance(loaded, GemDescriber) and loaded.config() == d.config()
    np.testing.assert_allclose(loaded(images), out, atol=1e-6)
    assert describe.get("cnn_gem").params()["layer"] == 6  # tuned default, see the docstring


def test_gem_whitening_learned_from_positives(cache, images, tmp_path):
    """With positives, fit learns the pair-based whitening on the unwhitened descriptors."""
    from placeprint.describe.whitening import LearnedWhitening

    db, pos = images[:6], [im * 0.8 + 20 for im in images[:4]]  # 4 places, another "season"
    d = describe.get("cnn_gem", whiten_dims=3).fit(db, positives=pos)
    raw = describe.get("cnn_gem", whiten_dims=None)
    ref = LearnedWhitening(3, d.whiten_eps).fit(raw(db), raw(pos))
    np.testing.assert_allclose(d(images), ref.transform(raw(images)), atol=1e-4)
    pca = describe.get("cnn_gem", whiten_dims=3).fit(db)
    assert pca.state_fingerprint() != d.state_fingerprint()
    d.save(tmp_path / "lw.describer")
    loaded = Describer.load(tmp_path / "lw.describer")
    np.testing.assert_allclose(loaded(images), d(images), atol=1e-6)


def test_netvlad_describer(cache, images, tmp_path):
    opts = dict(layer="7.expand", image_size=(64, 64), clusters=4, whiten_dims=6)
    d = describe.get("cnn_netvlad", **opts)
    assert isinstance(d, NetVladDescriber) and d.learns
    with pytest.raises(PlaceprintError, match="fit"):
        d(images)
    d.fit(images)
    assert d.centres_.shape == (4, 192) and d.alpha_[0] > 0
    np.testing.assert_allclose(np.linalg.norm(d.centres_, axis=1), 1, atol=0.2)  # unit feats
    out = d(images)
    assert out.shape == (8, 6) and out.dtype == np.float32
    np.testing.assert_array_equal(out, d(images))
    again = describe.get("cnn_netvlad", **opts).fit(images)  # seeded k-means
    np.testing.assert_allclose(again(images), out, atol=1e-5)
    d.save(tmp_path / "nv.describer")
    loaded = Describer.load(tmp_path / "nv.describer")
    np.testing.assert_allclose(loaded(images), out, atol=1e-6)
    with pytest.raises(PlaceprintError, match="clusters"):
        describe.get("cnn_netvlad", clusters=1)


def test_bad_options_and_images(cache, tmp_path):
    with pytest.raises(PlaceprintError, match="image_size"):
        GemDescriber(image_size=(16, 16))
    with pytest.raises(PlaceprintError, match="grid"):
        GemDescriber(grid=(0, 1))
    with pytest.raises(PlaceprintError, match="p must"):
        GemDescriber(p=0.5)
    with pytest.raises(PlaceprintError, match="scales"):
        GemDescriber(scales=())
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(PlaceprintError, match="cannot read image"):
        GemDescriber(whiten_dims=None)([tmp_path / "bad.png"])


def test_gem_beats_chance_on_real_nordland(cache):
    """300 summer frames, 100 winter queries among them: the default layer, size and grid
    (unwhitened, to keep the test fast) find the right place (|index difference| <= 2)
    far more often than chance (5/300) or global GeM (~0.04 on the whole route)."""
    from placeprint.datasets.nordland import load_nordland

    nordland = load_nordland(require_real_data("nordland"))
    summer, winter = nordland.summer[1000:1300], nordland.winter[1000:1300]
    d = GemDescriber(whiten_dims=None)
    S, W = d(summer), d(winter[::3])
    hits = np.abs((W @ S.T).argmax(axis=1) - np.arange(0, 300, 3)) <= 2
    assert hits.mean() >= 0.6  # measured 0.82 (0.64 and 0.84 on frames 5010-8000, 15010-18000)


def test_state_bytes_count_the_network_a_query_runs():
    from placeprint.describe.mobilenet_onnx import ensure_model

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(6)]
    d = GemDescriber(layer=6, image_size=(64, 48), grid=(2, 2), whiten_dims=4).fit(images)
    graph = ensure_model((6,)).stat().st_size
    assert d.fixed_bytes() == graph > 100_000
    learned = sum(a.nbytes for a in d._state().values())
    assert learned > 0 and d.state_bytes() == learned + graph
    assert describe.get("tiny").state_bytes() == 0  # nothing learned, no network

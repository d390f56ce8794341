"""CRN: finite-difference checks of every analytic gradient, mask positivity, the uniform
mask = plain NetVLAD known answer, learning to down-weight a planted distractor, and the
describer (fit, shapes, determinism, unfitted use, save/load)."""

from __future__ import annotations

import numpy as np
import pytest

from placeprint.describe.crn_model import (
    CrnData,
    CrnNet,
    batch_loss_and_grads,
    box_mean,
    context_backward,
    context_forward,
    conv_forward,
    l2_backward,
    mask_head_backward,
    mask_head_forward,
    mine_negatives,
    train_crn,
    triplet_loss,
    weighted_vlad_backward,
    weighted_vlad_forward,
)
from placeprint.errors import PlaceprintError

EPS = 1e-6


def numeric_grad(f, x: np.ndarray) -> np.ndarray:
    """Central differences of scalar ``f()`` w.r.t. every entry of ``x`` (changed in place)."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + EPS
        fp = f()
        x[i] = old - EPS
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * EPS)
    return g


def assert_grad(analytic, numeric, rtol=1e-5):
    scale = max(np.abs(numeric).max(), 1e-8)
    np.testing.assert_allclose(analytic, numeric, atol=rtol * scale, rtol=1e-4)


def soft_assign_ref(X, centres, alpha):
    """softmax_k(-alpha |x - c_k|^2), written independently of netvlad.py."""
    d2 = ((X[..., None, :] - centres) ** 2).sum(-1)
    e = np.exp(-alpha * (d2 - d2.min(-1, keepdims=True)))
    return e / e.sum(-1, keepdims=True)


def vlad_ref(X, A, centres, m):
    """Loop-by-loop weighted VLAD of one image (L, D), intra-normalised then L2."""
    K, D = centres.shape
    V = np.zeros((K, D))
    for k in range(K):
        for l_ in range(len(X)):
            V[k] += m[l_] * A[l_, k] * (X[l_] - centres[k])
        V[k] /= max(np.linalg.norm(V[k]), 1e-12)
    v = V.ravel()
    return v / np.linalg.norm(v)


# -- layers -------------------------------------------------------------------------------
def test_conv_and_box_match_explicit_neighbourhood_loops():
    rng = np.random.default_rng(0)
    n, H, W, r, h, k = 2, 4, 5, 3, 2, 3
    Z = rng.standard_normal((n, H, W, r))
    Wt, b = rng.standard_normal((k * k * r, h)), rng.standard_normal(h)
    conv = conv_forward(Z, Wt, b, k)
    box = box_mean(Z, k)
    Wk = Wt.reshape(k, k, r, h)
    for y in range(H):
        for x in range(W):
            expect = b.copy()
            for dy in range(k):
                for dx in range(k):
                    yy, xx = y + dy - 1, x + dx - 1
                    if 0 <= yy < H and 0 <= xx < W:
                        expect = expect + Z[:, yy, xx] @ Wk[dy, dx]
            np.testing.assert_allclose(conv[:, y, x], expect)
            ys, xs = slice(max(y - 1, 0), y + 2), slice(max(x - 1, 0), x + 2)
            np.testing.assert_allclose(box[:, y, x], Z[:, ys, xs].mean(axis=(1, 2)))
    # a 9x9 box on a 4x5 map averages the whole map everywhere
    np.testing.assert_allclose(
        box_mean(Z, 9), np.broadcast_to(Z.mean(axis=(1, 2), keepdims=True), Z.shape)
    )
    with pytest.raises(PlaceprintError, match="odd"):
        conv_forward(Z, Wt, b, 4)


@pytest.mark.parametrize("context", ["conv", "box"])
def test_context_filter_gradients_match_finite_differences(context):
    rng = np.random.default_rng(1)
    Z = rng.standard_normal((2, 4, 5, 3))
    q = 5 * 5 * 3 if context == "conv" else 3
    Wt, b = rng.standard_normal((q, 4)), rng.standard_normal(4)
    G = rng.standard_normal((2, 4, 5, 4))

    def f():
        return float(np.sum(context_forward(Z, Wt, b, 5, context)[1] * G))

    P, _ = context_forward(Z, Wt, b, 5, context)
    dW, db = context_backward(P, G, 5, context)
    assert_grad(dW, numeric_grad(f, Wt))
    assert_grad(db, numeric_grad(f, b))


def test_mask_head_gradients_and_positivity():
    rng = np.random.default_rng(2)
    Hc, w, b = rng.standard_normal((3, 6, 5)), rng.standard_normal(5), np.array([0.3])
    G = rng.standard_normal((3, 6))

    def f():
        return float(np.sum(mask_head_forward(Hc, w, b[0])[0] * G))

    m, u = mask_head_forward(Hc, w, b[0])
    np.testing.assert_allclose(m, np.log1p(np.exp(Hc @ w + 0.3)) + 1e-6)
    dw, db, dHc = mask_head_backward(Hc, w, u, G)
    assert_grad(dw, numeric_grad(f, w))
    assert_grad(np.atleast_1d(db), numeric_grad(f, b))
    assert_grad(dHc, numeric_grad(f, Hc))
    # softplus stays positive (and finite) even for very negative / large scores
    big, _ = mask_head_forward(Hc, w * 1e3, -50.0)
    assert np.all(big > 0) and np.all(np.isfinite(big))


def test_l2_backward_matches_finite_differences():
    rng = np.random.default_rng(3)
    x, g = rng.standard_normal((2, 6)), rng.standard_normal((2, 6))

    def f():
        return float(np.sum(x / np.linalg.norm(x, axis=1, keepdims=True) * g))

    norm = np.linalg.norm(x, axis=1, keepdims=True)
    assert_grad(l2_backward(x / norm, norm, g), numeric_grad(f, x))


def test_weighted_vlad_matches_loops_and_its_mask_gradient_matches_finite_differences():
    rng = np.random.default_rng(4)
    n, L, D, K = 2, 6, 5, 3
    X, centres = rng.standard_normal((n, L, D)), rng.standard_normal((K, D))
    A = soft_assign_ref(X, centres, 1.0)
    m = rng.uniform(0.2, 2.0, (n, L))
    v, cache = weighted_vlad_forward(X, A, centres, m)
    for i in range(n):
        np.testing.assert_allclose(v[i], vlad_ref(X[i], A[i], centres, m[i]), atol=1e-12)
    G = rng.standard_normal(v.shape)

    def f():
        return float(np.sum(weighted_vlad_forward(X, A, centres, m)[0] * G))

    assert_grad(weighted_vlad_backward(cache, G), numeric_grad(f, m))


def test_triplet_loss_value_and_gradients():
    rng = np.random.default_rng(5)
    q, p, negs = (
        rng.standard_normal((3, 4)),
        rng.standard_normal((3, 4)),
        rng.standard_normal((3, 2, 4)),
    )
    margin = 3.0
    loss, dq, dp, dn = triplet_loss(q, p, negs, margin)
    expect = 0.0
    for b in range(3):
        for j in range(2):
            expect += max(
                0.0, margin + np.sum((q[b] - p[b]) ** 2) - np.sum((q[b] - negs[b, j]) ** 2)
            )
    assert loss == pytest.approx(expect / 3) and loss > 0

    def f():
        return triplet_loss(q, p, negs, margin)[0]

    assert_grad(dq, numeric_grad(f, q))
    assert_grad(dp, numeric_grad(f, p))
    assert_grad(dn, numeric_grad(f, negs))


# -- the whole network -----------------------------------------------------------------------
def tiny_problem(seed=0, n_places=12, r=3, H=4, W=4, D=4, K=3):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((2 * n_places, r, H, W))
    X = rng.standard_normal((2 * n_places, H * W, D))
    centres = rng.standard_normal((K, D))
    A = soft_assign_ref(X, centres, 2.0)
    positions = np.tile(np.arange(n_places), 2).astype(float)
    pairs = np.stack([np.arange(n_places), np.arange(n_places) + n_places], axis=1)
    return CrnData(Z, X, A, positions, pairs), centres


@pytest.mark.parametrize("context", ["conv", "box"])
def test_full_loss_gradient_matches_finite_differences(context):
    data, centres = tiny_problem()
    net = CrnNet(3, sizes=(1, 3), widths=(3, 2), context=context, seed=1, dtype=np.float64)
    for k in net.params:  # make the mask far from uniform so every path carries gradient
        net.params[k] += np.random.default_rng(7).standard_normal(net.params[k].shape) * 0.5
    q, p = data.pairs[:4, 0], data.pairs[:4, 1]
    negs = np.array([[13, 15, 20], [12, 18, 21], [19, 22, 23], [12, 14, 16]])
    triplets = (q, p, negs)
    margin = 2.0  # large: every negative is active, so the loss is smooth here
    loss, grads = batch_loss_and_grads(net, data, centres, triplets, margin)
    assert loss > 0

    def f():
        return batch_loss_and_grads(net, data, centres, triplets, margin)[0]

    for k, v in net.params.items():
        assert_grad(grads[k], numeric_grad(f, v), rtol=1e-4)


def test_constant_mask_gives_plain_vlad():
    data, centres = tiny_problem(seed=3)
    net = CrnNet(3, sizes=(3, 5), widths=(4, 4), seed=0, dtype=np.float64)
    net.params["w_out"][:] = 0.0
    m = net.mask(data.Z)
    np.testing.assert_allclose(m, 1.0 + 1e-6)
    v = net.describe(data.Z, data.X, data.assign, centres)
    for i in range(3):
        np.testing.assert_allclose(
            v[i], vlad_ref(data.X[i], data.assign[i], centres, np.ones(16)), atol=1e-12
        )


def distractor_problem(n_places=40, seed=0):
    """Left half of each map: the place's signal, identical across conditions (plus a
    little noise); right half: strong noise redrawn for every image. The CRN input marks
    the noise half with a channel offset it can see."""
    rng = np.random.default_rng(seed)
    H, W, D, K, r = 4, 6, 6, 4, 4
    centres = rng.standard_normal((K, D))
    place = rng.standard_normal((n_places, H, W // 2, D))
    X = np.empty((2 * n_places, H, W, D))
    Z = rng.standard_normal((2 * n_places, r, H, W)) * 0.3
    for c in range(2):
        rows = slice(c * n_places, (c + 1) * n_places)
        X[rows, :, : W // 2] = place + 0.1 * rng.standard_normal(place.shape)
        X[rows, :, W // 2 :] = 2.0 * rng.standard_normal((n_places, H, W // 2, D))
    Z[:, 0, :, W // 2 :] += 1.0  # what makes the distracting region recognisable
    X = X.reshape(2 * n_places, H * W, D)
    A = soft_assign_ref(X, centres, 1.0)
    positions = np.tile(np.arange(n_places), 2).astype(float)
    pairs = np.stack([np.arange(n_places), np.arange(n_places) + n_places], axis=1)
    return CrnData(Z, X, A, positions, pairs), centres, (H, W)


@pytest.mark.parametrize("context", ["conv", "box"])
def test_training_lowers_the_loss_and_the_mask_on_the_distractor(context):
    data, centres, (H, W) = distractor_problem()
    net = CrnNet(4, sizes=(1, 3), widths=(8, 8), context=context, seed=0)
    before = net.mask(data.Z).reshape(-1, H, W)
    negs = mine_negatives(
        net.describe(data.Z, data.X, data.assign, centres), data, data.pairs, 5, 0
    )
    fixed = (data.pairs[:, 0], data.pairs[:, 1], negs)
    loss0, _ = batch_loss_and_grads(net, data, centres, fixed, 0.5)
    history = train_crn(net, data, centres, epochs=25, batch=10, n_neg=5, margin=0.5, lr=0.01)
    loss1, _ = batch_loss_and_grads(net, data, centres, fixed, 0.5)
    assert loss1 < 0.5 * loss0 and history[-1] < history[0]
    after = net.mask(data.Z).reshape(-1, H, W)
    ratio_before = before[:, :, W // 2 :].mean() / before[:, :, : W // 2].mean()
    ratio_after = after[:, :, W // 2 :].mean() / after[:, :, : W // 2].mean()
    assert 0.9 < ratio_before < 1.1 and ratio_after < 0.5
    assert np.all(after > 0)


def test_training_is_deterministic_with_a_seed():
    data, centres, _ = distractor_problem(n_places=16)
    runs = []
    for _ in range(2):
        net = CrnNet(4, sizes=(3,), widths=(4,), seed=5)
        train_crn(net, data, centres, epochs=2, batch=8, n_neg=3, lr=0.01, seed=2)
        runs.append(net.params)
    for k in runs[0]:
        np.testing.assert_array_equal(runs[0][k], runs[1][k])


def test_network_input_checks():
    with pytest.raises(PlaceprintError, match="one width per"):
        CrnNet(4, sizes=(3, 5), widths=(4,))
    with pytest.raises(PlaceprintError, match="odd"):
        CrnNet(4, sizes=(2,), widths=(4,))
    with pytest.raises(PlaceprintError, match="context"):
        CrnNet(4, context="deformable")
    with pytest.raises(PlaceprintError, match="CRN input"):
        CrnNet(4).mask(np.zeros((1, 3, 4, 4), np.float32))


def test_weighted_vlad_equals_netvlad_with_the_same_weights():
    from placeprint.describe.netvlad import netvlad_aggregate, soft_assign

    rng = np.random.default_rng(6)
    X = rng.standard_normal((3, 10, 8)).astype(np.float32)
    centres = rng.standard_normal((5, 8)).astype(np.float32)
    A = soft_assign(X.reshape(-1, 8), centres, 0.7).reshape(3, 10, 5)
    m = rng.uniform(0.1, 3.0, (3, 10)).astype(np.float32)
    v, _ = weighted_vlad_forward(X, A, centres, m)
    ones, _ = weighted_vlad_forward(X, A, centres, np.full((3, 10), 2.5, np.float32))
    for i in range(3):
        np.testing.assert_allclose(v[i], netvlad_aggregate(X[i], centres, 0.7, m[i]), atol=1e-5)
        # a constant mask (any value) is plain NetVLAD
        np.testing.assert_allclose(ones[i], netvlad_aggregate(X[i], centres, 0.7), atol=1e-5)


# -- the describer (MobileNetV2 through onnxruntime) --------------------------------------
SMALL = dict(
    layer=13,
    image_size=(64, 64),
    clusters=4,
    crn_dims=8,
    context="conv",
    sizes=(1, 3),
    widths=(4, 4),
    epochs=2,
    batch=4,
    negatives=2,
    neg_gap=1,
    max_features=2000,
)


@pytest.fixture(scope="module")
def scenes():
    """Eight synthetic 'places' (smooth random scenes) and the same places under another
    condition (darker, contrast changed, noise)."""
    from scipy.ndimage import zoom

    rng = np.random.default_rng(0)
    db, other = [], []
    for _ in range(8):
        img = zoom(rng.uniform(0, 255, (8, 8, 3)), (8, 8, 1), order=1)
        db.append(img.astype(np.float32))
        changed = 0.6 * img + 20 + rng.normal(0, 8, img.shape)
        other.append(np.clip(changed, 0, 255).astype(np.float32))
    return db, other


def test_describer_without_positives_is_plain_netvlad(scenes):
    from placeprint import describe
    from placeprint.describe.netvlad import netvlad_aggregate

    db, _ = scenes
    d = describe.get("crn", **SMALL)
    with pytest.raises(PlaceprintError, match="call fit"):
        d(db[:1])
    d.fit(db)
    assert not d.trained and d._state() and "crn_w0" not in d._state()
    out = d(db[:3])
    assert out.shape == (3, 4 * 96) == (3, d.dim) and out.dtype == np.float32
    X, _ = d._local_features(db[:3])
    for i in range(3):
        np.testing.assert_allclose(
            out[i], netvlad_aggregate(X[i], d.centres_, float(d.alpha_[0])), atol=1e-6
        )
    np.testing.assert_array_equal(d.mask(db[:2]), np.ones((2, 4, 4), np.float32))


def test_describer_trains_the_crn_deterministically_and_round_trips(scenes, tmp_path):
    from placeprint.describe.base import Describer
    from placeprint.describe.crn import CrnDescriber

    db, other = scenes
    d = CrnDescriber(**SMALL).fit(db, positives=other)
    again = CrnDescriber(**SMALL).fit(db, positives=other)
    assert d.trained and {"crn_w0", "crn_w_out", "crn_b_out"} <= set(d._state())
    out = d(other)
    np.testing.assert_array_equal(out, again(other))  # same seed, same weights
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    m = d.mask(other)
    assert m.shape == (8, 4, 4) and np.all(m > 0) and m.std() > 0
    # the descriptor is NetVLAD weighted by the mask
    X, _ = d._local_features(other[:2])
    from placeprint.describe.netvlad import netvlad_aggregate_batch

    expect = netvlad_aggregate_batch(X, d.centres_, float(d.alpha_[0]), m[:2].reshape(2, -1))
    np.testing.assert_allclose(out[:2], expect, atol=1e-6)
    d.save(tmp_path / "crn.describer")
    loaded = Describer.load(tmp_path / "crn.describer")
    assert isinstance(loaded, CrnDescriber) and loaded.trained
    assert loaded.params() == d.params() and loaded.config() == d.config()
    np.testing.assert_array_equal(loaded(other), out)


def test_describer_whitening_round_trip_and_bad_options(scenes, tmp_path):
    from placeprint import describe
    from placeprint.describe.base import Describer

    db, other = scenes
    d = describe.get("crn", **{**SMALL, "whiten_dims": 5, "epochs": 1}).fit(db, positives=other)
    out = d(other)
    assert out.shape == (8, 5) == (8, d.dim)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    d.save(tmp_path / "w.describer")
    np.testing.assert_array_equal(Describer.load(tmp_path / "w.describer")(other), out)
    with pytest.raises(PlaceprintError, match="not found"):
        d([tmp_path / "missing.png"])
    with pytest.raises(PlaceprintError, match="align"):
        describe.get("crn", **SMALL).fit(db, positives=other[:3])
    for bad in [
        {"clusters": 1},
        {"context": "mlp"},
        {"sizes": (2,), "widths": (4,)},
        {"crn_dims": 500},
    ]:
        with pytest.raises(PlaceprintError):
            describe.get("crn", **{**SMALL, **bad})

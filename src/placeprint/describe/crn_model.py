"""Contextual Reweighting Network (Kim, Dunn & Frahm, CVPR 2017) in numpy, trainable on CPU.

The CRN predicts a positive weight ``m_l`` for every location ``l`` of a CNN feature map
from the context around it, and NetVLAD aggregates with it:
``V_k = sum_l m_l a_l^k (x_l - c_k)``, intra-normalised, then L2-normalised.

Network (hand-written forward and backward passes, no deep-learning framework):

1. ``Z``: the feature map reduced to ``r`` channels by a fixed PCA (fitted on the
   database by the describer), ``(n, r, H, W)``.
2. One context filter per size ``k`` in ``sizes`` (the paper: 3, 5, 7), then ReLU.
   ``context="conv"``: a learned zero-padded ``k x k`` convolution (``k*k*r`` weights
   per output), as in the paper. ``context="box"``: the mean of the ``k x k``
   neighbourhood (cells inside the map) followed by a learned ``1 x 1`` layer
   (``r`` weights per output), i.e. a convolution whose spatial kernel is fixed to a
   box and only its channel mixing is learned: ``k*k`` times fewer weights and
   multiply-adds, so it trains in minutes on two cores and overfits less.
3. Concatenate, a learned ``1 x 1`` layer to a scalar ``u``, ``m = softplus(u) + 1e-6 > 0``.

Feature maps of the small Nordland frames are only a few cells on a side, so the
paper's average pooling before and upsampling after the filters are left out.

Training: margin ranking (triplet) loss on L2-normalised descriptors,
``sum_j relu(margin + |q - p|^2 - |q - n_j|^2)`` over the hardest negatives mined from the
database with the current weights, optimised with Adam. Only the CRN weights learn;
centres, soft-assignment and the PCA stay fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from placeprint.errors import PlaceprintError

CONTEXTS = ("conv", "box")
MASK_FLOOR = 1e-6  # added to softplus so the mask stays > 0 where softplus underflows


# -- elementwise ----------------------------------------------------------------------
def softplus(u: np.ndarray) -> np.ndarray:
    """``log(1 + exp(u))``, computed without overflow."""
    return np.logaddexp(0, u).astype(u.dtype, copy=False)


def sigmoid(u: np.ndarray) -> np.ndarray:
    """Logistic function (the derivative of softplus), computed without overflow."""
    return (0.5 * (1.0 + np.tanh(0.5 * u))).astype(u.dtype, copy=False)


# -- context filters ------------------------------------------------------------------------
def _check_size(size: int) -> int:
    if int(size) < 1 or int(size) % 2 == 0:
        raise PlaceprintError(f"context filter sizes must be odd and >= 1, got {size}")
    return int(size)


def box_mean(Z: np.ndarray, size: int) -> np.ndarray:
    """Mean of each ``size x size`` neighbourhood over the cells inside the map.

    ``Z`` is ``(n, H, W, r)`` (channels last); returns the same shape. Uses an
    integral image, so the cost does not grow with ``size``.
    """
    p = _check_size(size) // 2
    n, H, W, r = Z.shape
    S = np.zeros((n, H + 1, W + 1, r), np.float64)
    S[:, 1:, 1:] = Z.cumsum(axis=1).cumsum(axis=2)
    y0, y1 = np.clip(np.arange(H) - p, 0, H), np.clip(np.arange(H) + p + 1, 0, H)
    x0, x1 = np.clip(np.arange(W) - p, 0, W), np.clip(np.arange(W) + p + 1, 0, W)
    total = S[:, y1][:, :, x1] - S[:, y0][:, :, x1] - S[:, y1][:, :, x0] + S[:, y0][:, :, x0]
    count = ((y1 - y0)[:, None] * (x1 - x0)[None, :])[None, :, :, None]
    return (total / count).astype(Z.dtype)


def conv_forward(Z: np.ndarray, W: np.ndarray, b: np.ndarray, size: int) -> np.ndarray:
    """Zero-padded ``size x size`` convolution (cross-correlation) ``(n, H, W, h)``.

    ``Z (n, H, W, r)``; ``W (size*size*r, h)`` with rows ordered (dy, dx, channel),
    ``out[y, x] = b + sum_{dy,dx,c} Z[y + dy - p, x + dx - p, c] W[(dy, dx, c)]``.
    """
    k = _check_size(size)
    n, H, Wd, r = Z.shape
    p = k // 2
    Zp = np.pad(Z, ((0, 0), (p, p), (p, p), (0, 0)))
    Wk = W.reshape(k, k, r, -1)
    out = np.broadcast_to(b, (n * H * Wd, W.shape[1])).copy()
    for dy in range(k):
        for dx in range(k):
            shifted = np.ascontiguousarray(Zp[:, dy : dy + H, dx : dx + Wd]).reshape(-1, r)
            out += shifted @ Wk[dy, dx]
    return out.reshape(n, H, Wd, -1)


def conv_backward(Z: np.ndarray, dA: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Gradients ``(dW (size*size*r, h), db (h,))`` of :func:`conv_forward` given
    ``dL/d out (n, H, W, h)``."""
    k = _check_size(size)
    n, H, Wd, r = Z.shape
    p = k // 2
    Zp = np.pad(Z, ((0, 0), (p, p), (p, p), (0, 0)))
    dA2 = dA.reshape(-1, dA.shape[-1])
    dW = np.empty((k, k, r, dA2.shape[1]), dA.dtype)
    for dy in range(k):
        for dx in range(k):
            shifted = np.ascontiguousarray(Zp[:, dy : dy + H, dx : dx + Wd]).reshape(-1, r)
            dW[dy, dx] = shifted.T @ dA2
    return dW.reshape(k * k * r, -1), dA2.sum(axis=0)


def context_forward(
    Z: np.ndarray, W: np.ndarray, b: np.ndarray, size: int, context: str
) -> tuple[np.ndarray, np.ndarray]:
    """Pre-activation ``(n, H, W, h)`` of one context filter and what its backward needs.

    ``context="conv"``: :func:`conv_forward` of ``Z (n, H, W, r)``. ``"box"``:
    ``box_mean(Z, size) @ W + b`` with ``W (r, h)``. Returns ``(saved input, A)``.
    """
    if context == "conv":
        return Z, conv_forward(Z, W, b, size)
    if context == "box":
        P = box_mean(Z, size)
        return P, P @ W + b
    raise PlaceprintError(f"context must be one of {CONTEXTS}, got {context!r}")


def context_backward(
    P: np.ndarray, dA: np.ndarray, size: int, context: str
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients ``(dW, db)`` of :func:`context_forward` given ``dL/dA (n, H, W, h)``."""
    if context == "conv":
        return conv_backward(P, dA, size)
    h = dA.shape[-1]
    dA2 = dA.reshape(-1, h)
    return P.reshape(-1, P.shape[-1]).T @ dA2, dA2.sum(axis=0)


# -- layers: forward and backward ----------------------------------------------------------
def mask_head_forward(
    Hc: np.ndarray, w: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mask ``m = softplus(Hc @ w + b) + MASK_FLOOR > 0`` for ``Hc (n, L, h)``; returns
    ``(m, u)``, both ``(n, L)``."""
    u = Hc @ w + b
    return softplus(u) + np.asarray(MASK_FLOOR, u.dtype), u


def mask_head_backward(
    Hc: np.ndarray, w: np.ndarray, u: np.ndarray, dm: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dw, db, dHc)`` of the mask head given ``dL/dm (n, L)``."""
    du = dm * sigmoid(u)
    dw = Hc.reshape(-1, Hc.shape[-1]).T @ du.reshape(-1)
    return dw, np.asarray(du.sum(), dtype=w.dtype), du[..., None] * w


def l2_backward(y: np.ndarray, norm: np.ndarray, g: np.ndarray, axis: int = -1) -> np.ndarray:
    """Gradient of ``y = x / norm`` (``norm = |x|`` along ``axis``) given ``dL/dy``."""
    return (g - y * np.sum(y * g, axis=axis, keepdims=True)) / norm


@dataclass
class VladCache:
    """What :func:`weighted_vlad_backward` needs from the forward pass."""

    X: np.ndarray  # (n, L, D)
    assign: np.ndarray  # (n, L, K)
    centres: np.ndarray  # (K, D)
    U: np.ndarray  # (n, K, D) intra-normalised
    unorm: np.ndarray  # (n, K, 1)
    v: np.ndarray  # (n, K*D) output
    vnorm: np.ndarray  # (n, 1)


def weighted_vlad_forward(
    X: np.ndarray, assign: np.ndarray, centres: np.ndarray, m: np.ndarray, eps: float = 1e-12
) -> tuple[np.ndarray, VladCache]:
    """Weighted NetVLAD ``(n, K*D)``: ``V_k = sum_l m_l a_l^k (x_l - c_k)``, intra-norm, L2.

    ``X (n, L, D)`` local features, ``assign (n, L, K)`` soft-assignments,
    ``centres (K, D)``, ``m (n, L)`` weights. Empty clusters stay zero.
    """
    ma = m[..., None] * assign  # (n, L, K)
    V = np.einsum("nlk,nld->nkd", ma, X, optimize=True) - ma.sum(axis=1)[..., None] * centres
    unorm = np.maximum(np.linalg.norm(V, axis=2, keepdims=True), eps)
    U = V / unorm
    flat = U.reshape(len(U), -1)
    vnorm = np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), eps)
    v = flat / vnorm
    return v, VladCache(X, assign, centres, U, unorm, v, vnorm)


def weighted_vlad_backward(cache: VladCache, dv: np.ndarray) -> np.ndarray:
    """Gradient ``dL/dm (n, L)`` of the weighted NetVLAD given ``dL/dv (n, K*D)``."""
    n, K, D = cache.U.shape
    dU = l2_backward(cache.v, cache.vnorm, dv).reshape(n, K, D)
    dV = l2_backward(cache.U, cache.unorm, dU)  # (n, K, D)
    xg = np.einsum("nld,nkd->nlk", cache.X, dV, optimize=True)
    cg = np.einsum("kd,nkd->nk", cache.centres, dV)
    return np.sum(cache.assign * (xg - cg[:, None, :]), axis=2)


def triplet_loss(
    q: np.ndarray, p: np.ndarray, negs: np.ndarray, margin: float
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Margin ranking loss and its gradients ``(loss, dq, dp, dnegs)``.

    ``loss = mean_b sum_j relu(margin + |q_b - p_b|^2 - |q_b - n_bj|^2)`` for
    ``q, p (B, d)`` and ``negs (B, J, d)``.
    """
    B = len(q)
    dpos = np.sum((q - p) ** 2, axis=1)  # (B,)
    dneg = np.sum((q[:, None, :] - negs) ** 2, axis=2)  # (B, J)
    hinge = margin + dpos[:, None] - dneg
    active = (hinge > 0).astype(q.dtype)
    loss = float(np.sum(np.maximum(hinge, 0)) / B)
    count = active.sum(axis=1, keepdims=True)  # (B, 1)
    dq = 2 * (count * (q - p) - np.einsum("bj,bjd->bd", active, q[:, None, :] - negs)) / B
    dp = -2 * count * (q - p) / B
    dnegs = 2 * active[..., None] * (q[:, None, :] - negs) / B
    return loss, dq, dp, dnegs


# -- the network ----------------------------------------------------------------------------
@dataclass
class MaskCache:
    """What :meth:`CrnNet.mask_backward` needs from the forward pass."""

    inputs: list[np.ndarray]  # per filter: (n, H, W, r) conv input or box means
    pre: list[np.ndarray]  # per filter (n, L, h) pre-activations
    hidden: np.ndarray  # (n, L, sum h)
    u: np.ndarray  # (n, L)


class CrnNet:
    """Context filters + 1x1 mask head over an ``(n, r, H, W)`` reduced feature map.

    ``params`` holds ``w{i}, b{i}`` of filter ``i`` (size ``sizes[i]``, ``widths[i]``
    outputs) and ``w_out (sum widths,)``, ``b_out (1,)``. Initialised so the mask
    starts close to 1 everywhere (``softplus(b_out) = 1``, small ``w_out``).
    """

    def __init__(
        self,
        in_dim: int,
        sizes: tuple[int, ...] = (3, 5, 7),
        widths: tuple[int, ...] = (32, 32, 20),
        context: str = "conv",
        seed: int = 0,
        dtype: type = np.float32,
    ) -> None:
        if context not in CONTEXTS:
            raise PlaceprintError(f"context must be one of {CONTEXTS}, got {context!r}")
        if len(sizes) != len(widths) or not sizes:
            raise PlaceprintError(f"give one width per context size, got {sizes} and {widths}")
        for s in sizes:
            if int(s) < 1 or int(s) % 2 == 0:
                raise PlaceprintError(f"context filter sizes must be odd and >= 1, got {s}")
        self.in_dim = int(in_dim)
        self.sizes = tuple(int(s) for s in sizes)
        self.widths = tuple(int(w) for w in widths)
        self.context = context
        rng = np.random.default_rng(seed)
        self.params: dict[str, np.ndarray] = {}
        for i, (s, h) in enumerate(zip(self.sizes, self.widths, strict=True)):
            q = self.in_dim * s * s if context == "conv" else self.in_dim
            self.params[f"w{i}"] = (rng.standard_normal((q, h)) * np.sqrt(2.0 / q)).astype(dtype)
            self.params[f"b{i}"] = np.zeros(h, dtype)
        total = sum(self.widths)
        self.params["w_out"] = (rng.standard_normal(total) * 0.01 / np.sqrt(total)).astype(dtype)
        self.params["b_out"] = np.array([np.log(np.e - 1.0)], dtype)

    def mask_forward(self, Z: np.ndarray) -> tuple[np.ndarray, MaskCache]:
        """Mask ``(n, H*W)`` (row-major locations) of ``Z (n, r, H, W)`` and the cache."""
        if Z.ndim != 4 or Z.shape[1] != self.in_dim:
            raise PlaceprintError(f"CRN input must be (n, {self.in_dim}, H, W), got {Z.shape}")
        n, _, H, W = Z.shape
        Zt = np.ascontiguousarray(Z.transpose(0, 2, 3, 1))  # (n, H, W, r)
        inputs, pre, hidden = [], [], []
        for i, s in enumerate(self.sizes):
            w, b = self.params[f"w{i}"], self.params[f"b{i}"]
            P, A = context_forward(Zt, w, b, s, self.context)
            inputs.append(P)
            pre.append(A.reshape(n, H * W, -1))
            hidden.append(np.maximum(pre[-1], 0))
        Hc = np.concatenate(hidden, axis=2)
        m, u = mask_head_forward(Hc, self.params["w_out"], self.params["b_out"][0])
        return m, MaskCache(inputs, pre, Hc, u)

    def mask(self, Z: np.ndarray) -> np.ndarray:
        """Mask ``(n, H, W)`` of ``Z (n, r, H, W)``; every value is > 0."""
        m, _ = self.mask_forward(Z)
        return m.reshape(len(Z), Z.shape[2], Z.shape[3])

    def mask_backward(self, cache: MaskCache, dm: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of every parameter given ``dL/dm (n, H*W)``."""
        grads: dict[str, np.ndarray] = {}
        dw, db, dHc = mask_head_backward(cache.hidden, self.params["w_out"], cache.u, dm)
        grads["w_out"], grads["b_out"] = dw, db.reshape(1)
        start = 0
        for i, h in enumerate(self.widths):
            dA = dHc[..., start : start + h] * (cache.pre[i] > 0)
            start += h
            dA = dA.reshape(*cache.inputs[i].shape[:3], h)
            dW, db_i = context_backward(cache.inputs[i], dA, self.sizes[i], self.context)
            grads[f"w{i}"], grads[f"b{i}"] = dW, db_i
        return grads

    def describe(
        self,
        Z: np.ndarray,
        X: np.ndarray,
        assign: np.ndarray,
        centres: np.ndarray,
        chunk: int = 256,
    ) -> np.ndarray:
        """Weighted NetVLAD descriptors ``(n, K*D)`` of precomputed inputs, in chunks."""
        out = []
        for i in range(0, len(Z), chunk):
            m, _ = self.mask_forward(Z[i : i + chunk])
            v, _ = weighted_vlad_forward(X[i : i + chunk], assign[i : i + chunk], centres, m)
            out.append(v)
        return np.concatenate(out, axis=0)


# -- training -------------------------------------------------------------------------------
class Adam:
    """Adam (Kingma & Ba 2015) over a dict of arrays, updated in place."""

    def __init__(
        self, params: dict[str, np.ndarray], lr: float = 1e-3, betas=(0.9, 0.999), eps=1e-8
    ) -> None:
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, grads: dict[str, np.ndarray], weight_decay: float = 0.0) -> None:
        """One update with ``grads`` (plus ``weight_decay * w`` on the weight matrices)."""
        self.t += 1
        b1, b2 = self.betas
        for k, p in self.params.items():
            g = grads[k] + (weight_decay * p if k.startswith("w") else 0.0)
            self.m[k] = b1 * self.m[k] + (1 - b1) * g
            self.v[k] = b2 * self.v[k] + (1 - b2) * g * g
            mhat = self.m[k] / (1 - b1**self.t)
            vhat = self.v[k] / (1 - b2**self.t)
            p -= (self.lr * mhat / (np.sqrt(vhat) + self.eps)).astype(p.dtype)


@dataclass
class CrnData:
    """Precomputed inputs of every training image (row ``i`` = image ``i``).

    ``Z (n, r, H, W)`` CRN input, ``X (n, L, D)`` local features to aggregate,
    ``assign (n, L, K)`` their soft-assignments, ``positions (n,)`` place coordinate
    (e.g. frame number) used to keep near places out of the negatives, ``pairs (p, 2)``
    rows ``(query, positive)``; negatives are drawn from the positive column's images.
    """

    Z: np.ndarray
    X: np.ndarray
    assign: np.ndarray
    positions: np.ndarray
    pairs: np.ndarray


def _scatter_add(n: int, index: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``out[index[j]] += rows[j]`` for an ``(n, d)`` zero array (repeated indices add up)."""
    order = np.argsort(index, kind="stable")
    uniq, starts = np.unique(index[order], return_index=True)
    out = np.zeros((n, rows.shape[1]), rows.dtype)
    out[uniq] = np.add.reduceat(rows[order], starts, axis=0)
    return out


def batch_loss_and_grads(
    net: CrnNet,
    data: CrnData,
    centres: np.ndarray,
    triplets: tuple[np.ndarray, np.ndarray, np.ndarray],
    margin: float,
) -> tuple[float, dict[str, np.ndarray]]:
    """Loss and parameter gradients of triplets ``(q (B,), p (B,), negs (B, J))`` (row ids)."""
    q, p, negs = triplets
    rows, inverse = np.unique(np.concatenate([q, p, negs.ravel()]), return_inverse=True)
    m, mcache = net.mask_forward(data.Z[rows])
    v, vcache = weighted_vlad_forward(data.X[rows], data.assign[rows], centres, m)
    B, J = negs.shape
    iq, ip, ineg = inverse[:B], inverse[B : 2 * B], inverse[2 * B :].reshape(B, J)
    loss, dq, dp, dn = triplet_loss(v[iq], v[ip], v[ineg], margin)
    dv = _scatter_add(
        len(v), np.concatenate([iq, ip, ineg.ravel()]), np.vstack([dq, dp, dn.reshape(B * J, -1)])
    )
    dm = weighted_vlad_backward(vcache, dv)
    return loss, net.mask_backward(mcache, dm)


def mine_negatives(
    desc: np.ndarray, data: CrnData, pairs: np.ndarray, n_neg: int, neg_gap: float
) -> np.ndarray:
    """For each pair, the ``n_neg`` database rows most similar to its query that lie more
    than ``neg_gap`` away along the route: ``(len(pairs), n_neg)`` row ids."""
    db = np.unique(data.pairs[:, 1])
    sims = desc[pairs[:, 0]] @ desc[db].T  # (p, |db|)
    near = np.abs(data.positions[pairs[:, 0]][:, None] - data.positions[db][None, :]) <= neg_gap
    sims[near] = -np.inf
    if n_neg > len(db) or np.any(np.sum(~near, axis=1) < n_neg):
        raise PlaceprintError(
            f"too few far database images to draw {n_neg} negatives per query "
            f"(gap {neg_gap}); give more places or lower n_neg"
        )
    top = np.argpartition(-sims, n_neg - 1, axis=1)[:, :n_neg]
    return db[top]


def train_crn(
    net: CrnNet,
    data: CrnData,
    centres: np.ndarray,
    *,
    epochs: int = 10,
    batch: int = 32,
    n_neg: int = 10,
    neg_gap: float = 0.0,
    margin: float = 0.1,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    seed: int = 0,
    on_epoch: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train ``net`` in place with Adam; returns the mean loss of each epoch.

    At the start of every epoch the descriptors of all images are recomputed with
    the current weights and each query's ``n_neg`` hardest far negatives are mined
    from the database side; each batch then recomputes them with the current
    weights, so the hinge keeps only the negatives still violating the margin.
    ``on_epoch(epoch, mean loss)`` is called after every epoch (progress, validation).
    """
    rng = np.random.default_rng(seed)
    opt = Adam(net.params, lr=lr)
    history = []
    for epoch in range(epochs):
        desc = net.describe(data.Z, data.X, data.assign, centres)
        negs = mine_negatives(desc, data, data.pairs, n_neg, neg_gap)
        order = rng.permutation(len(data.pairs))
        losses = []
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            q, p = data.pairs[idx, 0], data.pairs[idx, 1]
            loss, grads = batch_loss_and_grads(net, data, centres, (q, p, negs[idx]), margin)
            opt.step(grads, weight_decay)
            losses.append(loss * len(idx))
        history.append(float(np.sum(losses) / len(order)))
        if on_epoch is not None:
            on_epoch(epoch, history[-1])
    return history

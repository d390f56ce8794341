"""NetVLAD soft-assignment aggregation of local features (Arandjelovic et al., CVPR 2016).

Each local feature ``x_l`` is softly assigned to every centre ``c_k`` with weight
``a_l^k = softmax_k(-alpha ||x_l - c_k||^2)``; the residuals are summed per centre,
``V_k = sum_l w_l a_l^k (x_l - c_k)``, each ``V_k`` is L2-normalised
(intra-normalisation) and the concatenation ``(K*C,)`` is L2-normalised. The per-feature
weights ``w_l`` (default 1) let contextual re-weighting (CRN, Kim et al. 2017) plug in.
Centres come from k-means on database features; :func:`init_alpha` is NetVLAD's
initialisation rule.
"""

from __future__ import annotations

import numpy as np

from placeprint.errors import PlaceprintError


def _sq_distances(features: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``(..., m, K)`` squared Euclidean distances (float32, clipped at 0)."""
    x2 = np.einsum("...c,...c->...", features, features)[..., None]
    c2 = np.einsum("kc,kc->k", centres, centres)
    return np.maximum(x2 - 2.0 * (features @ centres.T) + c2, 0.0)


def _check(features: np.ndarray, centres: np.ndarray, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features, np.float32)
    centres = np.asarray(centres, np.float32)
    if features.ndim != ndim or centres.ndim != 2 or features.shape[-1] != centres.shape[1]:
        raise PlaceprintError(
            f"features {features.shape} and centres {centres.shape} must be "
            f"({'n, ' if ndim == 3 else ''}m, C) and (K, C)"
        )
    if not (np.all(np.isfinite(features)) and np.all(np.isfinite(centres))):
        raise PlaceprintError("features or centres contain NaN or inf")
    return features, centres


def soft_assign(features: np.ndarray, centres: np.ndarray, alpha: float) -> np.ndarray:
    """Soft assignment ``(m, K) float32`` of ``features (m, C)`` to ``centres (K, C)``:
    row-wise softmax of ``-alpha * ||x - c_k||^2``; every row sums to 1.

    >>> soft_assign(np.zeros((1, 2)), np.array([[0.0, 0.0], [1.0, 0.0]]), alpha=1e3).round(3)
    array([[1., 0.]], dtype=float32)
    """
    features, centres = _check(features, centres, 2)
    return _softmax_assign(features, centres, alpha)


def _softmax_assign(features: np.ndarray, centres: np.ndarray, alpha: float) -> np.ndarray:
    logits = -float(alpha) * _sq_distances(features, centres)
    logits -= logits.max(axis=-1, keepdims=True)
    a = np.exp(logits)
    return (a / a.sum(axis=-1, keepdims=True)).astype(np.float32)


def netvlad_aggregate_batch(
    features: np.ndarray,
    centres: np.ndarray,
    alpha: float,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """NetVLAD vectors ``(n, K*C) float32`` of ``features (n, m, C)`` (m local features
    per image), ``centres (K, C)``, optional per-feature ``weights (n, m)``."""
    features, centres = _check(features, centres, 3)
    a = _softmax_assign(features, centres, alpha)  # (n, m, K)
    if weights is not None:
        weights = np.asarray(weights, np.float32)
        if weights.shape != features.shape[:2] or not np.all(np.isfinite(weights)):
            raise PlaceprintError(
                f"weights must be finite {features.shape[:2]}, got {weights.shape}"
            )
        a = a * weights[..., None]
    # V_k = sum_l a_lk x_l - (sum_l a_lk) c_k
    v = np.einsum("nmk,nmc->nkc", a, features) - a.sum(axis=1)[..., None] * centres
    v /= np.maximum(np.linalg.norm(v, axis=2, keepdims=True), 1e-12)
    v = v.reshape(len(v), -1)
    return (v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def netvlad_aggregate(
    features: np.ndarray,
    centres: np.ndarray,
    alpha: float,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """NetVLAD vector ``(K*C,) float32`` of one image's ``features (m, C)``.

    ``V_k = sum_l w_l a_l^k (x_l - c_k)`` with ``a`` from :func:`soft_assign`, ``w``
    the optional ``weights (m,)`` (default 1); each ``V_k`` is L2-normalised (blocks that
    stay zero stay zero), then the whole vector. Block ``k`` is
    ``out[k*C:(k+1)*C]``.
    """
    features, centres = _check(features, centres, 2)
    w = None if weights is None else np.asarray(weights, np.float32)[None]
    return netvlad_aggregate_batch(features[None], centres, alpha, w)[0]


def init_alpha(features: np.ndarray, centres: np.ndarray, ratio: float = 100.0) -> float:
    """NetVLAD's initial ``alpha``: the nearest centre gets on average ``ratio`` times the
    weight of the second nearest, ``alpha = log(ratio) / mean(d2_second - d2_first)``
    (Arandjelovic et al. 2016 use ratio 100 with unit-norm features)."""
    features, centres = _check(features, centres, 2)
    if len(centres) < 2:
        raise PlaceprintError("init_alpha needs at least 2 centres")
    d2 = np.sort(_sq_distances(features, centres), axis=1)
    gap = float(np.mean(d2[:, 1] - d2[:, 0]))
    if gap <= 0:
        raise PlaceprintError("features are equidistant from their two nearest centres")
    return float(np.log(ratio) / gap)

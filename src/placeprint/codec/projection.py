"""Linear projections learned from database descriptors: PCA and a condition-invariant one.

The invariant projection needs the same places seen under two conditions (for
example summer and winter traverses of a route). It solves the generalised
eigenproblem ``C_total v = lambda C_diff v``: directions along which places
differ a lot while the two views of one place differ little (a two-class-free
form of LDA). Without pairs, plain PCA is used.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from placeprint.errors import PlaceprintError


def pca_basis(X: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA of ``X (n, d)``: returns ``mean (d,)``, ``basis (d, k)``, ``variances (k,)``."""
    X = np.asarray(X, np.float64)
    mean = X.mean(axis=0)
    k = min(n_components, X.shape[0] - 1, X.shape[1])
    if k < 1:
        raise PlaceprintError("need at least 2 descriptors to fit a projection")
    # The Gram trick keeps this fast when d >> n or n >> d.
    Xc = X - mean
    if X.shape[0] < X.shape[1]:
        gram = Xc @ Xc.T
        w, U = np.linalg.eigh(gram)
        order = np.argsort(w)[::-1][:k]
        w, U = w[order], U[:, order]
        basis = Xc.T @ U / np.sqrt(np.maximum(w, 1e-12))
    else:
        cov = Xc.T @ Xc
        w, basis = np.linalg.eigh(cov)
        order = np.argsort(w)[::-1][:k]
        w, basis = w[order], basis[:, order]
    return mean, basis, w / max(X.shape[0] - 1, 1)


def invariant_basis(
    Z_a: np.ndarray, Z_b: np.ndarray, n_components: int, regularisation: float = 1e-2
) -> np.ndarray:
    """Directions in ``Z`` space that separate places but not conditions: ``(D, k)``.

    ``Z_a`` and ``Z_b`` are ``(n, D)``: row i of each is the same place under two
    conditions. ``regularisation`` is added to the difference covariance as a
    fraction of its mean eigenvalue.
    """
    if Z_a.shape != Z_b.shape:
        raise PlaceprintError(f"paired descriptors must match: {Z_a.shape} vs {Z_b.shape}")
    Z_a = np.asarray(Z_a, np.float64)
    Z_b = np.asarray(Z_b, np.float64)
    total = np.cov(np.concatenate([Z_a, Z_b]).T)
    diff = np.cov((Z_a - Z_b).T)
    D = total.shape[0]
    diff = diff + regularisation * np.trace(diff) / D * np.eye(D)
    _, V = scipy.linalg.eigh(total, diff)
    return V[:, ::-1][:, :n_components]

"""PCA-whitening fitted on database descriptors (Jégou & Chum 2012), shared by every family.

``x -> normalise(diag(1 / sqrt(lambda + eps)) @ U.T @ (x - mean))`` keeping ``dims``
components; the ``eps`` (relative to the largest eigenvalue) damps the noisiest
directions, which plain whitening would blow up.
"""

from __future__ import annotations

import numpy as np

from placeprint.errors import PlaceprintError


def l2_normalise(X: np.ndarray, axis: int = -1) -> np.ndarray:
    """Rows (or ``axis``) scaled to unit L2 norm; all-zero rows stay zero."""
    X = np.asarray(X, dtype=np.float32)
    norm = np.linalg.norm(X, axis=axis, keepdims=True)
    return X / np.maximum(norm, 1e-12)


def power_normalise(X: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Signed power normalisation ``sign(x) |x|^alpha`` (burstiness damping)."""
    X = np.asarray(X, dtype=np.float32)
    return np.sign(X) * np.abs(X) ** alpha


def principal_axes(Xc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Principal axes ``(r, d)`` (rows) and singular values ``(r,)`` of centred ``Xc (n, d)``.

    Uses the smaller of the ``n x n`` Gram matrix and the ``d x d`` scatter matrix, which
    is much faster than an SVD when ``n`` and ``d`` differ a lot (e.g. 2,000 images of
    20,480-d NetVLAD vectors).
    """
    n, d = Xc.shape
    if n <= d:
        w, U = np.linalg.eigh((Xc @ Xc.T).astype(np.float64))
        order = np.argsort(w)[::-1]
        w, U = np.maximum(w[order], 0.0), U[:, order]
        keep = w > w[0] * 1e-9 if w[0] > 0 else np.zeros(len(w), bool)
        s = np.sqrt(w[keep])
        vt = (U[:, keep].T.astype(Xc.dtype) @ Xc) / s[:, None].astype(Xc.dtype)
        return vt, s
    w, V = np.linalg.eigh((Xc.T @ Xc).astype(np.float64))
    order = np.argsort(w)[::-1]
    return V[:, order].T, np.sqrt(np.maximum(w[order], 0.0))


class PCAWhitening:
    """Fit on ``(n, d)`` database descriptors; ``transform`` gives ``(m, dims)`` unit vectors."""

    def __init__(self, dims: int | None = 256, eps: float = 1e-3) -> None:
        if dims is not None and dims < 1:
            raise PlaceprintError(f"whitening dims must be >= 1, got {dims}")
        self.dims = dims
        self.eps = eps

    def fit(self, X: np.ndarray) -> PCAWhitening:
        """Learn mean, principal axes and scales from ``X (n, d)``; returns ``self``."""
        X = np.asarray(X, dtype=np.float32)  # float32 keeps 10^5-d VLADs in memory
        if X.ndim != 2 or len(X) < 2 or not np.all(np.isfinite(X)):
            raise PlaceprintError(f"whitening needs (n >= 2, d) finite descriptors, got {X.shape}")
        self.mean_ = X.mean(axis=0, dtype=np.float64).astype(np.float32)
        Xc = X - self.mean_
        vt, s = principal_axes(Xc)
        lam = s**2 / max(len(X) - 1, 1)
        keep = min(self.dims or len(lam), len(lam))
        self.components_ = vt[:keep].astype(np.float32)
        self.scales_ = (1.0 / np.sqrt(lam[:keep] + self.eps * lam[0] + 1e-12)).astype(np.float32)
        return self

    @property
    def output_dim(self) -> int:
        """Dimension of the whitened output."""
        return int(self.components_.shape[0])

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Whitened, L2-normalised ``(m, output_dim) float32``."""
        if not hasattr(self, "components_"):
            raise PlaceprintError("PCA-whitening is not fitted: fit it on database descriptors")
        X = np.asarray(X, dtype=np.float32)
        return l2_normalise(((X - self.mean_) @ self.components_.T) * self.scales_)

    def state(self) -> dict[str, np.ndarray]:
        """Learned arrays, for saving inside a describer's state."""
        return {"mean": self.mean_, "components": self.components_, "scales": self.scales_}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], eps: float = 1e-3) -> PCAWhitening:
        """Rebuild from ``state()``."""
        w = cls(dims=int(arrays["components"].shape[0]), eps=eps)
        w.mean_ = np.asarray(arrays["mean"], np.float32)
        w.components_ = np.asarray(arrays["components"], np.float32)
        w.scales_ = np.asarray(arrays["scales"], np.float32)
        return w


class LearnedWhitening(PCAWhitening):
    """Whitening learned from matching pairs (Radenovic, Tolias & Chum, 2018).

    ``fit(X, positives)``: rows of ``positives (m, d)`` show the same places as the
    first ``m`` rows of ``X`` under another condition. The intra-pair covariance
    ``C_S = cov(x - x+)`` is whitened first (directions in which one place changes
    between conditions are shrunk), then PCA of the whitened database keeps ``dims``
    directions in which places differ. ``eps`` regularises ``C_S`` relative to its
    mean eigenvalue. Without positives it is plain :class:`PCAWhitening`.
    """

    def fit(self, X: np.ndarray, positives: np.ndarray | None = None) -> LearnedWhitening:
        """Learn from ``X (n, d)`` and optional ``positives (m, d)``; returns ``self``."""
        if positives is None:
            super().fit(X)
            return self
        X = np.asarray(X, dtype=np.float64)
        P = np.asarray(positives, dtype=np.float64)
        if P.ndim != 2 or P.shape[1] != X.shape[1] or not 2 <= len(P) <= len(X):
            raise PlaceprintError(
                f"positives must be (m <= {len(X)}, {X.shape[1]}) rows aligned with the "
                f"first rows of the database, got {P.shape}"
            )
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(P))):
            raise PlaceprintError("whitening needs finite descriptors")
        self.mean_ = X.mean(axis=0).astype(np.float32)
        diff = X[: len(P)] - P
        d = X.shape[1]
        if len(diff) > d:
            lam, U = np.linalg.eigh(diff.T @ diff / len(diff))
            lam = np.maximum(lam, 0) + self.eps * max(float(np.mean(lam)), 1e-12)
            p_s = (U / np.sqrt(lam)) @ U.T  # C_S^{-1/2}
            whiten = lambda A: A @ p_s  # noqa: E731 - p_s is symmetric
        else:  # low rank (fewer pairs than dimensions): never form a d x d matrix
            _, sv, vt = np.linalg.svd(diff, full_matrices=False)
            lam_r, U_r = sv**2 / len(diff), vt.T  # (r,), (d, r)
            ridge = self.eps * max(float(lam_r.sum() / d), 1e-12)  # eps x mean eigenvalue
            inside = 1.0 / np.sqrt(np.maximum(lam_r, 0) + ridge) - 1.0 / np.sqrt(ridge)

            def whiten(A: np.ndarray) -> np.ndarray:
                # (C_S + ridge I)^{-1/2} = U_r diag(inside) U_r^T + I / sqrt(ridge)
                return (A @ U_r) * inside @ U_r.T + A / np.sqrt(ridge)

        Y = whiten(X - self.mean_)
        vt_y, _ = principal_axes(Y)
        keep = min(self.dims or len(vt_y), len(vt_y))
        self.components_ = whiten(vt_y[:keep]).astype(np.float32)
        self.scales_ = np.ones(keep, np.float32)
        return self

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


class PCAWhitening:
    """Fit on ``(n, d)`` database descriptors; ``transform`` gives ``(m, dims)`` unit vectors."""

    def __init__(self, dims: int | None = 256, eps: float = 1e-3) -> None:
        if dims is not None and dims < 1:
            raise PlaceprintError(f"whitening dims must be >= 1, got {dims}")
        self.dims = dims
        self.eps = eps

    def fit(self, X: np.ndarray) -> PCAWhitening:
        """Learn mean, principal axes and scales from ``X (n, d)``; returns ``self``."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or len(X) < 2 or not np.all(np.isfinite(X)):
            raise PlaceprintError(f"whitening needs (n >= 2, d) finite descriptors, got {X.shape}")
        self.mean_ = X.mean(axis=0).astype(np.float32)
        Xc = X - self.mean_
        # economy SVD: works for n < d as well as n >= d
        _, s, vt = np.linalg.svd(Xc, full_matrices=False)
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

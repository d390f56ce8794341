"""Diffusion over the database graph (Iscen, Tolias, Avrithis, Furon & Chum, CVPR 2017).

Database photos of one place lie on a manifold that a single cosine similarity follows
poorly: a query may resemble one photo of its place, which resembles the next. Diffusion
ranks by how strongly the query's similarity flows to each database row along the graph.

- ``fit``: the affinity ``a_ij = max(0, x_i . x_j) ** gamma`` between mutual ``k``-nearest
  neighbours (others 0), symmetrically normalised, ``S = D^-1/2 A D^-1/2``.
- ``search``: the query's similarities to its ``query_k`` nearest rows, to the power
  ``gamma``, are ``y``; the ranking is the solution of ``(I - alpha S) f = y`` by
  conjugate gradients (the system is symmetric positive definite for ``alpha < 1``).

Rows are L2-normalised first, so similarities are cosines. The paper's defaults:
``alpha = 0.99``, ``gamma = 3``, ``k = 50``; ``benchmarks/retrieval.py`` measures it.
"""

from __future__ import annotations

import numpy as np

from placeprint.describe.whitening import l2_normalise
from placeprint.errors import PlaceprintError


class Diffusion:
    """Rank a database by diffusion of each query's similarities over its kNN graph."""

    def __init__(
        self,
        k: int = 50,
        query_k: int = 10,
        alpha: float = 0.99,
        gamma: float = 3.0,
        max_iter: int = 20,
        tol: float = 1e-6,
    ) -> None:
        if k < 1 or query_k < 1 or max_iter < 1:
            raise PlaceprintError(f"need k, query_k, max_iter >= 1, got {k}, {query_k}, {max_iter}")
        if not 0 < alpha < 1 or not gamma > 0 or not tol > 0:
            raise PlaceprintError(
                f"need 0 < alpha < 1, gamma > 0 and tol > 0, got {alpha}, {gamma}, {tol}"
            )
        self.k = int(k)
        self.query_k = int(query_k)
        self.alpha = float(alpha)
        self.gamma = float(gamma)
        self.max_iter = int(max_iter)
        self.tol = float(tol)

    @staticmethod
    def _rows(X, what: str) -> np.ndarray:
        """``X`` checked (:func:`~placeprint.datasets.reduce.check_matrix`) and with unit rows."""
        from placeprint.datasets.reduce import check_matrix

        if np.ndim(X) == 2 and len(X) == 0:
            raise PlaceprintError(f"{what} must be a non-empty (n, d) array, got {np.shape(X)}")
        return l2_normalise(check_matrix(X, what).astype(np.float32))

    def fit(self, database: np.ndarray) -> Diffusion:
        """Build the normalised affinity graph of the database rows ``(n, d)``."""
        import scipy.sparse as sp

        X = self._rows(database, "database")
        n = len(X)
        k = min(self.k, n - 1)
        sims = X @ X.T
        np.fill_diagonal(sims, -np.inf)  # no self loops
        if k > 0:
            nbr = np.argsort(-sims, axis=1, kind="stable")[:, :k]
            rows = np.repeat(np.arange(n), k)
            vals = np.maximum(np.take_along_axis(sims, nbr, 1).ravel(), 0.0) ** self.gamma
            A = sp.csr_matrix((vals, (rows, nbr.ravel())), shape=(n, n))
            A = A.minimum(A.T)  # mutual neighbours only
        else:
            A = sp.csr_matrix((n, n))
        degree = np.asarray(A.sum(axis=1)).ravel()
        inv = np.zeros(n)
        inv[degree > 0] = 1.0 / np.sqrt(degree[degree > 0])
        self.graph_ = sp.diags(inv) @ A @ sp.diags(inv)
        self.database_ = X
        return self

    def scores(self, queries: np.ndarray) -> np.ndarray:
        """Diffusion scores ``(m, n)`` of each query over the database rows."""
        import scipy.sparse as sp
        from scipy.sparse.linalg import cg

        if not hasattr(self, "graph_"):
            raise PlaceprintError("Diffusion is not fitted: call fit(database) first")
        Q = self._rows(queries, "queries")
        if Q.shape[1] != self.database_.shape[1]:
            raise PlaceprintError(
                f"queries have {Q.shape[1]} dimensions, the database {self.database_.shape[1]}"
            )
        n = len(self.database_)
        system = sp.identity(n, format="csr") - self.alpha * self.graph_
        sims = Q @ self.database_.T
        k = min(self.query_k, n)
        out = np.zeros((len(Q), n))
        for i, s in enumerate(sims):
            top = np.argsort(-s, kind="stable")[:k]
            y = np.zeros(n)
            y[top] = np.maximum(s[top], 0.0) ** self.gamma
            if not y.any():
                continue
            f, _ = cg(system, y, rtol=self.tol, maxiter=self.max_iter)
            out[i] = f
        return out

    def search(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """``(scores (m, k), rows (m, k))``: the ``k`` best database rows per query,
        highest diffusion score first."""
        if k < 1:
            raise PlaceprintError(f"k must be >= 1, got {k}")
        f = self.scores(queries)
        rows = np.argsort(-f, axis=1, kind="stable")[:, : min(k, f.shape[1])]
        return np.take_along_axis(f, rows, 1), rows

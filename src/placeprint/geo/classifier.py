"""Descriptor -> cell softmax classifier: the PlaNet head, trained on CPU.

Training uses scikit-learn (multinomial ``LogisticRegression`` with lbfgs, or an
``MLPClassifier`` with one ReLU hidden layer, also lbfgs); prediction runs in numpy
from the extracted weights, so a fitted classifier is a handful of plain arrays
(:meth:`CellClassifier.state`) that round-trip without pickle.

Cells never seen in training get exactly ``floor`` probability each; the seen cells share
the remaining ``1 - floor * n_unseen`` in proportion to the model's softmax.

>>> rng = np.random.default_rng(0)
>>> X = np.concatenate([rng.normal(-3, 1, (20, 2)), rng.normal(3, 1, (20, 2))])
>>> cells = np.repeat([0, 2], 20)
>>> clf = CellClassifier().fit(X, cells, n_cells=3)
>>> clf.predict(np.array([[-3.0, -3.0], [3.0, 3.0]])).tolist()
[0, 2]
"""

from __future__ import annotations

import numpy as np

from placeprint.errors import PlaceprintError


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class CellClassifier:
    """Softmax over geographic cells from ``(n, d)`` descriptors.

    Parameters: ``hidden`` (``None``: linear softmax; an int: one ReLU hidden layer of
    that width), ``l2`` (penalty ``0.5 * l2 * ||W||^2`` added to the mean log loss; biases
    are not penalised), ``max_iter`` (lbfgs iterations), ``seed`` (MLP initialisation),
    ``floor`` (probability given to each cell unseen in training) and ``standardize``
    (centre and scale inputs with the training mean and std).

    Learned: ``n_cells_``, ``seen_cells_`` (sorted cells present in training), ``mean_``,
    ``scale_``, ``weights_`` / ``biases_`` (lists of layer arrays; the last layer has one
    column per seen cell) and ``model_`` (the scikit-learn estimator; ``None`` after
    :meth:`from_state`).
    """

    def __init__(
        self,
        hidden: int | None = None,
        l2: float = 1e-4,
        max_iter: int = 200,
        seed: int = 0,
        floor: float = 1e-6,
        standardize: bool = True,
    ) -> None:
        self.hidden = hidden
        self.l2 = l2
        self.max_iter = max_iter
        self.seed = seed
        self.floor = floor
        self.standardize = standardize

    # ----------------------------------------------------------------- validation
    def _check_params(self) -> None:
        if self.hidden is not None and int(self.hidden) < 1:
            raise PlaceprintError(f"hidden must be None or a width >= 1, got {self.hidden}")
        if not (np.isfinite(self.l2) and self.l2 > 0):
            raise PlaceprintError(f"l2 must be a positive number, got {self.l2}")
        if int(self.max_iter) < 1:
            raise PlaceprintError(f"max_iter must be >= 1, got {self.max_iter}")
        if not 0 <= float(self.floor) < 1:
            raise PlaceprintError(f"floor must be in [0, 1), got {self.floor}")

    @staticmethod
    def _check_x(X, d: int | None = None) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] == 0:
            raise PlaceprintError(f"X must be a non-empty (n, d) array, got shape {X.shape}")
        if d is not None and X.shape[1] != d:
            raise PlaceprintError(f"X has {X.shape[1]} columns but the model was fit on {d}")
        if not np.all(np.isfinite(X)):
            raise PlaceprintError("X contains NaN or infinite values")
        return X

    # ----------------------------------------------------------------- training
    def fit(self, X, cells, n_cells: int) -> CellClassifier:
        """Train on descriptors ``X (n, d)`` labelled with ``cells (n,)`` in ``[0, n_cells)``."""
        self._check_params()
        X = self._check_x(X)
        cells = np.asarray(cells)
        if cells.shape != (X.shape[0],) or not np.issubdtype(cells.dtype, np.integer):
            raise PlaceprintError(f"cells must be ({X.shape[0]},) integers, got {cells.shape}")
        if int(n_cells) < 2 or cells.min() < 0 or cells.max() >= int(n_cells):
            raise PlaceprintError(f"cells must lie in [0, n_cells) with n_cells >= 2 ({n_cells})")
        seen = np.unique(cells)
        if len(seen) < 2:
            raise PlaceprintError("training needs at least two distinct cells")
        if float(self.floor) * (int(n_cells) - len(seen)) >= 1:
            raise PlaceprintError("floor * (unseen cells) must be < 1: lower floor")
        if self.standardize:
            mean, scale = X.mean(axis=0), X.std(axis=0)
            scale = np.where(scale > 1e-12, scale, 1.0)
        else:
            mean, scale = np.zeros(X.shape[1]), np.ones(X.shape[1])
        Z = (X - mean) / scale
        model = self._make_model(len(Z))
        model.fit(Z, cells)  # scikit-learn warns when lbfgs stops at max_iter
        self.n_cells_, self.seen_cells_ = int(n_cells), seen.astype(np.int64)
        self.mean_, self.scale_, self.model_ = mean, scale, model
        self.weights_, self.biases_ = self._extract(model)
        return self

    def _make_model(self, n: int):
        if self.hidden is None:
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(C=1.0 / (self.l2 * n), max_iter=int(self.max_iter))
        from sklearn.neural_network import MLPClassifier

        return MLPClassifier(
            hidden_layer_sizes=(int(self.hidden),),
            solver="lbfgs",
            alpha=self.l2 * n,  # sklearn divides the penalty by n_samples
            max_iter=int(self.max_iter),
            random_state=self.seed,
        )

    @staticmethod
    def _extract(model) -> tuple[list[np.ndarray], list[np.ndarray]]:
        if hasattr(model, "coef_"):
            weights, biases = [model.coef_.T.copy()], [np.atleast_1d(model.intercept_).copy()]
        else:
            weights = [w.copy() for w in model.coefs_]
            biases = [b.copy() for b in model.intercepts_]
        if weights[-1].shape[1] == 1:  # binary: sigmoid(z) == softmax([0, z])
            weights[-1] = np.hstack([np.zeros_like(weights[-1]), weights[-1]])
            biases[-1] = np.concatenate([[0.0], biases[-1]])
        return weights, biases

    # ----------------------------------------------------------------- prediction
    def _require_fit(self) -> None:
        if not hasattr(self, "weights_"):
            raise PlaceprintError("CellClassifier is not fitted: call fit() or from_state()")

    def predict_proba(self, X) -> np.ndarray:
        """``(m, n_cells) float64`` cell probabilities; rows sum to 1."""
        self._require_fit()
        h = (self._check_x(X, len(self.mean_)) - self.mean_) / self.scale_
        for i, (w, b) in enumerate(zip(self.weights_, self.biases_, strict=True)):
            h = h @ w + b
            if i < len(self.weights_) - 1:
                h = np.maximum(h, 0.0)
        p_seen = _softmax(h)
        n_unseen = self.n_cells_ - len(self.seen_cells_)
        out = np.full((len(h), self.n_cells_), float(self.floor) if n_unseen else 0.0)
        out[:, self.seen_cells_] = p_seen * (1.0 - float(self.floor) * n_unseen)
        return out

    def predict(self, X) -> np.ndarray:
        """``(m,) int64`` most probable cell per row."""
        return np.argmax(self.predict_proba(X), axis=1).astype(np.int64)

    # ----------------------------------------------------------------- state
    def get_params(self) -> dict:
        """Constructor parameters (JSON-friendly)."""
        return {
            "hidden": self.hidden,
            "l2": float(self.l2),
            "max_iter": int(self.max_iter),
            "seed": int(self.seed),
            "floor": float(self.floor),
            "standardize": bool(self.standardize),
        }

    def state(self) -> dict[str, np.ndarray]:
        """Learned arrays: ``mean``, ``scale``, ``seen_cells``, ``n_cells``, ``w0``, ``b0``, ..."""
        self._require_fit()
        arrays = {
            "mean": self.mean_,
            "scale": self.scale_,
            "seen_cells": self.seen_cells_,
            "n_cells": np.array([self.n_cells_], dtype=np.int64),
        }
        for i, (w, b) in enumerate(zip(self.weights_, self.biases_, strict=True)):
            arrays[f"w{i}"], arrays[f"b{i}"] = w, b
        return {k: np.asarray(v).copy() for k, v in arrays.items()}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], params: dict | None = None):
        """Rebuild a fitted classifier from :meth:`state` arrays and :meth:`get_params`."""
        clf = cls(**(params or {}))
        need = {"mean", "scale", "seen_cells", "n_cells", "w0", "b0"}
        if not need <= set(arrays):
            raise PlaceprintError(f"classifier state lacks {sorted(need - set(arrays))}")
        n_layers = sum(1 for k in arrays if k.startswith("w") and k[1:].isdigit())
        try:
            weights = [np.asarray(arrays[f"w{i}"], float) for i in range(n_layers)]
            biases = [np.asarray(arrays[f"b{i}"], float) for i in range(n_layers)]
        except KeyError as exc:
            raise PlaceprintError(f"classifier state lacks layer array {exc}") from None
        clf.mean_ = np.asarray(arrays["mean"], float)
        clf.scale_ = np.asarray(arrays["scale"], float)
        clf.seen_cells_ = np.asarray(arrays["seen_cells"], np.int64)
        clf.n_cells_ = int(np.asarray(arrays["n_cells"]).ravel()[0])
        d = len(clf.mean_)
        for w, b in zip(weights, biases, strict=True):
            if w.ndim != 2 or w.shape[0] != d or b.shape != (w.shape[1],):
                raise PlaceprintError("classifier state has inconsistent layer shapes")
            d = w.shape[1]
        if d != len(clf.seen_cells_) or clf.seen_cells_.max() >= clf.n_cells_:
            raise PlaceprintError("classifier state: output layer does not match seen_cells")
        clf.weights_, clf.biases_, clf.model_ = weights, biases, None
        return clf

"""A visual vocabulary: k-means centres of local descriptors (faiss), nearest-word assignment.

>>> import numpy as np
>>> X = np.random.default_rng(0).normal(size=(500, 8)).astype(np.float32)
>>> voc = Vocabulary(k=4, seed=0).fit(X)
>>> idx, sqdist = voc.assign(X[:3], n_nearest=2)
>>> idx.shape, sqdist.shape
((3, 2), (3, 2))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from placeprint.errors import PlaceprintError


def _as_rows(X: np.ndarray, what: str) -> np.ndarray:
    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 2 or not np.all(np.isfinite(X)):
        raise PlaceprintError(f"{what} must be a finite (n, d) array, got shape {X.shape}")
    return X


class Vocabulary:
    """``k`` k-means centres ``(k, d) float32`` learned with ``faiss.Kmeans``.

    ``fit`` clusters at most ``max_samples`` rows drawn at random (``seed``) with
    ``n_iter`` Lloyd iterations; ``assign`` returns the ``n_nearest`` centres of each
    row by exact (flat) L2 search.
    """

    def __init__(self, k: int, seed: int = 0, n_iter: int = 20, max_samples: int = 200_000):
        if k < 1:
            raise PlaceprintError(f"vocabulary size k must be >= 1, got {k}")
        self.k = int(k)
        self.seed = int(seed)
        self.n_iter = int(n_iter)
        self.max_samples = int(max_samples)

    def fit(self, X: np.ndarray) -> Vocabulary:
        """Cluster descriptors ``X (n, d)``, ``n >= k``; returns ``self``."""
        import faiss

        X = _as_rows(X, "descriptors")
        if len(X) < self.k:
            raise PlaceprintError(
                f"need at least k={self.k} descriptors to learn the vocabulary, got {len(X)}: "
                "fit on more images or lower k"
            )
        if len(X) > self.max_samples:
            rng = np.random.default_rng(self.seed)
            X = X[np.sort(rng.choice(len(X), self.max_samples, replace=False))]
        km = faiss.Kmeans(
            X.shape[1],
            self.k,
            niter=self.n_iter,
            seed=self.seed,
            verbose=False,
            max_points_per_centroid=max(1, len(X) // self.k + 1),
        )
        km.train(X)
        self.set_centres(km.centroids)
        return self

    def set_centres(self, centres: np.ndarray) -> Vocabulary:
        """Use given centres ``(k, d)`` (e.g. loaded from a saved state); returns ``self``."""
        import faiss

        centres = _as_rows(centres, "centres")
        if len(centres) != self.k:
            raise PlaceprintError(f"expected {self.k} centres, got {len(centres)}")
        self.centres_ = centres
        self._index = faiss.IndexFlatL2(centres.shape[1])
        self._index.add(centres)
        return self

    @property
    def dim(self) -> int:
        """Dimension ``d`` of the descriptors (after fit)."""
        self._check()
        return int(self.centres_.shape[1])

    def _check(self) -> None:
        if not hasattr(self, "centres_"):
            raise PlaceprintError("vocabulary is not fitted: call fit(descriptors) first")

    def assign(self, X: np.ndarray, n_nearest: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Nearest centres of ``X (m, d)``: ``(idx (m, r) int64, sqdist (m, r) float32)``.

        ``r = n_nearest`` (at most ``k``), nearest first; squared L2 distances.
        """
        self._check()
        X = _as_rows(X, "descriptors")
        if X.shape[1] != self.centres_.shape[1]:
            raise PlaceprintError(
                f"descriptors have {X.shape[1]} dims, the vocabulary {self.centres_.shape[1]}"
            )
        r = max(1, min(int(n_nearest), self.k))
        if len(X) == 0:
            return np.zeros((0, r), np.int64), np.zeros((0, r), np.float32)
        sqdist, idx = self._index.search(X, r)
        return idx.astype(np.int64), np.maximum(sqdist, 0).astype(np.float32)

    def state(self) -> dict[str, np.ndarray]:
        """Learned arrays (``centres``); empty before fit."""
        return {"centres": self.centres_} if hasattr(self, "centres_") else {}


def sample_descriptors(
    features: Callable[[object], np.ndarray],
    images: Sequence,
    max_images: int,
    max_samples: int,
    seed: int = 0,
) -> np.ndarray:
    """Descriptors to learn a vocabulary from: ``(<= max_samples, d) float32``.

    ``features(image) -> (m, d)`` is called on at most ``max_images`` of ``images``
    (drawn with ``seed``); each contributes at most ``max_samples / n_images`` random
    rows, so memory stays bounded however dense the features are.
    """
    rng = np.random.default_rng(seed)
    images = list(images)
    if len(images) > max_images:
        images = [images[i] for i in np.sort(rng.choice(len(images), max_images, replace=False))]
    per_image = max(1, max_samples // max(len(images), 1))
    parts = []
    for image in images:
        desc = np.asarray(features(image), np.float32)
        if len(desc) > per_image:
            desc = desc[np.sort(rng.choice(len(desc), per_image, replace=False))]
        parts.append(desc)
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

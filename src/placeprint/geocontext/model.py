"""The geometric-context classifier: superpixel features -> P(ground, vertical, sky).

A multinomial logistic regression (scikit-learn) on standardised superpixel features
(:mod:`placeprint.geocontext.features`), each superpixel labelled by the majority class of
its pixels. Every pixel of a superpixel gets its probabilities. The fitted model is a few
arrays, saved in placeprint's checksummed container (``.ppgc``); the package ships one
trained on 1,200 renders of the synthetic training cities (:data:`DEFAULT_MODEL`, its
SHA-256 checked on load), made by ``placeprint geocontext train``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from placeprint.crossview.render import SURFACE_NAMES
from placeprint.errors import PlaceprintError
from placeprint.geocontext.features import FEATURE_NAMES, segment_features, superpixels

FILE_KIND = "placeprint-geocontext"
DEFAULT_MODEL = Path(__file__).with_name("default_model.ppgc")
DEFAULT_MODEL_SHA256 = "67fb743f700346d3e633ab86446924e2cdfe5d059746e4d5e5b708223051c0a4"


class GeometricContext:
    """``fit(images, labels)`` on labelled photos, ``predict_proba(image)`` -> ``(h, w, 3)``
    probabilities of :data:`~placeprint.crossview.render.SURFACE_NAMES` per pixel."""

    def __init__(self, segments: int = 200, compactness: float = 10.0, C: float = 1.0) -> None:
        if segments < 4 or compactness <= 0 or C <= 0:
            raise PlaceprintError("need segments >= 4, compactness > 0 and C > 0")
        self.segments = int(segments)
        self.compactness = float(compactness)
        self.C = float(C)

    # -------------------------------------------------------------- learning
    def segment_table(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(superpixels (h, w), features (m, F))`` of one image."""
        seg = superpixels(image, self.segments, self.compactness)
        return seg, segment_features(image, seg)

    def fit(
        self,
        images: Sequence[np.ndarray],
        labels: Sequence[np.ndarray],
        progress: Callable[[int, int], None] | None = None,
    ) -> GeometricContext:
        """Learn from images and their per-pixel classes (``0..2``, same ``(h, w)``)."""
        from sklearn.linear_model import LogisticRegression

        if len(images) != len(labels) or len(images) < 2:
            raise PlaceprintError("fit needs at least 2 images, each with a label map")
        rows, targets = [], []
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            seg, feats = self.segment_table(image)
            label = np.asarray(label)
            if label.shape != seg.shape or label.max() >= len(SURFACE_NAMES):
                raise PlaceprintError(f"label map {i} must be {seg.shape} with classes 0-2")
            votes = np.zeros((feats.shape[0], len(SURFACE_NAMES)), np.int64)
            np.add.at(votes, (seg.ravel(), label.ravel().astype(np.int64)), 1)
            rows.append(feats)
            targets.append(votes.argmax(axis=1))
            if progress:
                progress(i + 1, len(images))
        X, y = np.vstack(rows).astype(np.float64), np.concatenate(targets)
        if len(np.unique(y)) < len(SURFACE_NAMES):
            raise PlaceprintError("the training labels must hold all three classes")
        self.mean_ = X.mean(axis=0)
        self.scale_ = np.where(X.std(axis=0) > 1e-9, X.std(axis=0), 1.0)
        clf = LogisticRegression(C=self.C, max_iter=3000)
        clf.fit((X - self.mean_) / self.scale_, y)
        self.coef_ = clf.coef_.astype(np.float64)
        self.intercept_ = clf.intercept_.astype(np.float64)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise PlaceprintError("the geometric-context model is not fitted (fit or load one)")

    # ------------------------------------------------------------ predicting
    def segment_proba(self, features: np.ndarray) -> np.ndarray:
        """``(m, 3)`` class probabilities of superpixel feature rows."""
        self._check_fitted()
        z = ((np.asarray(features, np.float64) - self.mean_) / self.scale_) @ self.coef_.T
        z += self.intercept_
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def predict_proba(self, image: np.ndarray) -> np.ndarray:
        """``(h, w, 3) float32`` per-pixel probabilities of ground, vertical, sky."""
        seg, feats = self.segment_table(image)
        return self.segment_proba(feats)[seg].astype(np.float32)

    def predict(self, image: np.ndarray) -> np.ndarray:
        """``(h, w) uint8`` most probable class of every pixel."""
        return self.predict_proba(image).argmax(axis=2).astype(np.uint8)

    # ---------------------------------------------------------------- files
    def save(self, path: str | Path) -> int:
        """Write the fitted model (atomically); returns the bytes written."""
        from placeprint.index.fileformat import write_container

        self._check_fitted()
        meta = {
            "segments": self.segments,
            "compactness": self.compactness,
            "C": self.C,
            "features": list(FEATURE_NAMES),
            "classes": list(SURFACE_NAMES),
        }
        arrays = {
            "mean": self.mean_,
            "scale": self.scale_,
            "coef": self.coef_,
            "intercept": self.intercept_,
        }
        return write_container(path, FILE_KIND, meta, arrays)

    @classmethod
    def load(cls, path: str | Path | None = None) -> GeometricContext:
        """A saved model; without ``path``, the shipped one (its SHA-256 checked)."""
        from placeprint.index.fileformat import read_container

        if path is None:
            path = default_model_path()
        path = Path(path)
        if not path.is_file():
            raise PlaceprintError(f"geometric-context model not found: {path}")
        meta, arrays, _ = read_container(path, FILE_KIND)
        if list(meta.get("features", [])) != list(FEATURE_NAMES):
            raise PlaceprintError(f"{path} was trained on other features; retrain it")
        model = cls(meta["segments"], meta["compactness"], meta["C"])
        model.mean_ = np.array(arrays["mean"], np.float64)
        model.scale_ = np.array(arrays["scale"], np.float64)
        model.coef_ = np.array(arrays["coef"], np.float64)
        model.intercept_ = np.array(arrays["intercept"], np.float64)
        if model.coef_.shape != (len(SURFACE_NAMES), len(FEATURE_NAMES)):
            raise PlaceprintError(f"{path}: model arrays have the wrong shape")
        return model


def default_model_path() -> Path:
    """The shipped model, after checking its SHA-256."""
    from placeprint.describe.mobilenet_weights import sha256_file

    if not DEFAULT_MODEL.is_file():
        raise PlaceprintError(
            f"the shipped geometric-context model is missing ({DEFAULT_MODEL}); reinstall "
            "placeprint or make one with `placeprint geocontext train`"
        )
    digest = sha256_file(DEFAULT_MODEL)
    if DEFAULT_MODEL_SHA256 and digest != DEFAULT_MODEL_SHA256:
        raise PlaceprintError(
            f"{DEFAULT_MODEL} has SHA-256 {digest[:16]}..., expected "
            f"{DEFAULT_MODEL_SHA256[:16]}...: the file is damaged; reinstall placeprint"
        )
    return DEFAULT_MODEL


def pixel_accuracy(model: GeometricContext, images, labels) -> dict:
    """Share of pixels whose most probable class is right, overall and per class, and the
    ``(3, 3)`` confusion matrix (rows: truth, columns: prediction; pixel counts)."""
    confusion = np.zeros((3, 3), np.int64)
    for image, label in zip(images, labels, strict=True):
        pred = model.predict(image)
        np.add.at(confusion, (np.asarray(label).ravel(), pred.ravel()), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    return {
        "pixel_accuracy": float(confusion.diagonal().sum() / confusion.sum()),
        "per_class": {n: float(a) for n, a in zip(SURFACE_NAMES, per_class, strict=True)},
        "confusion": confusion.tolist(),
    }

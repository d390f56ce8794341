"""Geometric context as a describer: where an image shows ground, vertical surfaces and
sky, pooled on a grid (Hoiem et al.; one of the IM2GPS cues of Hays & Efros).

The image is shrunk to ``work_side`` pixels on its longer side, classified by the shipped
geometric-context model (:mod:`placeprint.geocontext.model`, or ``model`` = a file made
by ``placeprint geocontext train``) and the per-pixel probabilities are averaged over a
``grid x grid`` layout: ``(3 * grid^2,)`` values in [0, 1], class-major (ground cells,
then vertical, then sky).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from placeprint.describe.base import Describer
from placeprint.describe.color import ImageViews
from placeprint.errors import PlaceprintError


def pooled_classes(proba: np.ndarray, grid: int) -> np.ndarray:
    """``(h, w, c)`` probabilities -> ``(c * grid^2,) float32``: the mean of each class over
    each cell of a ``grid x grid`` layout (cells split the pixels as evenly as they can)."""
    h, w, c = proba.shape
    rows = np.minimum((np.arange(h) * grid) // h, grid - 1)
    cols = np.minimum((np.arange(w) * grid) // w, grid - 1)
    cell = (rows[:, None] * grid + cols[None, :]).ravel()
    counts = np.bincount(cell, minlength=grid * grid).astype(np.float64)
    flat = proba.reshape(-1, c)
    sums = np.stack(
        [np.bincount(cell, weights=flat[:, k], minlength=grid * grid) for k in range(c)]
    )
    return (sums / np.maximum(counts, 1)).reshape(-1).astype(np.float32)


class GeoContextDescriber(Describer):
    """Pooled ground / vertical / sky probabilities: ``(n, 3 * grid^2) float32``."""

    name = "geocontext"
    learns = False

    def __init__(self, grid: int = 4, work_side: int = 160, model: str | None = None) -> None:
        if not 1 <= int(grid) <= 16 or int(work_side) < 32:
            raise PlaceprintError(f"need grid 1-16 and work_side >= 32, got {grid}, {work_side}")
        self.grid = int(grid)
        self.work_side = int(work_side)
        self.model = model
        self._model = None

    @property
    def dim(self) -> int:
        return 3 * self.grid * self.grid

    def params(self) -> dict:
        """Options that change the output."""
        return {"grid": self.grid, "work_side": self.work_side, "model": self.model}

    def classifier(self):
        """The geometric-context model (loaded once)."""
        if self._model is None:
            from placeprint.geocontext.model import GeometricContext

            self._model = GeometricContext.load(self.model)
        return self._model

    def class_maps(self, views: ImageViews) -> np.ndarray:
        """``(h, w, 3)`` probabilities at working size of one loaded image."""
        rgb = views.rgb
        scale = self.work_side / max(rgb.shape[:2])
        if scale < 1:
            size = (max(8, round(rgb.shape[1] * scale)), max(8, round(rgb.shape[0] * scale)))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        image = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
        return self.classifier().predict_proba(image)

    def describe_views(self, views: ImageViews) -> np.ndarray:
        """``(dim,) float32`` of one loaded image."""
        return pooled_classes(self.class_maps(views), self.grid)

    def describe(self, images: Sequence[str | Path | np.ndarray]) -> np.ndarray:
        """Descriptors ``(n, dim) float32``."""
        return np.stack([self.describe_views(ImageViews.load(im, None)) for im in images])

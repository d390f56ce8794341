"""The colour tiny image (Torralba et al. 2008; IM2GPS's "tiny images" feature).

The whole image is shrunk (area averaging, aspect ratio not kept, so the full field
of view is used) to ``size x size x 3`` and normalised per image to zero mean and
unit L2 norm over all ``3 * size^2`` values. Removing the mean and the norm cancels a
global brightness offset and contrast gain (exposure, time of day) while keeping
the colour balance and layout; L2 between two such vectors is then a monotone
function of their normalised correlation. A flat image gives the zero vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from placeprint.describe.base import Describer
from placeprint.describe.color import DEFAULT_MAX_SIDE, ImageViews, check_max_side
from placeprint.errors import PlaceprintError


def tiny_image(rgb: np.ndarray, size: int = 16) -> np.ndarray:
    """``(h, w, 3)`` image -> ``(size * size * 3,) float32``, zero mean and unit L2 norm.

    Layout is row-major ``(y, x, channel)``; flat images give zeros.
    """
    rgb = np.ascontiguousarray(rgb, dtype=np.float32)
    interp = cv2.INTER_AREA if min(rgb.shape[:2]) >= size else cv2.INTER_LINEAR
    small = cv2.resize(rgb, (size, size), interpolation=interp).reshape(-1).astype(np.float64)
    small -= small.mean()
    norm = np.linalg.norm(small)
    flat = norm < 1e-3 * np.sqrt(small.size)  # rms below 1e-3 grey levels: resampling noise
    return (np.zeros_like(small) if flat else small / norm).astype(np.float32)


class TinyImageDescriber(Describer):
    """``size x size`` colour thumbnail, zero mean / unit norm: ``(n, 3 * size^2) float32``.

    >>> TinyImageDescriber().dim
    768
    """

    name = "tiny"
    learns = False

    def __init__(self, size: int = 16, max_side: int | None = DEFAULT_MAX_SIDE) -> None:
        if int(size) < 2:
            raise PlaceprintError(f"tiny image size must be >= 2 pixels, got {size}")
        self.size = int(size)
        self.max_side = check_max_side(max_side)

    @property
    def dim(self) -> int:
        return 3 * self.size * self.size

    def params(self) -> dict:
        """Options that change the output."""
        return {"size": self.size, "max_side": self.max_side}

    def describe_views(self, views: ImageViews) -> np.ndarray:
        """``(dim,) float32`` of one loaded image."""
        return tiny_image(views.rgb, self.size)

    def describe(self, images: Sequence[str | Path | np.ndarray]) -> np.ndarray:
        """Descriptors ``(n, dim) float32``."""
        return np.stack([self.describe_views(ImageViews.load(im, self.max_side)) for im in images])

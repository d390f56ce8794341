"""The SeqSLAM place descriptor: grayscale, downsample, patch normalisation.

Milford & Wyeth (ICRA 2012): each image is reduced to a small grayscale
thumbnail and every ``patch x patch`` block is normalised to zero mean and unit
standard deviation, which removes most of the illumination change between
traverses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from placeprint.describe.images import load_gray_batch
from placeprint.errors import PlaceprintError


def patch_normalise(images: np.ndarray, patch: int) -> np.ndarray:
    """Normalise each ``patch x patch`` block of ``(n, h, w)`` images to mean 0, std 1.

    ``h`` and ``w`` must be multiples of ``patch``. Flat blocks (std 0) become 0.
    """
    n, h, w = images.shape
    if h % patch or w % patch:
        raise PlaceprintError(f"image size {w}x{h} is not a multiple of patch size {patch}")
    blocks = images.reshape(n, h // patch, patch, w // patch, patch).astype(np.float32)
    mean = blocks.mean(axis=(2, 4), keepdims=True)
    std = blocks.std(axis=(2, 4), keepdims=True)
    out = np.where(std > 1e-6, (blocks - mean) / np.maximum(std, 1e-6), 0.0)
    return out.reshape(n, h, w).astype(np.float32)


@dataclass(frozen=True)
class SeqSLAMDescriber:
    """Patch-normalised thumbnail: ``(n, width*height) float32`` per image batch."""

    width: int = 64
    height: int = 32
    patch: int = 8
    name: str = "seqslam"

    @property
    def dim(self) -> int:
        return self.width * self.height

    def config(self) -> dict:
        """Everything that changes the output (used for caching and ``info``)."""
        return {"name": self.name, "width": self.width, "height": self.height, "patch": self.patch}

    def __call__(self, images: Sequence[str | Path | np.ndarray]) -> np.ndarray:
        if len(images) == 0:
            return np.zeros((0, self.dim), np.float32)
        gray = load_gray_batch(images, (self.width, self.height))
        return patch_normalise(gray, self.patch).reshape(len(images), self.dim)

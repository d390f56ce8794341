"""HOG windows: every image becomes a set of overlapping patch descriptors.

An image is turned grey, resized to ``size = (w, h)``, described by HOG (scikit-image:
``cell`` pixels a cell, 2 x 2 cells a block, 9 orientations, L2-Hys), and every
``window x window`` group of blocks is one patch: ``(patches, window^2 * 36)``, with the
patch's top-left block ``(row, col)``. The whole image's HOG (all blocks) is the
whole-image feature the mid-level elements are compared against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from placeprint.errors import PlaceprintError


@dataclass(frozen=True)
class HogLayout:
    """How images become patches: working ``size`` (w, h), ``cell`` pixels, ``window``
    blocks a side."""

    size: tuple[int, int] = (128, 64)
    cell: int = 8
    window: int = 4

    @classmethod
    def from_dict(cls, d: dict) -> HogLayout:
        """The layout ``dataclasses.asdict`` gave (as a file stores it)."""
        return cls(tuple(d["size"]), int(d["cell"]), int(d["window"]))

    def blocks(self) -> tuple[int, int]:
        """Blocks down and across an image."""
        return self.size[1] // self.cell - 1, self.size[0] // self.cell - 1

    def check(self) -> None:
        by, bx = self.blocks()
        if self.cell < 4 or self.window < 1 or min(by, bx) < self.window:
            raise PlaceprintError(
                f"a {self.size[0]}x{self.size[1]} image with {self.cell}-pixel cells has "
                f"{bx}x{by} blocks: too few for {self.window}-block windows"
            )

    def positions(self) -> np.ndarray:
        """``(patches, 2)`` top-left block ``(row, col)`` of every patch."""
        by, bx = self.blocks()
        r, c = np.mgrid[0 : by - self.window + 1, 0 : bx - self.window + 1]
        return np.stack([r.ravel(), c.ravel()], axis=1)


def hog_blocks(image, layout: HogLayout) -> np.ndarray:
    """``(by, bx, 36) float32`` HOG blocks of one image (path or array)."""
    from skimage.feature import hog

    from placeprint.describe.images import load_gray

    grey = load_gray(image, layout.size) / 255.0
    blocks = hog(
        grey,
        orientations=9,
        pixels_per_cell=(layout.cell, layout.cell),
        cells_per_block=(2, 2),
        block_norm="L2-Hys",
        feature_vector=False,
    )
    return blocks.reshape(blocks.shape[0], blocks.shape[1], -1).astype(np.float32)


def patches(blocks: np.ndarray, layout: HogLayout) -> np.ndarray:
    """``(patches, window^2 * 36)``: every window of ``blocks``, in :meth:`positions` order."""
    from numpy.lib.stride_tricks import sliding_window_view

    w = layout.window
    win = sliding_window_view(blocks, (w, w), axis=(0, 1))  # (r, c, 36, w, w)
    win = np.moveaxis(win, 2, -1)  # (r, c, w, w, 36)
    return np.ascontiguousarray(win.reshape(-1, w * w * blocks.shape[-1]))


def describe_images(images, layout: HogLayout) -> tuple[np.ndarray, np.ndarray]:
    """``(patches (n, p, d) float32, whole-image HOG (n, by * bx * 36) float32)``."""
    layout.check()
    out_p, out_w = [], []
    for image in images:
        b = hog_blocks(image, layout)
        out_p.append(patches(b, layout))
        out_w.append(b.reshape(-1))
    return np.stack(out_p), np.stack(out_w)

"""Straight-line statistics (IM2GPS's line features): angle and length histograms.

Canny edges of the grey image (thresholds set per image from the gradient
distribution, so low-contrast winter or dusk images still give edges), then
straight segments by OpenCV's probabilistic Hough transform (deterministic: OpenCV
seeds it). Two histograms are concatenated:

- angle: ``angle_bins`` bins over [0, 180) degrees (undirected, 0 = horizontal, image
  y pointing down), each segment weighted by its length so that a long line broken
  into pieces counts the same; with an odd bin count vertical lines (90 degrees)
  fall in the middle of a bin,
- length: ``length_bins`` bins of ``log(length / diagonal)`` between ``min_length``
  (a fraction of the diagonal) and the full diagonal, counting segments.

Each half sums to 1 (both are zero when no line is found); compare with chi2.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from placeprint.describe.base import Describer
from placeprint.describe.color import DEFAULT_MAX_SIDE, ImageViews, check_max_side
from placeprint.describe.histograms import apply_map, check_feature_map, map_dim, normalise_sum
from placeprint.errors import PlaceprintError


def detect_lines(gray: np.ndarray, min_length: float = 0.03) -> np.ndarray:
    """Straight segments ``(m, 4) float32`` rows ``(x1, y1, x2, y2)`` in pixels.

    ``gray (h, w)`` in [0, 255]. Canny's high threshold is the 90th percentile of the
    Sobel gradient magnitude (at least 20), the low one 40 % of it; segments shorter
    than ``min_length`` times the diagonal (and 5 pixels) are dropped.
    """
    img = np.clip(np.asarray(gray, dtype=np.float32), 0, 255).round().astype(np.uint8)
    h, w = img.shape
    diag = float(np.hypot(h, w))
    blurred = cv2.GaussianBlur(img, (0, 0), 1.0)
    gx = cv2.Sobel(blurred, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(blurred, cv2.CV_32F, 0, 1, ksize=3)
    high = max(float(np.percentile(np.hypot(gx, gy), 90)), 20.0)
    edges = cv2.Canny(blurred, 0.4 * high, high, L2gradient=True)
    length = max(5.0, min_length * diag)
    segs = cv2.HoughLinesP(
        edges,
        rho=1,
        theta=np.pi / 180,
        threshold=max(5, int(round(0.8 * length))),
        minLineLength=length,
        maxLineGap=max(2.0, 0.01 * diag),
    )
    return np.zeros((0, 4), np.float32) if segs is None else segs.reshape(-1, 4).astype(np.float32)


def line_histograms(
    segments: np.ndarray,
    diagonal: float,
    angle_bins: int = 17,
    length_bins: int = 17,
    min_length: float = 0.03,
) -> np.ndarray:
    """``[angle histogram (angle_bins), length histogram (length_bins)] float32``.

    ``segments (m, 4)`` as from :func:`detect_lines`, ``diagonal`` in pixels. Each half
    sums to 1, or is all zero when there are no segments.
    """
    seg = np.asarray(segments, dtype=np.float64).reshape(-1, 4)
    dx, dy = seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1]
    length = np.hypot(dx, dy)
    angle = np.mod(np.arctan2(dy, dx), np.pi)
    a_idx = np.minimum((angle * (angle_bins / np.pi)).astype(np.int64), angle_bins - 1)
    angles = np.bincount(a_idx, weights=length, minlength=angle_bins)
    lo = np.log(min_length)
    rel = np.log(np.maximum(length / diagonal, 1e-12))
    l_idx = np.clip(np.floor((rel - lo) / -lo * length_bins), 0, length_bins - 1).astype(np.int64)
    lengths = np.bincount(l_idx, minlength=length_bins)
    return np.concatenate([normalise_sum(angles), normalise_sum(lengths)]).astype(np.float32)


class LineDescriber(Describer):
    """Line angle + length histograms: ``(n, angle_bins + length_bins) float32``.

    Images are shrunk to ``max_side`` on the longer side. ``min_length`` is the shortest
    segment kept, as a fraction of the image diagonal.
    """

    name = "lines"
    learns = False

    def __init__(
        self,
        angle_bins: int = 17,
        length_bins: int = 17,
        min_length: float = 0.03,
        max_side: int | None = DEFAULT_MAX_SIDE,
        feature_map: str = "none",
    ) -> None:
        if int(angle_bins) < 1 or int(length_bins) < 1 or not 0 < min_length < 1:
            raise PlaceprintError(
                "line options: angle_bins >= 1, length_bins >= 1, 0 < min_length < 1 "
                f"(got {angle_bins}, {length_bins}, {min_length})"
            )
        check_feature_map(feature_map)
        self.angle_bins = int(angle_bins)
        self.length_bins = int(length_bins)
        self.min_length = float(min_length)
        self.max_side = check_max_side(max_side)
        self.feature_map = feature_map

    @property
    def dim(self) -> int:
        return map_dim(self.angle_bins + self.length_bins, self.feature_map)

    def params(self) -> dict:
        """Options that change the output."""
        return {
            "angle_bins": self.angle_bins,
            "length_bins": self.length_bins,
            "min_length": self.min_length,
            "max_side": self.max_side,
            "feature_map": self.feature_map,
        }

    def histogram(self, views: ImageViews) -> np.ndarray:
        """Raw ``(angle_bins + length_bins,) float32`` histograms of one loaded image."""
        segments = detect_lines(views.gray, self.min_length)
        diag = float(np.hypot(*views.gray.shape))
        return line_histograms(segments, diag, self.angle_bins, self.length_bins, self.min_length)

    def describe(self, images: Sequence[str | Path | np.ndarray]) -> np.ndarray:
        """Descriptors ``(n, dim) float32``."""
        hists = np.stack([self.histogram(ImageViews.load(im, self.max_side)) for im in images])
        return apply_map(hists, self.feature_map)

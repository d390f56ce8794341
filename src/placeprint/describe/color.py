"""Colour: sRGB -> CIE L*a*b*, the IM2GPS joint L*a*b* histogram, and shared image views.

Hays & Efros (CVPR 2008) compare images by a joint L*a*b* histogram with 4, 14 and
14 bins (784 bins) under the chi2 distance. Bins are uniform over L in [0, 100] and
a, b over the sRGB gamut (a in [-86.2, 98.3], b in [-107.9, 94.5]); with these
ranges the neutral axis a = b = 0 falls inside a bin (not on an edge), so grey
pixels are binned stably.

:class:`ImageViews` loads an image once at working resolution and computes grey and
L*a*b* versions on demand, so the IM2GPS combination reads and converts each image once.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from placeprint.describe.base import Describer, ImageLike
from placeprint.describe.histograms import apply_map, check_feature_map, map_dim, normalise_sum
from placeprint.describe.images import load_rgb
from placeprint.errors import PlaceprintError

# sRGB (D65) linear RGB -> XYZ, and the D65 reference white (as in scikit-image / IEC 61966-2-1)
_RGB_TO_XYZ = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
LAB_RANGES = ((0.0, 100.0), (-86.2, 98.3), (-107.9, 94.5))
GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)
DEFAULT_MAX_SIDE = 320


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) of sRGB colours ``(..., 3)`` in [0, 255] -> ``(..., 3) float32``.

    L is in [0, 100]; a and b are unbounded in principle (about [-86, 98] and
    [-108, 95] over the sRGB gamut). White gives (100, 0, 0).
    """
    rgb = np.asarray(rgb, dtype=np.float32)
    if rgb.shape[-1:] != (3,):
        raise PlaceprintError(f"rgb_to_lab needs (..., 3) colours, got {rgb.shape}")
    c = np.clip(rgb, 0, 255) / np.float32(255)
    linear = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    xyz = linear @ (_RGB_TO_XYZ / _WHITE_D65[:, None]).T.astype(np.float32)
    eps = (6 / 29) ** 3
    f = np.where(xyz > eps, np.cbrt(np.maximum(xyz, eps)), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    L = 116 * f[..., 1] - 16
    a = 500 * (f[..., 0] - f[..., 1])
    b = 200 * (f[..., 1] - f[..., 2])
    return np.stack([L, a, b], axis=-1).astype(np.float32)


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """Luma ``0.299 R + 0.587 G + 0.114 B`` of ``(h, w, 3)`` -> ``(h, w) float32`` in [0, 255]."""
    return np.asarray(rgb, dtype=np.float32) @ GRAY_WEIGHTS


def lab_histogram(
    lab: np.ndarray,
    bins: tuple[int, int, int] = (4, 14, 14),
    ranges: tuple[tuple[float, float], ...] = LAB_RANGES,
) -> np.ndarray:
    """Joint histogram of L*a*b* pixels ``(..., 3)`` -> ``(bL * ba * bb,) float32`` summing to 1.

    Uniform bins over ``ranges``; values outside fall into the end bins. Index order is
    ``(L, a, b)`` row-major, i.e. ``hist.reshape(bins)[iL, ia, ib]``.
    """
    pixels = np.asarray(lab, dtype=np.float32).reshape(-1, 3)
    flat = np.zeros(len(pixels), np.int64)
    for channel, (n, (lo, hi)) in enumerate(zip(bins, ranges, strict=True)):
        idx = np.floor((pixels[:, channel] - lo) * (n / (hi - lo))).astype(np.int64)
        flat = flat * n + np.clip(idx, 0, n - 1)
    counts = np.bincount(flat, minlength=int(np.prod(bins))).astype(np.float32)
    return normalise_sum(counts)


class ImageViews:
    """One image at working resolution: ``rgb (h, w, 3)``, and lazily ``gray`` and ``lab``.

    All float32; ``rgb`` and ``gray`` in [0, 255].
    """

    def __init__(self, rgb: np.ndarray) -> None:
        self.rgb = np.asarray(rgb, dtype=np.float32)

    @classmethod
    def load(cls, image: ImageLike, max_side: int | None) -> ImageViews:
        """Read a path or array, shrunk (never enlarged) to ``max_side`` on its longer side."""
        if (
            isinstance(image, np.ndarray)
            and max_side is not None
            and max(image.shape[:2]) <= max_side
        ):
            max_side = None  # small arrays as they are (load_rgb would round them to uint8)
        return cls(load_rgb(image, max_side=max_side))

    @cached_property
    def gray(self) -> np.ndarray:
        """``(h, w) float32`` luma in [0, 255]."""
        return rgb_to_gray(self.rgb)

    @cached_property
    def lab(self) -> np.ndarray:
        """``(h, w, 3) float32`` CIE L*a*b*."""
        return rgb_to_lab(self.rgb)


def check_max_side(max_side: int | None) -> int | None:
    """Validate a working-resolution option (None = keep full size)."""
    if max_side is not None and int(max_side) < 16:
        raise PlaceprintError(f"max_side must be >= 16 pixels (or None), got {max_side}")
    return None if max_side is None else int(max_side)


class LabHistogramDescriber(Describer):
    """Joint CIE L*a*b* histogram (4 x 14 x 14 = 784 bins by default) summing to 1.

    Compare outputs with :func:`placeprint.describe.histograms.chi2_distance`, or set
    ``feature_map="sqrt"`` (or ``"chi2"``) to get vectors meant for L2.
    Images are first shrunk to ``max_side`` pixels on the longer side.

    >>> LabHistogramDescriber().dim
    784
    """

    name = "lab_hist"
    learns = False

    def __init__(
        self,
        bins: Sequence[int] = (4, 14, 14),
        max_side: int | None = DEFAULT_MAX_SIDE,
        feature_map: str = "none",
    ) -> None:
        bins = tuple(int(b) for b in bins)
        if len(bins) != 3 or min(bins) < 1:
            raise PlaceprintError(f"bins must be three positive counts (L, a, b), got {bins}")
        check_feature_map(feature_map)
        self.bins = bins
        self.max_side = check_max_side(max_side)
        self.feature_map = feature_map

    @property
    def dim(self) -> int:
        return map_dim(int(np.prod(self.bins)), self.feature_map)

    def params(self) -> dict:
        """Options that change the output."""
        return {"bins": list(self.bins), "max_side": self.max_side, "feature_map": self.feature_map}

    def histogram(self, views: ImageViews) -> np.ndarray:
        """The raw histogram ``(prod(bins),) float32`` (sums to 1) of one loaded image."""
        return lab_histogram(views.lab, self.bins)

    def describe(self, images: Sequence[str | Path | np.ndarray]) -> np.ndarray:
        """Descriptors ``(n, dim) float32``."""
        hists = np.stack([self.histogram(ImageViews.load(im, self.max_side)) for im in images])
        return apply_map(hists, self.feature_map)

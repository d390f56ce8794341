"""Superpixels and what describes each: colour, texture, position and shape (the cues of
Hoiem et al.: "sky is blue, bright and high; ground is low and smooth; vertical surfaces
have vertical edges").

:func:`superpixels` splits an image with SLIC (scikit-image); :func:`segment_features`
gives one row per superpixel:

- colour: mean R, G, B; mean hue (as cos, sin), saturation, value; grey standard deviation
  (7 + 1);
- texture: mean gradient magnitude, the share of gradient energy that is horizontal,
  vertical and diagonal, mean absolute Laplacian (5);
- position: mean x, mean y, the 10th and 90th percentile of y (nearest rank), y^2 (image
  fractions), and the mean y relative to the image's brightest-row horizon guess (5 + 1);
- shape: area share, the 10-90 % height and the full width of the superpixel (3).
"""

from __future__ import annotations

import numpy as np

from placeprint.errors import PlaceprintError

FEATURE_NAMES = (
    "r", "g", "b", "hue_cos", "hue_sin", "saturation", "value", "grey_std",
    "gradient", "grad_horizontal", "grad_vertical", "grad_diagonal", "laplacian",
    "x", "y", "y10", "y90", "y2", "y_above_bright_band",
    "area", "box_height", "box_width",
)  # fmt: skip


def check_image(image: np.ndarray) -> np.ndarray:
    """``(h, w, 3) uint8`` (a grey ``(h, w)`` image is repeated into three channels)."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or min(image.shape[:2]) < 8:
        raise PlaceprintError(f"expected an (h, w, 3) image of at least 8 x 8, got {image.shape}")
    if image.dtype != np.uint8:
        image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return image[..., :3]


def superpixels(image: np.ndarray, segments: int = 200, compactness: float = 10.0) -> np.ndarray:
    """``(h, w) int64`` superpixel labels ``0..m-1`` (SLIC on L*a*b*)."""
    from skimage.segmentation import slic

    image = check_image(image)
    labels = slic(image, n_segments=segments, compactness=compactness, start_label=0)
    _, labels = np.unique(labels, return_inverse=True)
    return labels.reshape(image.shape[:2]).astype(np.int64)


def _means(values: np.ndarray, labels: np.ndarray, counts: np.ndarray) -> np.ndarray:
    return np.bincount(labels, weights=values.ravel(), minlength=len(counts)) / counts


def segment_features(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``(m, len(FEATURE_NAMES)) float32``: one row per superpixel of ``labels``."""
    from scipy.ndimage import laplace, sobel
    from skimage.color import rgb2hsv

    image = check_image(image)
    h, w = labels.shape
    if image.shape[:2] != (h, w):
        raise PlaceprintError(f"image {image.shape[:2]} and superpixels {labels.shape} differ")
    flat = labels.ravel()
    m = int(flat.max()) + 1
    counts = np.maximum(np.bincount(flat, minlength=m).astype(np.float64), 1.0)
    rgb = image.astype(np.float64) / 255.0
    hsv = rgb2hsv(rgb)
    grey = rgb @ np.array([0.299, 0.587, 0.114])
    gx, gy = sobel(grey, axis=1), sobel(grey, axis=0)
    energy = gx**2 + gy**2
    total = _means(energy, flat, counts) + 1e-12  # shares of each superpixel's energy:
    yy, xx = np.mgrid[0:h, 0:w]
    yf, xf = (yy + 0.5) / h, (xx + 0.5) / w
    row_brightness = grey.mean(axis=1)
    band = (np.argmax(row_brightness) + 0.5) / h  # a rough horizon: the brightest row
    feats = [
        _means(rgb[..., 0], flat, counts),
        _means(rgb[..., 1], flat, counts),
        _means(rgb[..., 2], flat, counts),
        _means(np.cos(2 * np.pi * hsv[..., 0]) * hsv[..., 1], flat, counts),
        _means(np.sin(2 * np.pi * hsv[..., 0]) * hsv[..., 1], flat, counts),
        _means(hsv[..., 1], flat, counts),
        _means(hsv[..., 2], flat, counts),
    ]
    mean_grey = _means(grey, flat, counts)
    feats.append(np.sqrt(np.maximum(_means(grey**2, flat, counts) - mean_grey**2, 0)))
    feats += [
        _means(np.sqrt(energy), flat, counts),
        _means(gy**2, flat, counts) / total,  # horizontal edges (change along y)
        _means(gx**2, flat, counts) / total,  # vertical edges
        _means(np.abs(gx * gy), flat, counts) / total,  # diagonal: both derivatives large
        _means(np.abs(laplace(grey)), flat, counts),
    ]
    # per superpixel: the 10th / 90th percentile of y (nearest rank) and the extent in x
    n_of = np.bincount(flat, minlength=m)
    if (n_of == 0).any():
        raise PlaceprintError("superpixel labels must be 0..m-1, each used (as superpixels gives)")
    starts = np.concatenate([[0], np.cumsum(n_of)[:-1]])
    y_sorted = yf.ravel()[np.lexsort((yf.ravel(), flat))]
    y10 = y_sorted[starts + np.floor(0.1 * (n_of - 1)).astype(np.int64)]
    y90 = y_sorted[starts + np.floor(0.9 * (n_of - 1)).astype(np.int64)]
    x_by_segment = xf.ravel()[np.argsort(flat, kind="stable")]
    x10 = np.minimum.reduceat(x_by_segment, starts)
    x90 = np.maximum.reduceat(x_by_segment, starts)
    mean_y = _means(yf, flat, counts)
    feats += [_means(xf, flat, counts), mean_y, y10, y90, mean_y**2, band - mean_y]
    feats += [counts / (h * w), y90 - y10, x90 - x10]
    return np.stack(feats, axis=1).astype(np.float32)

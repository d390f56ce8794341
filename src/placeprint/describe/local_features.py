"""Local RootSIFT features: dense (regular grid, upright) and detected (DoG keypoints).

Both use OpenCV's SIFT ``compute``; RootSIFT (Arandjelović & Zisserman 2012) then
L1-normalises each descriptor and takes the element-wise square root, so rows are
non-negative with unit L2 norm and Euclidean distance between them is the Hellinger
kernel between the SIFT histograms.

Images are first brought to a working size: small images are enlarged (bilinear) so
their short side is at least ``min_side`` pixels (Nordland's 64x32 frames -> 256x128,
so a grid still holds a few thousand points), large ones shrunk (area) so their long
side is at most ``max_side`` (Lund's 1024x768 -> 640x480). Grid step and keypoint
sizes are in working-image pixels; returned keypoints are in the input image's pixels.

Dense keypoints of OpenCV size ``s`` span a ``6 s``-pixel square (4x4 bins of
``1.5 s``); each is computed on the Gaussian-pyramid level whose blur matches its
scale (as for detected SIFT keypoints), so large windows cost no more than small ones.

Defaults (step 4, sizes 2/3/4: windows of 12-24 working pixels, i.e. 3-6 pixels of a
Nordland frame or 19-38 of a Lund photo; ~6,000 descriptors on Nordland in ~45 ms,
~58,000 on a 1024x768 photo in ~0.3 s, 2 busy cores) were the best of those tried
for Nordland VLAD (see :mod:`placeprint.describe.vlad`): smaller windows and the
4x enlargement of tiny frames beat larger windows (sizes 8-16) and a 2x enlargement.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from placeprint.errors import PlaceprintError

DEFAULT_STEP = 4
DEFAULT_SIZES = (2.0, 3.0, 4.0)
DEFAULT_MIN_SIDE = 128
DEFAULT_MAX_SIDE = 640
_SIFT_SIGMA = 1.6  # blur of the first pyramid level, as in OpenCV's SIFT
_LAYERS = 3  # OpenCV's default nOctaveLayers


def rootsift(desc: np.ndarray) -> np.ndarray:
    """RootSIFT of ``(m, 128)`` SIFT descriptors: L1-normalise, then square root.

    Rows that are all zero (no gradient at all) stay zero.
    """
    desc = np.asarray(desc, dtype=np.float32)
    l1 = desc.sum(axis=1, keepdims=True)
    return np.sqrt(desc / np.maximum(l1, 1e-12)).astype(np.float32)


def working_image(
    gray: np.ndarray,
    min_side: int | None = DEFAULT_MIN_SIDE,
    max_side: int | None = DEFAULT_MAX_SIDE,
) -> tuple[np.ndarray, float]:
    """``(h, w) float32 [0, 255]`` image -> ``(uint8 image at working size, factor)``.

    ``factor`` = working pixels per input pixel: ``> 1`` when the short side was
    enlarged to ``min_side``, ``< 1`` when the long side was shrunk to ``max_side``.
    """
    import cv2

    gray = np.asarray(gray)
    if gray.ndim != 2 or min(gray.shape) < 1:
        raise PlaceprintError(f"expected a (h, w) grayscale image, got shape {gray.shape}")
    if not np.all(np.isfinite(gray)):
        raise PlaceprintError("image contains NaN or inf")
    h, w = gray.shape
    factor = 1.0
    if min_side is not None and min(h, w) < min_side:
        factor = min_side / min(h, w)
    if max_side is not None and max(h, w) * factor > max_side:
        factor = max_side / max(h, w)
    img = np.clip(np.asarray(gray, np.float32), 0, 255)
    if factor != 1.0:
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        interp = cv2.INTER_LINEAR if factor > 1 else cv2.INTER_AREA
        img = cv2.resize(img, size, interpolation=interp)
    return np.round(img).astype(np.uint8), factor


def _pyramid_level(size: float) -> tuple[int, int]:
    """(octave, layer) whose Gaussian blur matches a SIFT keypoint of this size."""
    level = max(np.log2(size / (2 * _SIFT_SIGMA)), 0.0)
    octave = int(np.floor(level))
    layer = int(round((level - octave) * _LAYERS))
    return octave, layer


def grid_keypoints(width: int, height: int, step: float, sizes: Sequence[float]) -> list:
    """Upright OpenCV keypoints on a regular grid (first point at ``step / 2``), every size."""
    import cv2

    if step <= 0 or not sizes or min(sizes) <= 0:
        raise PlaceprintError(f"grid step and sizes must be > 0, got step={step} sizes={sizes}")
    xs = np.arange(step / 2, width, step, dtype=np.float32)
    ys = np.arange(step / 2, height, step, dtype=np.float32)
    gx, gy = np.meshgrid(xs, ys)
    kps = []
    for s in sizes:
        octave, layer = _pyramid_level(float(s))
        packed = (octave & 255) | (layer << 8)
        kps.extend(
            cv2.KeyPoint(float(x), float(y), float(s), 0.0, 0.0, packed)
            for x, y in zip(gx.ravel(), gy.ravel(), strict=True)
        )
    return kps


def _to_arrays(
    kps: Sequence, desc: np.ndarray | None, factor: float
) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV keypoints + SIFT rows -> ``(m, 4)`` [x, y, size, angle] in input pixels + RootSIFT."""
    if desc is None or len(kps) == 0:
        return np.zeros((0, 4), np.float32), np.zeros((0, 128), np.float32)
    kp = np.array([(k.pt[0], k.pt[1], k.size, k.angle) for k in kps], np.float32)
    kp[:, :3] /= factor
    root = rootsift(desc)
    keep = desc.sum(axis=1) > 0  # flat patches have no gradient: no descriptor
    return kp[keep], root[keep]


def dense_rootsift(
    gray: np.ndarray,
    step: float = DEFAULT_STEP,
    sizes: Sequence[float] = DEFAULT_SIZES,
    min_side: int | None = DEFAULT_MIN_SIDE,
    max_side: int | None = DEFAULT_MAX_SIDE,
) -> tuple[np.ndarray, np.ndarray]:
    """Dense upright RootSIFT of a ``(h, w) float32 [0, 255]`` image.

    Keypoints every ``step`` working pixels, at each OpenCV keypoint size in ``sizes``
    (window ``6 * size`` working pixels). Returns ``keypoints (m, 4) float32`` as
    ``[x, y, size, angle]`` in input pixels (angle 0) and ``descriptors (m, 128)
    float32`` with unit L2 rows; patches without any gradient are dropped.
    """
    import cv2

    img, factor = working_image(gray, min_side, max_side)
    kps = grid_keypoints(img.shape[1], img.shape[0], step, sizes)
    kps, desc = cv2.SIFT_create().compute(img, kps)
    return _to_arrays(kps, desc, factor)


def detect_rootsift(
    gray: np.ndarray,
    max_features: int = 2000,
    min_side: int | None = DEFAULT_MIN_SIDE,
    max_side: int | None = DEFAULT_MAX_SIDE,
) -> tuple[np.ndarray, np.ndarray]:
    """RootSIFT at SIFT (DoG) keypoints of a ``(h, w) float32 [0, 255]`` image.

    At most ``max_features`` keypoints (the strongest). Returns ``keypoints (m, 4)
    float32`` as ``[x, y, size, angle (degrees)]`` in input pixels and
    ``descriptors (m, 128) float32`` with unit L2 rows, for geometric verification.
    """
    import cv2

    if max_features < 1:
        raise PlaceprintError(f"max_features must be >= 1, got {max_features}")
    img, factor = working_image(gray, min_side, max_side)
    kps, desc = cv2.SIFT_create(nfeatures=int(max_features)).detectAndCompute(img, None)
    kp, root = _to_arrays(kps, desc, factor)
    return kp[:max_features], root[:max_features]


sift_rootsift = detect_rootsift

"""GIST (Oliva & Torralba 2001), as in Torralba's LMgist, plus a coarse colour layout.

The grey image is warped to ``image_size x image_size`` (the aspect ratio is *not*
kept and nothing is cropped, so a 64x32 Nordland frame keeps its whole field of
view; LMgist crops the centre instead), stretched to [0, 255], then prefiltered
(``log(1 + I)``, Gaussian high-pass whitening and local contrast normalisation with
``fc = 4`` cycles/image). It is reflect-padded by ``image_size / 4`` pixels and
filtered in the Fourier domain by ``scales x orientations`` Gabor-like transfer
functions ``exp(-3.5 (f / f_s - 1)^2 - 2 pi s_o (theta - theta_o)^2)`` with
``f_s = 0.3 / 1.85^s`` cycles/pixel; the magnitude of each response is averaged over a
``blocks x blocks`` grid. Orientation channel ``o`` has its wave vector at angle
``o * pi / orientations`` counter-clockwise from the x axis (as displayed, y up): the
energy lands in the channel perpendicular to the stripes, so vertical stripes
(intensity varying along x) excite channel 0 and horizontal ones ``orientations / 2``.
The transfer functions are zero at frequency 0, so flat images give zero energy.

With ``normalise`` (default) the Gabor part is scaled to unit L2 norm (LMgist leaves it
raw); colour: the ``color_grid x color_grid`` mean CIE L*a*b* of the image, divided by
100 and multiplied by ``color_weight``, is appended (IM2GPS's "gist + colour"). The
defaults were chosen on Nordland frames <= 20000 (winter queries, summer database;
checked on 20010-25000): single-frame R@1 0.23 raw / 0.29 unit-norm Gabor without
colour, 0.05 with raw Gabor + colour at weight 1 (brightness layout changes with snow
and outweighs the texture), 0.295 at weight 0.1, 0.28 at 0.2. ``color_weight=0.1``
keeps the colour layout as a tie-breaker (norm ~0.2 against 1); raise it for colour
photos where colour is stable.
Output layout: ``[gabor (scales, orientations, blocks, blocks), colour (grid, grid, 3)]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import scipy.fft

from placeprint.describe.base import Describer
from placeprint.describe.color import DEFAULT_MAX_SIDE, ImageViews, check_max_side
from placeprint.errors import PlaceprintError

PREFILTER_PAD = 5


def gabor_transfer(n: int, scales: int = 4, orientations: int = 8) -> np.ndarray:
    """LMgist's transfer functions ``(scales * orientations, n, n)`` (real values stored as
    complex64 for fast products; unshifted FFT layout), scale-major; zero at frequency 0."""
    f = np.fft.fftfreq(n) * n
    fx, fy = np.meshgrid(f, f)
    fr = np.hypot(fx, fy)
    t = np.arctan2(fy, fx)
    out = np.empty((scales * orientations, n, n), np.complex64)
    for s in range(scales):
        for o in range(orientations):
            tr = t + np.pi * o / orientations
            tr = tr + 2 * np.pi * (tr < -np.pi) - 2 * np.pi * (tr > np.pi)
            spread = 16 * orientations**2 / 32**2
            g = np.exp(
                -10 * 0.35 * (fr / n / (0.3 / 1.85**s) - 1) ** 2 - 2 * spread * np.pi * tr**2
            )
            g[0, 0] = 0.0
            out[s * orientations + o] = g
    return out


def prefilter(gray: np.ndarray, fc: float = 4.0) -> np.ndarray:
    """LMgist's prefilter of a grey ``(h, w)`` image in [0, 255] -> ``(h, w) float32``.

    ``log(1 + I)``, minus its Gaussian low-pass (whitening), divided by ``0.2 +`` the
    local standard deviation (Gaussian window, ``fc`` cycles per image).
    """
    img = np.log1p(np.asarray(gray, dtype=np.float64))
    w = PREFILTER_PAD
    img = np.pad(img, w, mode="symmetric")
    sn, sm = img.shape
    n = max(sn, sm)
    n += n % 2
    img = np.pad(img, ((0, n - sn), (0, n - sm)), mode="symmetric")
    f = np.fft.fftfreq(n) * n
    fx, fy = np.meshgrid(f, f)
    gf = np.exp(-(fx**2 + fy**2) / (fc / np.sqrt(np.log(2))) ** 2)
    out = img - np.real(scipy.fft.ifft2(scipy.fft.fft2(img, workers=1) * gf, workers=1))
    local = np.sqrt(np.abs(scipy.fft.ifft2(scipy.fft.fft2(out**2, workers=1) * gf, workers=1)))
    out = out / (0.2 + local)
    return out[w : sn - w, w : sm - w].astype(np.float32)


def block_means(image: np.ndarray, blocks: int) -> np.ndarray:
    """Mean of ``(h, w[, c])`` over a ``blocks x blocks`` grid -> ``(blocks, blocks[, c])``.

    Uses area weighting, so block borders may cut pixels when ``h`` or ``w`` is not a
    multiple of ``blocks``.
    """
    image = np.ascontiguousarray(image, dtype=np.float32)
    if min(image.shape[:2]) < blocks:
        image = cv2.resize(image, (blocks * 4, blocks * 4), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(image, (blocks, blocks), interpolation=cv2.INTER_AREA)


def gist_gabor(pre: np.ndarray, transfer: np.ndarray, blocks: int = 4) -> np.ndarray:
    """Gabor energy of a prefiltered square ``(s, s)`` image -> ``(f * blocks^2,) float32``.

    ``transfer`` is ``(f, n, n)`` from :func:`gabor_transfer` with ``n - s`` even (the
    image is reflect-padded by ``(n - s) / 2`` on every side, then cropped back).
    """
    s = pre.shape[0]
    n = transfer.shape[-1]
    pad = (n - s) // 2
    spec = scipy.fft.fft2(np.pad(pre, pad, mode="symmetric"), workers=1).astype(np.complex64)
    energy = np.abs(scipy.fft.ifft2(spec[None] * transfer, workers=1, overwrite_x=True))[
        :, pad : pad + s, pad : pad + s
    ]
    f = len(transfer)
    grid = energy.reshape(f, blocks, s // blocks, blocks, s // blocks).mean(axis=(2, 4))
    return grid.reshape(-1).astype(np.float32)


class GistDescriber(Describer):
    """GIST Gabor energy (``scales * orientations * blocks^2``) + colour grid (``3 * grid^2``).

    Default: 4 scales x 8 orientations x 4x4 blocks = 512, plus 4x4 mean L*a*b* = 48,
    so 560 dimensions; compare with L2.

    >>> GistDescriber().dim
    560
    """

    name = "gist"
    learns = False

    def __init__(
        self,
        image_size: int = 128,
        scales: int = 4,
        orientations: int = 8,
        blocks: int = 4,
        prefilter_fc: float = 4.0,
        color_grid: int = 4,
        color_weight: float = 0.1,
        normalise: bool = True,
        max_side: int | None = DEFAULT_MAX_SIDE,
    ) -> None:
        if int(scales) < 1 or int(orientations) < 1 or int(blocks) < 1 or int(color_grid) < 0:
            raise PlaceprintError(
                "gist options: scales, orientations, blocks >= 1 and color_grid >= 0 "
                f"(got {scales}, {orientations}, {blocks}, {color_grid})"
            )
        if int(image_size) < 16 or int(image_size) % (4 * int(blocks)):
            raise PlaceprintError(
                f"gist image_size must be >= 16 and a multiple of 4 * blocks, got {image_size}"
            )
        self.image_size = int(image_size)
        self.scales = int(scales)
        self.orientations = int(orientations)
        self.blocks = int(blocks)
        self.prefilter_fc = float(prefilter_fc)
        self.color_grid = int(color_grid)
        self.color_weight = float(color_weight)
        self.normalise = bool(normalise)
        self.max_side = check_max_side(max_side)
        n = self.image_size + 2 * (self.image_size // 4)
        self.transfer = gabor_transfer(n, self.scales, self.orientations)

    @property
    def gabor_dim(self) -> int:
        """Length of the Gabor part."""
        return self.scales * self.orientations * self.blocks**2

    @property
    def dim(self) -> int:
        return self.gabor_dim + 3 * self.color_grid**2

    def params(self) -> dict:
        """Options that change the output."""
        return {
            "image_size": self.image_size,
            "scales": self.scales,
            "orientations": self.orientations,
            "blocks": self.blocks,
            "prefilter_fc": self.prefilter_fc,
            "color_grid": self.color_grid,
            "color_weight": self.color_weight,
            "normalise": self.normalise,
            "max_side": self.max_side,
        }

    def gabor(self, gray: np.ndarray) -> np.ndarray:
        """The Gabor part ``(gabor_dim,) float32`` of a grey image ``(h, w)`` in [0, 255]."""
        size = (self.image_size, self.image_size)
        img = cv2.resize(
            np.asarray(gray, np.float32),
            size,
            interpolation=cv2.INTER_AREA
            if min(gray.shape) >= self.image_size
            else cv2.INTER_LINEAR,
        )
        lo, hi = float(img.min()), float(img.max())
        img = (img - lo) * (255.0 / (hi - lo)) if hi - lo > 1e-3 else np.zeros_like(img)
        g = gist_gabor(prefilter(img, self.prefilter_fc), self.transfer, self.blocks)
        norm = float(np.linalg.norm(g))
        if self.normalise:
            g = g / norm if norm > 1e-4 else np.zeros_like(g)  # flat images stay zero
        return g

    def describe_views(self, views: ImageViews) -> np.ndarray:
        """``(dim,) float32`` of one loaded image."""
        parts = [self.gabor(views.gray)]
        if self.color_grid:
            colour = block_means(views.lab, self.color_grid).reshape(-1) / 100.0
            parts.append((self.color_weight * colour).astype(np.float32))
        return np.concatenate(parts)

    def describe(self, images: Sequence[str | Path | np.ndarray]) -> np.ndarray:
        """Descriptors ``(n, dim) float32``."""
        return np.stack([self.describe_views(ImageViews.load(im, self.max_side)) for im in images])

"""Texton histograms (Malik et al. 2001; IM2GPS's texture feature).

Every pixel of the grey image is described by its responses to a filter bank of
oriented, elongated (3:1) Gaussian first derivatives (edges) and second derivatives
(bars) at ``orientations`` orientations and a few ``scales``, plus an isotropic
Laplacian of Gaussian per scale (Leung-Malik-like; 8 x 2 x 2 + 2 = 34 filters by
default, after Hays & Efros' 8 orientations, 2 scales, 2 elongations). Response
vectors are contrast-normalised (Varma & Zisserman: ``F * log(1 + |F| / 0.03) / |F|``)
so the textons do not depend on illumination strength. ``fit`` clusters sampled
responses into ``textons`` centres with k-means (faiss); an image is then the
histogram of its pixels' nearest textons, normalised to sum 1 (compare with chi2).

Filtering is done in the Fourier domain with the image reflect-padded by the largest
filter radius; the filter spectra are cached per padded size.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.fft

from placeprint.describe.base import Describer
from placeprint.describe.color import DEFAULT_MAX_SIDE, ImageViews, check_max_side
from placeprint.describe.histograms import apply_map, check_feature_map, map_dim, normalise_sum
from placeprint.errors import PlaceprintError

CONTRAST_CONSTANT = 0.03


def _normalised(kernel: np.ndarray) -> np.ndarray:
    kernel = kernel - kernel.mean()
    return (kernel / np.abs(kernel).sum()).astype(np.float32)


def filter_bank(
    orientations: int = 8, scales: Sequence[float] = (1.0, 2.0), elongation: float = 3.0
) -> list[np.ndarray]:
    """Square kernels (zero mean, unit L1 norm), odd side lengths.

    Order: for each scale, for each orientation ``k * pi / orientations`` (the direction
    across the filter, 0 = varies along x), an edge (first derivative) then a bar
    (second derivative) filter with ``sigma`` across and ``elongation * sigma`` along;
    then one Laplacian of Gaussian per scale.
    """
    kernels: list[np.ndarray] = []
    for sigma in scales:
        radius = int(np.ceil(3 * sigma * max(elongation, 1.0)))
        y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float64)
        for k in range(orientations):
            theta = np.pi * k / orientations
            u = x * np.cos(theta) + y * np.sin(theta)  # across
            v = -x * np.sin(theta) + y * np.cos(theta)  # along
            g = np.exp(-0.5 * (u**2 / sigma**2 + v**2 / (elongation * sigma) ** 2))
            kernels.append(_normalised(-u / sigma**2 * g))
            kernels.append(_normalised((u**2 / sigma**4 - 1 / sigma**2) * g))
    for sigma in scales:
        radius = int(np.ceil(3 * sigma))
        y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float64)
        r2 = x**2 + y**2
        kernels.append(_normalised((r2 / sigma**4 - 2 / sigma**2) * np.exp(-0.5 * r2 / sigma**2)))
    return kernels


class FilterBank:
    """Applies a list of kernels to grey images by FFT; ``responses(gray) -> (h, w, f)``."""

    def __init__(self, kernels: Sequence[np.ndarray]) -> None:
        self.kernels = [np.asarray(k, np.float32) for k in kernels]
        self.radius = max(k.shape[0] // 2 for k in self.kernels)
        self._spectra: dict[tuple[int, int], np.ndarray] = {}

    def _spectrum(self, shape: tuple[int, int]) -> np.ndarray:
        if shape not in self._spectra:
            stack = np.zeros((len(self.kernels), *shape), np.float32)
            for i, k in enumerate(self.kernels):
                r = k.shape[0] // 2
                stack[i, : 2 * r + 1, : 2 * r + 1] = k
                # centre the kernel on the origin (circularly) so the product of spectra
                # is a convolution that does not shift the image
                stack[i] = np.roll(stack[i], (-r, -r), axis=(0, 1))
            if len(self._spectra) >= 8:
                self._spectra.clear()
            self._spectra[shape] = scipy.fft.rfft2(stack, workers=1).astype(np.complex64)
        return self._spectra[shape]

    def responses(self, gray: np.ndarray, step: int = 1) -> np.ndarray:
        """Filter responses ``(h', w', f) float32`` of a grey image ``(h, w)`` (reflect borders)
        at every ``step``-th pixel in each direction (``h' = ceil(h / step)``)."""
        gray = np.asarray(gray, dtype=np.float32)
        h, w = gray.shape
        r = self.radius
        ph = scipy.fft.next_fast_len(h + 2 * r, real=True)
        pw = scipy.fft.next_fast_len(w + 2 * r, real=True)
        padded = np.pad(gray, ((r, ph - h - r), (r, pw - w - r)), mode="symmetric")
        spec = scipy.fft.rfft2(padded, workers=1)
        out = scipy.fft.irfft2(
            spec[None] * self._spectrum((ph, pw)), s=(ph, pw), workers=1, overwrite_x=True
        )
        kept = out[:, r : r + h : step, r : r + w : step]
        return np.ascontiguousarray(kept.transpose(1, 2, 0), np.float32)


def contrast_normalise(responses: np.ndarray, c: float = CONTRAST_CONSTANT) -> np.ndarray:
    """Varma-Zisserman normalisation of ``(..., f)`` responses: ``F * log(1 + |F|/c) / |F|``."""
    norm = np.linalg.norm(responses, axis=-1, keepdims=True)
    gain = np.log1p(norm / c) / np.maximum(norm, 1e-12)
    return (responses * gain).astype(np.float32)


def pixel_features(gray: np.ndarray, bank: FilterBank, max_pixels: int | None) -> np.ndarray:
    """Contrast-normalised filter responses ``(m, f) float32`` of a grey ``(h, w)`` image.

    The image is standardised (zero mean, unit std) first. With ``max_pixels`` set,
    pixels are taken on a regular grid whose stride keeps ``m <= max_pixels``.
    """
    gray = np.asarray(gray, dtype=np.float32)
    std = float(gray.std())
    gray = (gray - gray.mean()) / std if std > 1e-3 else np.zeros_like(gray)
    h, w = gray.shape
    step = 1
    if max_pixels is not None and h * w > max_pixels:
        step = int(np.ceil(np.sqrt(h * w / max_pixels)))
        while ((h + step - 1) // step) * ((w + step - 1) // step) > max_pixels:
            step += 1
    resp = bank.responses(gray, step)
    return contrast_normalise(resp.reshape(-1, resp.shape[-1]))


class TextonDescriber(Describer):
    """Histogram of ``textons`` k-means textons of filter responses, summing to 1 (learns).

    Images are shrunk to ``max_side`` on the longer side; histograms count pixels on a
    grid of at most ``max_pixels`` pixels. ``fit`` samples ``fit_pixels`` pixels in all
    from at most ``fit_images`` images (chosen with ``seed``) and runs ``niter`` k-means
    iterations. ``feature_map`` ("none", "sqrt", "chi2") maps the histogram for L2 use.
    """

    name = "texton"
    learns = True

    def __init__(
        self,
        textons: int = 512,
        orientations: int = 8,
        scales: Sequence[float] = (1.0, 2.0),
        elongation: float = 3.0,
        max_side: int | None = DEFAULT_MAX_SIDE,
        max_pixels: int | None = 20000,
        fit_images: int = 1000,
        fit_pixels: int = 200_000,
        niter: int = 20,
        seed: int = 0,
        feature_map: str = "none",
    ) -> None:
        scales = (scales,) if isinstance(scales, (int, float)) else tuple(scales)
        if int(textons) < 2 or int(orientations) < 1 or not scales or min(scales) <= 0:
            raise PlaceprintError(
                "texton options: textons >= 2, orientations >= 1, scales > 0 "
                f"(got {textons}, {orientations}, {scales})"
            )
        if elongation < 1 or int(fit_images) < 1 or int(fit_pixels) < int(textons):
            raise PlaceprintError(
                "texton options: elongation >= 1, fit_images >= 1, fit_pixels >= textons "
                f"(got {elongation}, {fit_images}, {fit_pixels})"
            )
        check_feature_map(feature_map)
        self.textons = int(textons)
        self.orientations = int(orientations)
        self.scales = tuple(float(s) for s in scales)
        self.elongation = float(elongation)
        self.max_side = check_max_side(max_side)
        self.max_pixels = None if max_pixels is None else int(max_pixels)
        self.fit_images = int(fit_images)
        self.fit_pixels = int(fit_pixels)
        self.niter = int(niter)
        self.seed = int(seed)
        self.feature_map = feature_map
        self.bank = FilterBank(filter_bank(self.orientations, self.scales, self.elongation))
        self._index = None

    @property
    def n_filters(self) -> int:
        """Length of a pixel's response vector."""
        return len(self.bank.kernels)

    @property
    def dim(self) -> int:
        return map_dim(self.textons, self.feature_map)

    def params(self) -> dict:
        """Options that change the output (and the fit)."""
        return {
            "textons": self.textons,
            "orientations": self.orientations,
            "scales": list(self.scales),
            "elongation": self.elongation,
            "max_side": self.max_side,
            "max_pixels": self.max_pixels,
            "fit_images": self.fit_images,
            "fit_pixels": self.fit_pixels,
            "niter": self.niter,
            "seed": self.seed,
            "feature_map": self.feature_map,
        }

    def fit(self, images: Sequence[str | Path | np.ndarray]) -> TextonDescriber:
        """Learn the textons by k-means on pixel responses of (a sample of) ``images``."""
        import faiss

        images = list(images)
        if not images:
            raise PlaceprintError("texton fit needs at least one image")
        rng = np.random.default_rng(self.seed)
        chosen = sorted(rng.permutation(len(images))[: self.fit_images])
        per_image = int(np.ceil(self.fit_pixels / len(chosen)))
        samples = []
        for i in chosen:
            feats = pixel_features(ImageViews.load(images[i], self.max_side).gray, self.bank, None)
            take = rng.permutation(len(feats))[:per_image]
            samples.append(feats[np.sort(take)])
        X = np.ascontiguousarray(np.concatenate(samples), np.float32)
        if len(X) < self.textons:
            raise PlaceprintError(
                f"texton fit got {len(X)} pixels for {self.textons} textons: "
                "give more (or larger) images, or ask for fewer textons"
            )
        km = faiss.Kmeans(
            X.shape[1],
            self.textons,
            niter=self.niter,
            seed=self.seed,
            verbose=False,
            max_points_per_centroid=max(256, len(X) // self.textons + 1),
        )
        km.train(X)
        self._set_state({"textons": km.centroids})
        return self

    def _state(self) -> dict[str, np.ndarray]:
        return {"textons": self.textons_} if hasattr(self, "textons_") else {}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        import faiss

        centres = np.ascontiguousarray(arrays["textons"], np.float32)
        if centres.shape != (self.textons, self.n_filters):
            raise PlaceprintError(
                f"texton state has shape {centres.shape}, expected {(self.textons, self.n_filters)}"
                " for these options"
            )
        self.textons_ = centres
        self._index = faiss.IndexFlatL2(self.n_filters)
        self._index.add(centres)

    def assign(self, features: np.ndarray) -> np.ndarray:
        """Nearest texton ``(m,) int64`` of pixel features ``(m, f)``."""
        self.check_fitted()
        _, idx = self._index.search(np.ascontiguousarray(features, np.float32), 1)
        return idx[:, 0]

    def histogram(self, views: ImageViews) -> np.ndarray:
        """Texton histogram ``(textons,) float32`` summing to 1 of one loaded image."""
        feats = pixel_features(views.gray, self.bank, self.max_pixels)
        counts = np.bincount(self.assign(feats), minlength=self.textons)
        return normalise_sum(counts.astype(np.float32))

    def describe(self, images: Sequence[str | Path | np.ndarray]) -> np.ndarray:
        """Descriptors ``(n, dim) float32``."""
        self.check_fitted()
        hists = np.stack([self.histogram(ImageViews.load(im, self.max_side)) for im in images])
        return apply_map(hists, self.feature_map)

"""Bag of visual words on dense RootSIFT (Sivic & Zisserman 2003; Torii et al. CVPR 2013).

Per image: dense RootSIFT (:mod:`placeprint.describe.local_features`), each feature
soft-assigned to its ``r`` nearest of ``k`` words with weights
``exp(-d^2 / (2 sigma^2))`` normalised to sum 1 (Philbin et al. 2008); repeated
structures grouped and capped per word (:mod:`placeprint.describe.repeated`, members of
a group spread over ``r_repeated`` words); burstiness damped by replacing each word
count ``n_id`` by ``sqrt(n_id)`` (Jégou et al. 2009); tf-idf
``t_i = (n_id / n_d) log(N / N_i)`` with the idf learned on the database (``N_i``:
database images where word ``i`` is the nearest word of some feature); final L2.

``grid=(gx, gy)`` appends one such histogram per cell of a ``gx x gy`` grid
(spatial pyramid, Lazebnik et al. 2006) to the whole-image one; each region is a
document of its own for tf-idf (with dense features almost every word occurs somewhere
in every image, so a whole-image idf would be ~0 for most words).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from placeprint.describe.base import Describer, ImageLike
from placeprint.describe.local_features import (
    DEFAULT_MAX_SIDE,
    DEFAULT_MIN_SIDE,
    DEFAULT_SIZES,
    DEFAULT_STEP,
    dense_rootsift,
)
from placeprint.describe.repeated import group_sizes, merge_repeated, repeated_groups
from placeprint.describe.vlad import cell_index, check_grid
from placeprint.describe.vocabulary import Vocabulary, sample_descriptors
from placeprint.describe.whitening import l2_normalise
from placeprint.errors import PlaceprintError


def soft_assign_weights(
    sqdist: np.ndarray, sigma: float, r: np.ndarray | int | None = None
) -> np.ndarray:
    """Soft-assignment weights ``(m, R) float32`` from squared distances ``(m, R)`` to the words.

    ``w = exp(-d^2 / (2 sigma^2))`` over each row's first ``r`` entries (``r`` an int or
    ``(m,)`` per row; all ``R`` when None), zero beyond, rows normalised to sum 1.
    Distances are taken relative to each row's nearest word, which leaves the
    normalised weights unchanged and avoids underflow.
    """
    sqdist = np.asarray(sqdist, np.float64)
    if sigma <= 0:
        raise PlaceprintError(f"soft-assignment sigma must be > 0, got {sigma}")
    if sqdist.ndim != 2:
        raise PlaceprintError(f"sqdist must be (m, R), got {sqdist.shape}")
    w = np.exp(-(sqdist - sqdist[:, :1]) / (2.0 * sigma**2))
    if r is not None:
        r = np.broadcast_to(np.asarray(r), (len(sqdist),))
        w = np.where(np.arange(sqdist.shape[1])[None, :] < r[:, None], w, 0.0)
    return (w / np.maximum(w.sum(axis=1, keepdims=True), 1e-300)).astype(np.float32)


def burstiness_weights(counts: np.ndarray) -> np.ndarray:
    """Burstiness-damped counts: each word count ``n`` becomes ``sqrt(n)``.

    This equals weighting each of the ``n`` features of a word by ``1 / sqrt(n)``
    (Jégou et al. 2009; Torii et al. 2013). Any shape; counts must be >= 0.
    """
    counts = np.asarray(counts, np.float32)
    if np.any(counts < 0):
        raise PlaceprintError("word counts must be >= 0")
    return np.sqrt(counts)


def inverse_document_frequency(counts: np.ndarray) -> np.ndarray:
    """idf ``(k,) float32`` = ``log(N / N_i)`` from database word counts ``(N, k)``.

    ``N_i`` is the number of database images where word ``i`` occurs (count > 0);
    words that never occur get idf 0 (they cannot match anything in the database).
    """
    counts = np.asarray(counts)
    if counts.ndim != 2 or len(counts) == 0:
        raise PlaceprintError(f"counts must be (N >= 1, k), got {counts.shape}")
    n_i = (counts > 0).sum(axis=0)
    idf = np.zeros(counts.shape[1], np.float64)
    seen = n_i > 0
    idf[seen] = np.log(len(counts) / n_i[seen])
    return idf.astype(np.float32)


def tfidf_weights(counts: np.ndarray, idf: np.ndarray) -> np.ndarray:
    """tf-idf ``t_i = (n_id / n_d) * idf_i`` of word counts ``(..., k)``; ``n_d`` = sum over k.

    ``idf`` broadcasts against ``counts`` (``(k,)``, or one row per region). Empty
    histograms stay zero. Returns ``float32`` of the shape of ``counts`` (at least 2-d).
    """
    counts = np.atleast_2d(np.asarray(counts, np.float64))
    n_d = counts.sum(axis=-1, keepdims=True)
    return (counts / np.maximum(n_d, 1e-12) * np.asarray(idf, np.float64)).astype(np.float32)


class BowDescriber(Describer):
    """Dense RootSIFT bag of words: ``(n, regions * k) float32``, unit L2 rows.

    ``k`` words and the idf learned on at most ``fit_images`` database images (``seed``).
    ``r`` nearest words per feature (``r_repeated`` for members of repeated structures,
    capped at ``cap`` per structure and word), Gaussian soft-assignment with ``sigma``
    (RootSIFT distance units), ``burstiness`` square-root damping, ``repeated``
    grouping on/off, ``grid`` spatial cells. ``step``/``sizes``/``min_side``/
    ``max_side`` set the dense grid; ``radius``/``min_sep``/``max_desc_dist`` the
    repeated-structure graph (``radius`` 4 rather than the 8 of
    :func:`~placeprint.describe.repeated.repeated_groups` keeps the graph of ~6,000
    dense features per image to ~0.1 s).

    Tuning (Nordland frames <= 20000 as for :class:`~placeprint.describe.vlad.VladDescriber`;
    1000 winter queries against 2000 summer frames; R@1): whole-image BoW k=1000 0.08
    (0.07 with repeated-structure grouping); a 16x8 grid with one idf per region 0.38
    at k=64, 0.41 at k=128 (a whole-image idf gave 0.25: nearly every word occurs in
    every image); burstiness damping +0.004 to +0.016; soft-assignment sigma 0.1 /
    0.2 / 0.4: 0.39 / 0.38 / 0.37, hard (r=1) 0.39; repeated-structure grouping +0.013
    on all frames and +0.02 on frames 20010-25000.
    """

    name = "bow"
    learns = True

    def __init__(
        self,
        k: int = 128,
        step: float = DEFAULT_STEP,
        sizes: Sequence[float] = DEFAULT_SIZES,
        min_side: int | None = DEFAULT_MIN_SIDE,
        max_side: int | None = DEFAULT_MAX_SIDE,
        r: int = 3,
        r_repeated: int = 3,
        sigma: float = 0.1,
        burstiness: bool = True,
        repeated: bool = True,
        cap: float = 1.0,
        radius: float = 4.0,
        min_sep: float = 3.0,
        max_desc_dist: float = 0.5,
        grid: int | Sequence[int] = (16, 8),
        fit_images: int = 2000,
        vocab_images: int = 500,
        max_samples: int = 200_000,
        seed: int = 0,
    ) -> None:
        if k < 1 or r < 1 or r_repeated < 1 or fit_images < 1 or vocab_images < 1 or cap <= 0:
            raise PlaceprintError(
                f"need k, r, r_repeated, fit_images, vocab_images >= 1 and cap > 0; got k={k}, "
                f"r={r}, r_repeated={r_repeated}, fit_images={fit_images}, "
                f"vocab_images={vocab_images}, cap={cap}"
            )
        if sigma <= 0:
            raise PlaceprintError(f"sigma must be > 0, got {sigma}")
        self.k = int(k)
        self.step = float(step)
        self.sizes = tuple(float(s) for s in sizes)
        self.min_side = min_side
        self.max_side = max_side
        self.r = int(r)
        self.r_repeated = int(r_repeated)
        self.sigma = float(sigma)
        self.burstiness = bool(burstiness)
        self.repeated = bool(repeated)
        self.cap = float(cap)
        self.radius = float(radius)
        self.min_sep = float(min_sep)
        self.max_desc_dist = float(max_desc_dist)
        self.grid = check_grid(grid)
        self.fit_images = int(fit_images)
        self.vocab_images = int(vocab_images)
        self.max_samples = int(max_samples)
        self.seed = int(seed)

    @property
    def regions(self) -> int:
        """Number of pooled regions: the whole image, plus the grid cells if any."""
        cells = self.grid[0] * self.grid[1]
        return 1 if cells == 1 else 1 + cells

    @property
    def dim(self) -> int:
        return self.regions * self.k

    def params(self) -> dict:
        return {
            "k": self.k,
            "step": self.step,
            "sizes": list(self.sizes),
            "min_side": self.min_side,
            "max_side": self.max_side,
            "r": self.r,
            "r_repeated": self.r_repeated,
            "sigma": self.sigma,
            "burstiness": self.burstiness,
            "repeated": self.repeated,
            "cap": self.cap,
            "radius": self.radius,
            "min_sep": self.min_sep,
            "max_desc_dist": self.max_desc_dist,
            "grid": list(self.grid),
            "fit_images": self.fit_images,
            "vocab_images": self.vocab_images,
            "max_samples": self.max_samples,
            "seed": self.seed,
        }

    # -- one image ----------------------------------------------------------------
    def _features(self, image: ImageLike) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        from placeprint.describe.images import load_gray

        gray = load_gray(image)
        kp, desc = dense_rootsift(gray, self.step, self.sizes, self.min_side, self.max_side)
        return kp, desc, (gray.shape[1], gray.shape[0])

    def _cells(self, kp: np.ndarray, wh: tuple[int, int]) -> np.ndarray:
        """Grid cell of each feature (all 0 without a grid)."""
        if self.regions == 1:
            return np.zeros(len(kp), np.int64)
        return cell_index(kp[:, :2], wh[0], wh[1], self.grid)

    def counts(self, kp: np.ndarray, desc: np.ndarray, wh: tuple[int, int]) -> np.ndarray:
        """Word counts ``(regions * k,)`` of one image's features (before burstiness, tf-idf).

        Region 0 is the whole image, then the grid cells (row-major) if any.
        """
        r_max = max(self.r, self.r_repeated) if self.repeated else self.r
        words, sqdist = self.vocabulary_.assign(desc, r_max)
        if self.repeated and len(desc) > 1:
            labels = repeated_groups(
                kp, desc, self.radius, self.min_sep, max_desc_dist=self.max_desc_dist
            )
            r_each = np.where(group_sizes(labels) > 1, self.r_repeated, self.r)
        else:
            labels = np.arange(len(desc))
            r_each = self.r
        weights = soft_assign_weights(sqdist, self.sigma, r_each)
        parts = [merge_repeated(labels, words, weights, self.k, self.cap)]
        if self.regions > 1:
            cells = self._cells(kp, wh)
            for c in range(self.grid[0] * self.grid[1]):
                sel = cells == c
                parts.append(
                    merge_repeated(labels[sel], words[sel], weights[sel], self.k, self.cap)
                )
        return np.concatenate(parts)

    def presence(self, kp: np.ndarray, desc: np.ndarray, wh: tuple[int, int]) -> np.ndarray:
        """Nearest-word counts ``(regions * k,)``: what the document frequencies count."""
        out = np.zeros((self.regions, self.k), np.float32)
        if len(desc):
            words = self.vocabulary_.assign(desc, 1)[0][:, 0]
            out[0] = np.bincount(words, minlength=self.k)
            if self.regions > 1:
                key = self._cells(kp, wh) * self.k + words
                out[1:] = np.bincount(key, minlength=(self.regions - 1) * self.k).reshape(
                    -1, self.k
                )
        return out.reshape(-1)

    def _damp(self, counts: np.ndarray) -> np.ndarray:
        return burstiness_weights(counts) if self.burstiness else counts

    def _weigh(self, counts: np.ndarray) -> np.ndarray:
        """Burstiness, tf-idf per region (each region its own idf), L2: ``(n, regions * k)``."""
        n = len(counts)
        damped = self._damp(counts).reshape(n, self.regions, self.k)
        t = tfidf_weights(damped, self.idf_.reshape(self.regions, self.k))
        return l2_normalise(t.reshape(n, self.regions * self.k))

    # -- describer interface ------------------------------------------------------
    def fit(self, images: Sequence[ImageLike]) -> BowDescriber:
        """Learn the ``k`` words and their idf on (a sample of) database images."""
        images = list(images)
        if not images:
            raise PlaceprintError("fit needs at least 1 database image")
        rng = np.random.default_rng(self.seed)
        if len(images) > self.fit_images:
            images = [images[i] for i in np.sort(rng.choice(len(images), self.fit_images, False))]
        X = sample_descriptors(
            lambda im: self._features(im)[1], images, self.vocab_images, self.max_samples, self.seed
        )
        self.vocabulary_ = Vocabulary(self.k, self.seed, max_samples=self.max_samples).fit(X)
        # document frequency per region from each feature's nearest word: a word's
        # soft-assigned trickle (2nd or 3rd nearest) does not make a region "contain" it
        present = np.stack([self.presence(*self._features(im)) for im in images])
        self.idf_ = inverse_document_frequency(present)
        return self

    def describe(self, images: Sequence[ImageLike]) -> np.ndarray:
        counts = np.stack([self.counts(*self._features(im)) for im in images])
        return self._weigh(counts)

    def _state(self) -> dict[str, np.ndarray]:
        if not hasattr(self, "vocabulary_"):
            return {}
        return {"centres": self.vocabulary_.centres_, "idf": self.idf_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        if "centres" not in arrays or "idf" not in arrays:
            raise PlaceprintError("saved bag-of-words state lacks centres or idf: save it again")
        self.vocabulary_ = Vocabulary(self.k, self.seed, max_samples=self.max_samples)
        self.vocabulary_.set_centres(arrays["centres"])
        self.idf_ = np.asarray(arrays["idf"], np.float32)

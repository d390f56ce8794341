"""Geometric verification of retrieved places and re-ranking by inlier count.

Torii et al., "Visual place recognition with repetitive structures" (CVPR 2013) and
"24/7 place recognition by view synthesis" (CVPR 2015): the top candidates of a
global-descriptor search are re-ranked by how many tentative local-feature matches
agree with a geometric model. Street scenes are made of several planes (facades,
ground), so several homographies are found in turn (sequential RANSAC): the inliers of
one are removed before the next is sought, and the score is the total inlier count.

Tentative matches are mutual nearest neighbours of RootSIFT descriptors
(:mod:`placeprint.verify.features`), optionally filtered by Lowe's ratio test.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from placeprint.errors import PlaceprintError
from placeprint.verify.features import ImageLike, LocalFeatures, extract


def mutual_nearest_neighbours(
    a: np.ndarray, b: np.ndarray, ratio: float | None = None
) -> np.ndarray:
    """Index pairs ``(t, 2) int64`` ``[i, j]`` where ``a[i]`` and ``b[j]`` are each other's
    nearest neighbour in squared L2 distance (``a`` ``(m, d)``, ``b`` ``(n, d)``).

    With ``ratio`` (Lowe's test, e.g. 0.9) a pair is kept only when its distance is below
    ``ratio`` times the second nearest, in both directions (a missing second neighbour
    passes). Pairs are sorted by ``i``; distance ties go to the lowest index. Brute force,
    ``m * n * 4`` bytes of memory (16 MB for 2000 x 2000).
    """
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise PlaceprintError(
            f"descriptor sets must be (m, d) and (n, d), got {a.shape}, {b.shape}"
        )
    if ratio is not None and not 0 < ratio <= 1:
        raise PlaceprintError(f"ratio must be in (0, 1], got {ratio}")
    if len(a) == 0 or len(b) == 0:
        return np.zeros((0, 2), np.int64)
    na = np.einsum("ij,ij->i", a, a)
    nb = np.einsum("ij,ij->i", b, b)
    # higher is nearer. Unit-norm rows (RootSIFT) rank by the dot product alone, which
    # saves three passes over the m x n matrix; other rows by the negated squared distance
    score = a @ b.T
    unit_norms = np.ptp(na) <= 1e-5 and np.ptp(nb) <= 1e-5
    if not unit_norms:
        score *= 2
        score -= na[:, None]
        score -= nb[None, :]
    i = np.arange(len(a))
    j = score.argmax(axis=1)
    best = score[i, j]
    keep = best >= score.max(axis=0)[j]  # a[i] is also nearest to b[j]
    i, j, best = i[keep], j[keep], best[keep]
    first = np.unique(j, return_index=True)[1]  # column ties: lowest i wins
    i, j, best = i[first], j[first], best[first]
    if ratio is not None:
        if unit_norms:  # squared distances |a|^2 + |b|^2 - 2 a.b
            d = float(na[0] + nb[0]) - 2.0 * score
            best = d[i, j]
        else:
            d = np.negative(score, out=score)
            best = -best
        d[i, j] = np.inf
        r2 = np.float32(ratio) ** 2
        ok = np.ones(len(i), bool)
        if d.shape[1] > 1:
            ok &= best < r2 * d[i].min(axis=1)
        if d.shape[0] > 1:
            ok &= best < r2 * d[:, j].min(axis=0)
        i, j = i[ok], j[ok]
    order = np.argsort(i)
    return np.stack([i[order], j[order]], axis=1).astype(np.int64)


def plausible_homography(
    H: np.ndarray, points: np.ndarray, max_scale_change: float, min_spread: float = 1.0
) -> bool:
    """True when homography ``H`` (3x3) is a believable view change at ``points`` ``(n, 2)``.

    Rejected: a map that folds or mirrors (the Jacobian determinant ``det(H) / w^3`` is not
    positive at every point, i.e. some point crosses the horizon line or the image is
    reflected); a local linear scale change ``sqrt(det J)`` outside ``[1/max_scale_change,
    max_scale_change]`` at any point; points (nearly) on one line (second principal
    standard deviation below ``min_spread``, same units as ``points``).
    """
    H = np.asarray(H, np.float64)
    pts = np.asarray(points, np.float64)
    if not np.all(np.isfinite(H)) or len(pts) < 4:
        return False
    w = pts @ H[2, :2] + H[2, 2]
    det_j = np.linalg.det(H) / w**3
    if not np.all(det_j > 0):
        return False
    scale = np.sqrt(det_j)
    if scale.min() < 1 / max_scale_change or scale.max() > max_scale_change:
        return False
    spread = np.linalg.svd(pts - pts.mean(axis=0), compute_uv=False)[-1] / np.sqrt(len(pts))
    return bool(spread >= min_spread)


@dataclass(frozen=True)
class Verification:
    """Outcome of verifying one query/database image pair.

    ``inliers``: total inlier count over all accepted homographies. ``inlier_counts``:
    inliers per homography, in the order found (largest first in practice).
    ``homographies``: ``(3, 3) float64`` maps from query input pixels to database input
    pixels, ``H[2, 2] == 1``. ``n_tentative``: number of tentative (mutual-NN) matches.
    ``matches``: ``(n_tentative, 2) int64`` ``[query feature, db feature]`` indices.
    ``labels``: ``(n_tentative,) int64``, the homography index explaining each match, -1
    for outliers.
    """

    inliers: int
    inlier_counts: tuple[int, ...]
    homographies: list[np.ndarray]
    n_tentative: int
    matches: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)


def verify_pair(
    query: LocalFeatures,
    db: LocalFeatures,
    min_inliers: int = 15,
    max_homographies: int = 3,
    reproj_threshold: float = 4.0,
    ratio: float | None = None,
    max_scale_change: float = 8.0,
    ransac_iters: int = 2000,
    confidence: float = 0.999,
    method: str = "usac",
) -> Verification:
    """Verify a pair by sequential RANSAC homographies on mutual-NN RootSIFT matches.

    Up to ``max_homographies`` rounds: ``cv2.findHomography`` (``method``: ``"usac"`` =
    ``cv2.USAC_DEFAULT``, LO-RANSAC with SPRT, or ``"ransac"`` = ``cv2.RANSAC``; reprojection
    threshold ``reproj_threshold`` in the database image's *working-resolution* pixels,
    i.e. ``reproj_threshold / db.scale`` input pixels) on the matches not yet explained;
    a model with fewer than ``min_inliers`` inliers ends the search; a model that fails
    :func:`plausible_homography` (checked in working pixels, ``max_scale_change`` linear)
    has its inliers removed but not counted. Both methods are deterministic (OpenCV seeds
    them). ``"usac"`` is the default: on Lund street pairs it found as many inliers as
    ``cv2.RANSAC`` in 1/30 of the time (RANSAC runs all ``ransac_iters`` at low inlier
    ratios).
    """
    import cv2

    methods = {"usac": cv2.USAC_DEFAULT, "ransac": cv2.RANSAC}
    if method not in methods:
        raise PlaceprintError(f"method must be one of {sorted(methods)}, got {method!r}")
    if min_inliers < 4 or max_homographies < 1 or not reproj_threshold > 0:
        raise PlaceprintError(
            "need min_inliers >= 4, max_homographies >= 1 and reproj_threshold > 0, got "
            f"{min_inliers}, {max_homographies}, {reproj_threshold}"
        )
    if query.descriptors.shape[1] != db.descriptors.shape[1]:
        raise PlaceprintError(
            f"descriptor sizes differ: {query.descriptors.shape[1]} vs {db.descriptors.shape[1]}"
        )
    matches = mutual_nearest_neighbours(query.descriptors, db.descriptors, ratio)
    labels = np.full(len(matches), -1, np.int64)
    src = query.xy[matches[:, 0]].astype(np.float64)
    dst = db.xy[matches[:, 1]].astype(np.float64)
    threshold = reproj_threshold / db.scale
    homographies: list[np.ndarray] = []
    counts: list[int] = []
    remaining = np.arange(len(matches))
    for _ in range(max_homographies):
        if len(remaining) < min_inliers:
            break
        H, mask = cv2.findHomography(
            src[remaining],
            dst[remaining],
            methods[method],
            threshold,
            maxIters=ransac_iters,
            confidence=confidence,
        )
        if H is None or mask is None:
            break
        mask = mask.ravel().astype(bool)
        if mask.sum() < min_inliers:
            break
        inl = remaining[mask]
        # plausibility in working pixels: x_work = s * x, so H_work = S_db H S_q^-1
        S_q = np.diag([query.scale, query.scale, 1.0])
        S_db = np.diag([db.scale, db.scale, 1.0])
        if plausible_homography(
            S_db @ H @ np.linalg.inv(S_q), src[inl] * query.scale, max_scale_change
        ):
            labels[inl] = len(homographies)
            homographies.append(H / H[2, 2])
            counts.append(int(mask.sum()))
        remaining = remaining[~mask]
    return Verification(
        inliers=int(sum(counts)),
        inlier_counts=tuple(counts),
        homographies=homographies,
        n_tentative=len(matches),
        matches=matches,
        labels=labels,
    )


class FeatureCache:
    """Database features by id, extracted once on first use (optionally LRU-bounded).

    ``images`` maps an id to an image (path or array) or to ready
    :class:`LocalFeatures`: a mapping, or a callable ``id -> image``. ``extractor`` turns
    an image into features (e.g. ``GeometricReranker.features``). ``max_items`` bounds
    how many are kept (least recently used dropped first); ``None`` keeps all.
    """

    def __init__(
        self,
        images: Mapping[Hashable, ImageLike | LocalFeatures]
        | Callable[[Hashable], ImageLike | LocalFeatures],
        extractor: Callable[[ImageLike], LocalFeatures] = extract,
        max_items: int | None = None,
    ) -> None:
        if max_items is not None and max_items < 1:
            raise PlaceprintError(f"max_items must be >= 1 or None, got {max_items}")
        self.images = images
        self.extractor = extractor
        self.max_items = max_items
        self._store: OrderedDict[Hashable, LocalFeatures] = OrderedDict()
        self.extracted = 0  # how many times the extractor ran

    def __len__(self) -> int:
        return len(self._store)

    def __call__(self, key: Hashable) -> LocalFeatures:
        """Features of database item ``key``."""
        if key in self._store:
            self._store.move_to_end(key)
            return self._store[key]
        if isinstance(self.images, Mapping):
            if key not in self.images:
                raise PlaceprintError(f"no database image with id {key!r}")
            item = self.images[key]
        else:
            item = self.images(key)
        if not isinstance(item, LocalFeatures):
            item = self.extractor(item)
            self.extracted += 1
        self._store[key] = item
        if self.max_items is not None and len(self._store) > self.max_items:
            self._store.popitem(last=False)
        return item


@dataclass(frozen=True)
class RerankResult:
    """Re-ranked candidates. Arrays other than ``order`` follow the *input* candidate order.

    ``order``: ``(k,) int64`` candidate indices, best first. ``inliers``: ``(k,) int64``
    verified inlier count per candidate (0 when below ``min_inliers`` or not verified).
    ``probabilities``: ``(k,) float64`` summing to 1. ``verified``: True when the best
    candidate reached ``confident_inliers`` and holds (nearly) all the probability.
    ``checked``: ``(k,) bool``, which candidates were verified (the first ``top_k``).
    ``seconds``: wall time of the call (extraction + verification), seconds.
    """

    order: np.ndarray
    inliers: np.ndarray
    probabilities: np.ndarray
    verified: bool
    checked: np.ndarray
    seconds: float
    verifications: list[Verification | None] = field(repr=False, default_factory=list)

    @property
    def best(self) -> int:
        """Index of the top candidate after re-ranking."""
        return int(self.order[0])


def softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    """``exp(s / T)`` normalised to sum 1, ``(k,) float64``."""
    z = np.asarray(scores, np.float64) / temperature
    e = np.exp(z - z.max())
    return e / e.sum()


@dataclass(frozen=True)
class GeometricReranker:
    """Re-rank the top retrieved database images by multi-homography inlier count.

    ``top_k`` candidates are verified (the rest keep their place after them);
    candidates with ``>= min_inliers`` move to the front sorted by inliers (ties keep
    retrieval order), the others follow in retrieval order. When the best has
    ``>= confident_inliers`` the answer is precise: ``verified=True`` and
    ``verified_mass`` of the probability goes to it (the rest spread as the retrieval
    distribution). Otherwise the retrieval distribution ``softmax(scores / temperature)``
    is kept (``temperature`` in retrieval-score units; 0.1 suits cosine similarities).
    Extraction: ``max_side``/``min_side``/``max_features``/``contrast_threshold``/``upright`` (see
    :func:`placeprint.verify.features.extract`); matching and RANSAC: see
    :func:`verify_pair`.

    >>> import numpy as np
    >>> from skimage.data import brick
    >>> img = brick()
    >>> noise = np.random.default_rng(0).integers(0, 256, img.shape)
    >>> r = GeometricReranker(top_k=2).rerank(img, [noise, img[40:, 60:]], [0.9, 0.8])
    >>> int(r.order[0]), r.verified
    (1, True)
    """

    top_k: int = 10
    min_inliers: int = 15
    confident_inliers: int = 50
    max_homographies: int = 3
    reproj_threshold: float = 4.0
    ratio: float | None = None
    max_scale_change: float = 8.0
    method: str = "usac"
    max_side: int = 640
    min_side: int = 256
    max_features: int = 2000
    contrast_threshold: float = 0.04
    upright: bool = True
    temperature: float = 0.1
    verified_mass: float = 0.99

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise PlaceprintError(f"top_k must be >= 1, got {self.top_k}")
        if not 4 <= self.min_inliers <= self.confident_inliers:
            raise PlaceprintError(
                "need 4 <= min_inliers <= confident_inliers, got "
                f"{self.min_inliers}, {self.confident_inliers}"
            )
        if not self.temperature > 0 or not 0 < self.verified_mass <= 1:
            raise PlaceprintError(
                f"need temperature > 0 and 0 < verified_mass <= 1, got {self.temperature}, "
                f"{self.verified_mass}"
            )
        if self.method not in ("usac", "ransac"):
            raise PlaceprintError(f"method must be 'usac' or 'ransac', got {self.method!r}")
        if self.max_homographies < 1 or not self.reproj_threshold > 0:
            raise PlaceprintError(
                "need max_homographies >= 1 and reproj_threshold > 0, got "
                f"{self.max_homographies}, {self.reproj_threshold}"
            )

    def features(self, image: ImageLike | LocalFeatures) -> LocalFeatures:
        """Local features of one image with this reranker's settings (features pass through;
        an image file's come from :mod:`placeprint.verify.feature_store` when kept there)."""
        if isinstance(image, LocalFeatures):
            return image
        from placeprint.verify.feature_store import cached_extract

        return cached_extract(image, **self.extraction)

    @property
    def extraction(self) -> dict:
        """The local-feature settings (:func:`placeprint.verify.features.extract`)."""
        return {
            "max_side": self.max_side,
            "min_side": self.min_side,
            "max_features": self.max_features,
            "contrast_threshold": self.contrast_threshold,
            "upright": self.upright,
        }

    def cache(
        self,
        images: Mapping[Hashable, ImageLike | LocalFeatures]
        | Callable[[Hashable], ImageLike | LocalFeatures],
        max_items: int | None = None,
    ) -> FeatureCache:
        """A :class:`FeatureCache` of database features extracted with these settings."""
        return FeatureCache(images, self.features, max_items)

    def verify(self, query: LocalFeatures, db: LocalFeatures) -> Verification:
        """:func:`verify_pair` with this reranker's settings."""
        return verify_pair(
            query,
            db,
            min_inliers=self.min_inliers,
            max_homographies=self.max_homographies,
            reproj_threshold=self.reproj_threshold,
            ratio=self.ratio,
            max_scale_change=self.max_scale_change,
            method=self.method,
        )

    def rerank(
        self,
        query: ImageLike | LocalFeatures,
        candidates: Sequence[ImageLike | LocalFeatures | Hashable],
        retrieval_scores: Sequence[float] | np.ndarray | None = None,
        fetch: FeatureCache
        | Mapping[Hashable, ImageLike | LocalFeatures]
        | Callable[[Hashable], ImageLike | LocalFeatures]
        | None = None,
    ) -> RerankResult:
        """Re-rank ``candidates`` (retrieval order, best first) for ``query``.

        Candidates are images (paths or arrays) or :class:`LocalFeatures`; with ``fetch``
        they are database ids looked up through it (a :class:`FeatureCache`, a mapping or
        a callable ``id -> image or features``), so each database image is extracted once
        when ``fetch`` caches. ``retrieval_scores`` ``(k,)``: higher is better (pass
        negative distances); ``None`` means a uniform retrieval distribution.
        """
        t0 = time.perf_counter()
        k = len(candidates)
        if k == 0:
            raise PlaceprintError("no candidates to re-rank: pass the retrieved database images")
        scores = np.zeros(k) if retrieval_scores is None else np.asarray(retrieval_scores, float)
        if scores.shape != (k,) or not np.all(np.isfinite(scores)):
            raise PlaceprintError(
                f"retrieval_scores must be {k} finite numbers (one per candidate), got "
                f"shape {scores.shape}"
            )
        if fetch is not None and not isinstance(fetch, FeatureCache):
            fetch = FeatureCache(fetch, self.features)
        q = self.features(query)
        n_check = min(self.top_k, k)
        inliers = np.zeros(k, np.int64)
        verifications: list[Verification | None] = [None] * k
        for i in range(n_check):
            db = fetch(candidates[i]) if fetch is not None else self.features(candidates[i])
            verifications[i] = v = self.verify(q, db)
            inliers[i] = v.inliers if v.inliers >= self.min_inliers else 0
        order = np.argsort(-inliers, kind="stable")
        probs = softmax(scores, self.temperature)
        best = int(order[0])
        verified = bool(inliers[best] >= self.confident_inliers)
        if verified:
            rest = probs.copy()
            rest[best] = 0.0
            total = rest.sum()
            probs = rest * ((1 - self.verified_mass) / total) if total > 0 else rest
            probs[best] = self.verified_mass if total > 0 else 1.0
        checked = np.zeros(k, bool)
        checked[:n_check] = True
        return RerankResult(
            order=order.astype(np.int64),
            inliers=inliers,
            probabilities=probs,
            verified=verified,
            checked=checked,
            seconds=time.perf_counter() - t0,
            verifications=verifications,
        )

"""The IM2GPS combination (Hays & Efros, CVPR 2008) as one L2-comparable vector.

IM2GPS compares two images by the sum of several feature distances, each divided
by its typical value over the database so that every feature weighs the same: tiny
images and GIST + colour by L2, the L*a*b*, texton and line histograms by chi2.
placeprint's indexes compare single vectors by L2, so each block is mapped so that
L2 approximates its distance: histograms through ``feature_map`` ("sqrt", the
Hellinger map, default; or "chi2", the Vedaldi-Zisserman additive-chi2 map, whose
squared L2 is about 2 x chi2), L2 blocks as they are. ``fit`` then learns the textons
(unless given) and, on a random sample of ``scale_sample`` database images (chosen
with ``seed``), each block's mean pairwise L2 distance; the block is multiplied by
its inverse, so every block's mean pairwise distance over the database is 1.

The squared L2 distance between two outputs is the sum over blocks of squared,
normalised block distances (IM2GPS sums unsquared ones); this is the closest a single
L2 vector gets. Measured on Nordland (winter queries, summer database, textons and
scales fitted on summer frames <= 20000; single-frame R@1 all frames / 20010-25000):
this vector 0.044 / 0.028 with "sqrt", 0.045 / 0.028 with "chi2"; the paper's sum of
unsquared chi2 / L2 distances 0.038 / 0.026. On these grey 64x32 frames the L*a*b*
histogram (only its 4 L bins vary) and the line histograms are at chance (0.002-0.004),
and weighing them equally drags the combination far below GIST alone (0.28 / 0.20);
``blocks=("tiny", "texton", "gist")`` gives 0.18 / 0.14.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from placeprint.describe.base import Describer
from placeprint.describe.color import (
    DEFAULT_MAX_SIDE,
    ImageViews,
    LabHistogramDescriber,
    check_max_side,
)
from placeprint.describe.geocontext import GeoContextDescriber
from placeprint.describe.gist import GistDescriber
from placeprint.describe.histograms import apply_map, check_feature_map, map_dim
from placeprint.describe.lines import LineDescriber
from placeprint.describe.texton import TextonDescriber
from placeprint.describe.tiny import TinyImageDescriber
from placeprint.errors import PlaceprintError

BLOCKS = ("tiny", "lab_hist", "texton", "lines", "gist", "geocontext")
# the default leaves geometric context out: on Nordland its learned weight is 0, and at
# equal weights it made the street photos' nearest neighbours worse (README)
DEFAULT_BLOCKS = BLOCKS[:5]
HISTOGRAM_BLOCKS = frozenset({"lab_hist", "texton", "lines"})


def mean_pairwise_distance(X: np.ndarray) -> float:
    """Mean L2 distance over all pairs ``i < j`` of the rows of ``X (n, d)``, n >= 2."""
    X = np.asarray(X, dtype=np.float64)
    sq = (X**2).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * X @ X.T, 0.0)
    iu = np.triu_indices(len(X), k=1)
    return float(np.sqrt(d2[iu]).mean())


class Im2gpsDescriber(Describer):
    """IM2GPS features, per-block normalised, as one vector (learns textons and block scales).

    ``blocks`` picks and orders the features (default the five of IM2GPS: tiny,
    lab_hist, texton, lines, gist; ``geocontext``, :mod:`placeprint.describe.geocontext`,
    is a sixth); ``textons`` is the texton vocabulary size; images are shrunk once to
    ``max_side`` pixels on the longer side and shared by all blocks. ``weights`` fixes the
    block weights; otherwise ``fit`` learns them from positives (or keeps them equal).
    """

    name = "im2gps"
    learns = True

    def __init__(
        self,
        blocks: Sequence[str] = DEFAULT_BLOCKS,
        textons: int = 512,
        feature_map: str = "sqrt",
        max_side: int | None = DEFAULT_MAX_SIDE,
        scale_sample: int = 500,
        fit_images: int = 1000,
        seed: int = 0,
        weights: Sequence[float] | None = None,
    ) -> None:
        blocks = (blocks,) if isinstance(blocks, str) else tuple(blocks)
        unknown = [b for b in blocks if b not in BLOCKS]
        if not blocks or unknown or len(set(blocks)) != len(blocks):
            raise PlaceprintError(
                f"im2gps blocks must be distinct names from {', '.join(BLOCKS)}; got {blocks}"
            )
        check_feature_map(feature_map)
        if int(scale_sample) < 2:
            raise PlaceprintError(f"scale_sample must be >= 2 images, got {scale_sample}")
        self.blocks = blocks
        self.textons = int(textons)
        self.feature_map = feature_map
        self.max_side = check_max_side(max_side)
        self.scale_sample = int(scale_sample)
        self.fit_images = int(fit_images)
        self.seed = int(seed)
        if weights is not None:
            weights = [float(w) for w in weights]
            if len(weights) != len(blocks) or not all(w >= 0 and np.isfinite(w) for w in weights):
                raise PlaceprintError(
                    f"im2gps weights must be {len(blocks)} numbers >= 0 (one per block)"
                )
        self.weights = weights
        self.parts = {b: self._make_part(b) for b in self.blocks}

    def _make_part(self, block: str) -> Describer:
        """The describer behind one block, at this describer's working resolution."""
        if block == "texton":
            return TextonDescriber(
                textons=self.textons,
                max_side=self.max_side,
                fit_images=self.fit_images,
                seed=self.seed,
            )
        cls = {
            "tiny": TinyImageDescriber,
            "lab_hist": LabHistogramDescriber,
            "lines": LineDescriber,
            "gist": GistDescriber,
        }.get(block)
        if cls is None:  # geocontext works at its own (smaller) size
            return GeoContextDescriber()
        return cls(max_side=self.max_side)

    def block_dims(self) -> dict[str, int]:
        """Output dimension of each block, in output order."""
        out = {}
        for b in self.blocks:
            raw = self.parts[b].dim
            out[b] = map_dim(raw, self.feature_map) if b in HISTOGRAM_BLOCKS else raw
        return out

    @property
    def dim(self) -> int:
        return sum(self.block_dims().values())

    def params(self) -> dict:
        """Options that change the output (and the fit)."""
        return {
            "blocks": list(self.blocks),
            "textons": self.textons,
            "feature_map": self.feature_map,
            "max_side": self.max_side,
            "scale_sample": self.scale_sample,
            "fit_images": self.fit_images,
            "seed": self.seed,
            "weights": self.weights,
        }

    def _raw_blocks(self, images: Sequence[str | Path | np.ndarray]) -> list[np.ndarray]:
        """Unscaled, mapped block features: one ``(n, block_dim) float32`` per block."""
        rows: dict[str, list[np.ndarray]] = {b: [] for b in self.blocks}
        for image in images:
            views = ImageViews.load(image, self.max_side)
            for b in self.blocks:
                part = self.parts[b]
                raw = part.histogram(views) if b in HISTOGRAM_BLOCKS else part.describe_views(views)
                rows[b].append(raw)
        out = []
        for b in self.blocks:
            X = np.stack(rows[b])
            out.append(apply_map(X, self.feature_map) if b in HISTOGRAM_BLOCKS else X)
        return out

    def fit(
        self,
        images: Sequence[str | Path | np.ndarray],
        textons: np.ndarray | None = None,
        positives: Sequence[str | Path | np.ndarray] | None = None,
    ) -> Im2gpsDescriber:
        """Learn textons (k-means; or take ``textons (k, f)`` learned elsewhere), block
        scales and, given ``positives`` (the first images' places under another condition,
        in the same order) and no fixed ``weights``, the block weights
        (:func:`learn_block_weights`); without positives every block weighs the same.

        Needs at least 2 images.
        """
        images = list(images)
        if len(images) < 2:
            raise PlaceprintError("im2gps fit needs at least 2 database images")
        if "texton" in self.blocks:
            if textons is not None:
                self.parts["texton"]._set_state({"textons": np.asarray(textons, np.float32)})
            else:
                self.parts["texton"].fit(images)
        rng = np.random.default_rng(self.seed)
        sample = sorted(rng.permutation(len(images))[: self.scale_sample])
        blocks = self._raw_blocks([images[i] for i in sample])
        means = np.array([mean_pairwise_distance(X) for X in blocks])
        scales = np.where(means > 1e-9, 1.0 / np.maximum(means, 1e-9), 1.0).astype(np.float32)
        self.scales_ = scales
        if self.weights is not None:
            self.weights_ = np.asarray(self.weights, np.float32)
        elif positives is not None and len(positives) >= 2:
            m = min(len(positives), len(images), self.fit_images)
            pick = sorted(rng.permutation(min(len(positives), len(images)))[:m])
            db = self._raw_blocks([images[i] for i in pick])
            qs = self._raw_blocks([positives[i] for i in pick])
            db = [X * f for X, f in zip(db, scales, strict=True)]
            qs = [X * f for X, f in zip(qs, scales, strict=True)]
            self.weights_ = learn_block_weights(qs, db, np.asarray(pick)).astype(np.float32)
        else:
            self.weights_ = np.ones(len(self.blocks), np.float32)
        return self

    def _state(self) -> dict[str, np.ndarray]:
        if not hasattr(self, "scales_"):
            return {}
        state = {"scales": self.scales_, "weights": self.weights_}
        if "texton" in self.blocks:
            state["textons"] = self.parts["texton"].textons_
        return state

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        scales = np.asarray(arrays["scales"], np.float32).reshape(-1)
        if len(scales) != len(self.blocks):
            raise PlaceprintError(
                f"im2gps state has {len(scales)} block scales, expected {len(self.blocks)}"
            )
        if "texton" in self.blocks:
            self.parts["texton"]._set_state({"textons": arrays["textons"]})
        self.scales_ = scales
        weights = arrays.get("weights")
        self.weights_ = (
            np.ones(len(scales), np.float32)
            if weights is None
            else np.asarray(weights, np.float32).reshape(-1)
        )
        if len(self.weights_) != len(self.blocks):
            raise PlaceprintError("im2gps state has the wrong number of block weights")

    def describe(self, images: Sequence[str | Path | np.ndarray]) -> np.ndarray:
        """Descriptors ``(n, dim) float32``: scaled blocks concatenated in ``blocks`` order."""
        self.check_fitted()
        blocks = self._raw_blocks(images)
        factors = self.scales_ * np.sqrt(self.weights_)
        return np.hstack([X * f for X, f in zip(blocks, factors, strict=True)])


def learn_block_weights(
    queries: Sequence[np.ndarray],
    database: Sequence[np.ndarray],
    rows: np.ndarray,
    neighbour_rows: int = 2,
    negatives: int = 10,
    rounds: int = 3,
    regularisation: float = 1e-2,
) -> np.ndarray:
    """Block weights ``(B,)`` (mean 1) under which each query is nearer its own place than
    the places that now come closest.

    ``queries[b]`` and ``database[b]`` are ``(m, d_b)`` scaled blocks, query ``i`` showing
    database row ``i``'s place; ``rows`` are the rows' positions in their collection:
    rows within ``neighbour_rows`` of the positive there (a route's neighbouring frames
    show the same place) are neither positive nor negative. Each round takes every
    query's ``negatives`` nearest wrong rows under the current weights and minimises the
    logistic loss of ``sum_b w_b (d_b(q, neg)^2 - d_b(q, pos)^2)`` over ``w >= 0``
    (L-BFGS-B, an L2 pull of ``regularisation`` towards equal weights).
    """
    from scipy.optimize import minimize

    B = len(queries)
    m = len(rows)
    sizes_ok = len(database) == B and all(
        len(q) == m and len(d) == m for q, d in zip(queries, database, strict=True)
    )
    if B < 1 or not sizes_ok:
        raise PlaceprintError("learn_block_weights needs matching (m, d) blocks")
    D = np.stack([_squared_distances(q, d) for q, d in zip(queries, database, strict=True)])
    rows = np.asarray(rows)
    near = np.abs(rows[:, None] - rows[None, :]) <= neighbour_rows
    own = np.arange(m)
    w = np.ones(B)
    k = min(negatives, m - int(near.sum(axis=1).max()))
    if k < 1:
        raise PlaceprintError(f"learning block weights needs more than {m} places")
    for _ in range(rounds):
        total = np.where(near, np.inf, np.tensordot(w, D, axes=1))
        neg = np.argpartition(total, k - 1, axis=1)[:, :k]
        delta = D[:, own[:, None], neg] - D[:, own, own][:, :, None]  # (B, m, k)
        delta = delta.reshape(B, -1).T  # (m k, B)
        scale = np.median(np.abs(delta.sum(axis=1))) or 1.0
        delta = delta / scale

        def loss(v: np.ndarray, delta: np.ndarray = delta) -> tuple[float, np.ndarray]:
            margin = delta @ v
            value = np.logaddexp(0.0, -margin).mean() + regularisation * ((v - 1) ** 2).sum()
            grad = -(delta * _sigmoid(-margin)[:, None]).mean(axis=0) + 2 * regularisation * (v - 1)
            return float(value), grad

        result = minimize(loss, w, jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * B)
        w = np.maximum(result.x, 0.0)
        w = w / w.mean() if w.sum() > 0 else np.ones(B)
    return w


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _squared_distances(Q: np.ndarray, X: np.ndarray) -> np.ndarray:
    Q, X = np.asarray(Q, np.float64), np.asarray(X, np.float64)
    sq = (Q**2).sum(axis=1)[:, None] + (X**2).sum(axis=1)[None, :] - 2 * Q @ X.T
    return np.maximum(sq, 0.0)

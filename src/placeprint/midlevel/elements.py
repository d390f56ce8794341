"""Style-aware mid-level elements (Lee, Efros & Hebert 2013), on HOG patches.

``fit(patches, labels)``:

1. **Mine** candidate elements: ``seeds`` random patches of the training images, each
   turned into an LDA detector (``w = S^-1 (x - mu)``, background mean and shrunk
   covariance of all patches, Hariharan et al. 2012); each image's best window is its
   detection; the ``top`` best detections form the element, whose mean makes the next
   detector (``rounds`` times): discriminative clustering.
2. Keep the **style-sensitive** ones: the entropy of the label distribution (over
   ``bins`` quantile bins of the training labels) of an element's detections; the
   ``keep`` lowest, skipping an element whose detections are mostly another kept one's.
3. Build **correspondences** across the label range: from an element's peak bin outwards,
   each next bin is searched with a detector trained on the bin before it (so the
   element may change gradually: the paper's "style-aware" detectors), ``per_bin``
   detections a bin.
4. Train a **style-aware regressor** per element and combine the elements' readings;
   ``combine`` says how (both chosen per label on tuning data, ``benchmarks/midlevel.py
   --tune``):

   - ``"mean"``: a ridge regression (CV-chosen penalty) from how strongly each of the
     element's bin detectors fires in an image to the label; an image's label is the mean
     of its elements' readings weighted by each element's cross-validated accuracy
     (elements that fire weaker than their median training detection are left out unless
     none fires);
   - ``"stacked"``: the paper's regressor on appearance: a ridge regression from the HOG
     of the element's best window in an image (any of its bin detectors) to the label,
     fitted on every training image; a second ridge regression, fitted on the elements'
     out-of-fold readings of the training images, weighs the readings into the label;
   - ``"pooled"``: one ridge regression (CV-chosen penalty) from every element's pooled
     responses to the label: each bin detector's strongest response in the image (is the
     element there, in this style?) and its mean over all windows (how much of the image
     looks like it). An element's part of the reading is its coefficients times its own
     responses; its ``training_error_`` (for ranking the elements in figures) is that of a
     ridge regression on its responses alone, cross-validated.

``predict(patches)``: the elements' readings combined as fitted, held to the learned
range.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from placeprint.errors import PlaceprintError

FILE_KIND = "placeprint-midlevel"
COMBINERS = ("mean", "stacked", "pooled")
#: candidate elements mined and style-sensitive elements kept ``(seeds, keep)`` that suit
#: each way of combining readings: ``pooled`` reads many weak elements in one regression,
#: ``mean`` and ``stacked`` a few strong ones each
ELEMENT_COUNTS = {"mean": (400, 40), "stacked": (400, 40), "pooled": (800, 300)}
_ALPHAS = np.logspace(-3, 3, 13)
_STATE_ARRAYS = ("detectors", "biases", "coef", "intercept", "weights", "training_error")


@dataclass(frozen=True)
class ElementSettings:
    """How elements are mined, chosen and trained (see the module docstring); the defaults
    are ``pooled`` with its element counts (:data:`ELEMENT_COUNTS`), the best combiner on
    two of the three labels' tuning folds."""

    seeds: int = 800
    top: int = 20
    rounds: int = 2
    keep: int = 300
    bins: int = 8
    per_bin: int = 5
    shrinkage: float = 0.1
    seed: int = 0
    combine: str = "pooled"

    def check(self) -> None:
        if self.seeds < 1 or self.top < 2 or self.keep < 1 or self.bins < 2 or self.per_bin < 1:
            raise PlaceprintError("need seeds >= 1, top >= 2, keep >= 1, bins >= 2, per_bin >= 1")
        if self.rounds < 0 or not 0 <= self.shrinkage <= 1:
            raise PlaceprintError("need rounds >= 0 and shrinkage in [0, 1]")
        if self.combine not in COMBINERS:
            raise PlaceprintError(f"combine must be one of {', '.join(COMBINERS)}, got "
                                  f"{self.combine!r}")  # fmt: skip


def element_settings(
    base: ElementSettings, combine: str, seeds: int | None = None, keep: int | None = None
) -> ElementSettings:
    """``base`` with ``combine`` and that combiner's element counts (:data:`ELEMENT_COUNTS`)
    where ``seeds`` or ``keep`` is not given; checked."""
    replace(base, combine=combine).check()  # an unknown combiner: one clear error
    default_seeds, default_keep = ELEMENT_COUNTS[combine]
    settings = replace(base, combine=combine, seeds=default_seeds if seeds is None else seeds,
                       keep=default_keep if keep is None else keep)  # fmt: skip
    settings.check()
    return settings


def label_entropy(labels: np.ndarray, edges: np.ndarray) -> float:
    """Entropy (bits) of the histogram of ``labels`` over the bins between ``edges``."""
    counts = np.bincount(np.clip(np.searchsorted(edges, labels, side="right") - 1, 0,
                                 len(edges) - 2), minlength=len(edges) - 1)  # fmt: skip
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def label_bins(labels: np.ndarray, bins: int) -> np.ndarray:
    """Bin edges over the label range: one bin per value when there are at most ``bins``
    distinct values (a season, a class), else ``bins`` quantile bins."""
    values = np.unique(labels)
    if len(values) < 2:
        raise PlaceprintError("the labels must take at least two values")
    if len(values) <= bins:
        mids = (values[1:] + values[:-1]) / 2
        return np.concatenate([[values[0] - 1.0], mids, [values[-1] + 1.0]])
    edges = np.unique(np.quantile(labels, np.linspace(0, 1, bins + 1)))
    edges[-1] += 1e-9 * max(1.0, abs(edges[-1]))
    return edges


def _ridge_per_element(F: np.ndarray, labels: np.ndarray, folds):
    """One ridge regression (CV-chosen penalty) per element on its features ``F (n, E, f)``:
    ``(coef (E, f), intercept (E,), out-of-fold readings (n, E))``."""
    from sklearn.linear_model import Ridge, RidgeCV
    from sklearn.model_selection import cross_val_predict

    coefs, intercepts = [], []
    held_out = np.empty(F.shape[:2])
    for e in range(F.shape[1]):
        reg = RidgeCV(alphas=_ALPHAS).fit(F[:, e], labels)
        held_out[:, e] = cross_val_predict(Ridge(alpha=reg.alpha_), F[:, e], labels, cv=folds)
        coefs.append(reg.coef_)
        intercepts.append(float(reg.intercept_))
    return np.array(coefs, np.float32), np.array(intercepts), held_out


def _best_bin_windows(scores: np.ndarray, where: np.ndarray, shape: tuple[int, int]):
    """``(n, E)`` window of each element's strongest bin detector, from the ``(n, E * bins)``
    best scores and windows of :func:`_best_windows`."""
    n = len(scores)
    best_bin = scores.reshape(n, *shape).argmax(axis=2)
    return np.take_along_axis(where.reshape(n, *shape), best_bin[..., None], 2)[..., 0]


def _pooled_responses(P: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(n, k, 2)``: each detector's best score in each image and its mean over the image's
    windows (the mean of ``x @ w`` is the mean window's ``@ w``), both plus offset ``b``."""
    best, _ = _best_windows(P, W, b)
    mean = P.mean(axis=1) @ W.T + b
    return np.stack([best, mean.astype(np.float32)], axis=2)


def _best_windows(P: np.ndarray, W: np.ndarray, b: np.ndarray | None = None, chunk: int = 256):
    """Per image and detector: the best window's score and index, ``(n, k)`` each."""
    n, p, d = P.shape
    scores = np.empty((n, len(W)), np.float32)
    where = np.empty((n, len(W)), np.int64)
    for i in range(0, n, chunk):
        s = P[i : i + chunk].reshape(-1, d) @ W.T  # (c * p, k)
        if b is not None:
            s = s + b
        s = s.reshape(-1, p, len(W))
        where[i : i + chunk] = s.argmax(axis=1)
        scores[i : i + chunk] = s.max(axis=1)
    return scores, where


class StyleAwareElements:
    """``fit(patches (n, p, d), labels (n,))``, ``predict(patches) -> (n,)`` labels."""

    def __init__(self, settings: ElementSettings | None = None) -> None:
        self.settings = settings or ElementSettings()
        self.settings.check()

    # ------------------------------------------------------------------ fit
    def _lda(self, mean: np.ndarray) -> np.ndarray:
        return (mean - self.mu_) @ self.inv_

    def fit(self, P: np.ndarray, labels: np.ndarray) -> StyleAwareElements:
        from sklearn.model_selection import KFold

        s = self.settings
        P = np.asarray(P, np.float32)
        labels = np.asarray(labels, np.float64).reshape(-1)
        if P.ndim != 3 or len(P) != len(labels) or len(P) < 2 * s.top:
            raise PlaceprintError(
                f"fit needs patches (n, p, d) and n labels with n >= {2 * s.top}; got "
                f"{P.shape} and {labels.shape}"
            )
        if not np.isfinite(P).all() or not np.isfinite(labels).all():
            raise PlaceprintError("patches and labels must be finite")
        n, p, d = P.shape
        flat = P.reshape(-1, d)
        rng = np.random.default_rng(s.seed)
        sample = flat[rng.choice(len(flat), size=min(len(flat), 50_000), replace=False)]
        self.mu_ = sample.mean(axis=0)
        cov = np.cov(sample, rowvar=False)
        cov += s.shrinkage * np.trace(cov) / d * np.eye(d)
        self.inv_ = np.linalg.inv(cov).astype(np.float32)
        self.edges_ = label_bins(labels, s.bins)
        bins = len(self.edges_) - 1
        bin_of = np.clip(np.searchsorted(self.edges_, labels, side="right") - 1, 0, bins - 1)

        # 1. mine: seeds -> detectors -> top detections -> refined detectors
        seed_img = rng.integers(0, n, size=s.seeds)
        seed_win = rng.integers(0, p, size=s.seeds)
        W = self._lda(P[seed_img, seed_win])
        for _ in range(s.rounds + 1):
            scores, where = _best_windows(P, W)
            top = np.argpartition(-scores, s.top - 1, axis=0)[: s.top]  # (top, S)
            members = P[top, where[top, np.arange(len(W))]]  # (top, S, d)
            W = self._lda(members.mean(axis=0))
        # 2. style-sensitive: low entropy of the detections' labels, not duplicates
        entropy = np.array([label_entropy(labels[top[:, k]], self.edges_) for k in range(len(W))])
        chosen: list[int] = []
        for k in np.argsort(entropy, kind="stable"):
            mine = set(top[:, k].tolist())
            if any(len(mine & set(top[:, j].tolist())) > s.top // 2 for j in chosen):
                continue
            chosen.append(int(k))
            if len(chosen) == s.keep:
                break
        # 3. correspondences across the label range, bin by bin from the peak outwards
        detectors, examples = [], []
        for k in chosen:
            peak = int(np.bincount(bin_of[top[:, k]], minlength=bins).argmax())
            per_bin_w: dict[int, np.ndarray] = {}
            found: dict[int, list[tuple[int, int]]] = {}
            order = sorted(range(bins), key=lambda b: (abs(b - peak), b))
            for b in order:
                near = peak if b == peak else b + (1 if b < peak else -1)
                w = W[k] if b == peak else per_bin_w[near]
                imgs = np.nonzero(bin_of == b)[0]
                sc, wh = _best_windows(P[imgs], w[None, :])
                best = np.argsort(-sc[:, 0], kind="stable")[: s.per_bin]
                found[b] = [(int(imgs[i]), int(wh[i, 0])) for i in best]
                per_bin_w[b] = self._lda(np.mean([P[i, j] for i, j in found[b]], axis=0))
            detectors.append(np.stack([per_bin_w[b] for b in range(bins)]))
            examples.append([found[b][0] for b in range(bins)])
        self.detectors_ = np.stack(detectors).astype(np.float32)  # (E, bins, d)
        # every bin detector on every training image, once: its median best score is the
        # detector's offset, and the offset scores feed the regressors below
        E = len(detectors)
        raw, where = _best_windows(P, self.detectors_.reshape(E * bins, d))
        raw = raw.reshape(n, E, bins)
        self.biases_ = (-np.median(raw, axis=0)).astype(np.float32)  # (E, bins)
        S = raw + self.biases_  # (n, E, bins), as _bin_scores gives
        self.examples_ = np.array(examples)  # (E, bins, 2): image, window of each bin's best
        self.entropy_ = entropy[chosen]
        # 4. each element's regressor and how the readings are combined
        folds = KFold(5, shuffle=True, random_state=s.seed)
        if s.combine == "stacked":  # a bias moves no detector's best window
            windows = _best_bin_windows(S.reshape(n, -1), where, (E, bins))
            self._fit_stacked(P[np.arange(n)[:, None], windows], labels, folds)
        elif s.combine == "pooled":  # as _pooled gives, from the scores already taken
            mean = P.mean(axis=1) @ self.detectors_.reshape(E * bins, d).T
            mean = mean.reshape(n, E, bins) + self.biases_
            self._fit_pooled(np.stack([S, mean], axis=3).reshape(n, E, 2 * bins), labels, folds)
        else:
            self._fit_mean(S, labels, folds)
        self.label_range_ = (float(labels.min()), float(labels.max()))
        return self

    def _fit_mean(self, S: np.ndarray, labels: np.ndarray, folds) -> None:
        """Regressors from each element's bin-detector scores ``S (n, E, bins)``; weights
        from their cross-validated errors."""
        self.coef_, self.intercept_, held_out = _ridge_per_element(S, labels, folds)
        self.training_error_ = np.abs(held_out - labels[:, None]).mean(axis=0)
        self.weights_ = 1.0 / np.maximum(self.training_error_, 1e-6 * (np.ptp(labels) + 1e-12))

    def _fit_stacked(self, F: np.ndarray, labels: np.ndarray, folds) -> None:
        """Appearance regressors on each element's best window ``F (n, E, d)`` in every
        training image, and a ridge regression over their out-of-fold readings."""
        from sklearn.linear_model import RidgeCV

        self.coef_, self.intercept_, held_out = _ridge_per_element(F, labels, folds)
        self.training_error_ = np.abs(held_out - labels[:, None]).mean(axis=0)
        stack = RidgeCV(alphas=_ALPHAS).fit(held_out, labels)
        self.weights_ = np.asarray(stack.coef_, np.float64)  # (E,), may be negative
        self.stack_intercept_ = float(stack.intercept_)

    def _fit_pooled(self, F: np.ndarray, labels: np.ndarray, folds) -> None:
        """One ridge regression on every element's pooled responses ``F (n, E, f)``; each
        element's own cross-validated error ranks it."""
        from sklearn.linear_model import RidgeCV

        n, E, f = F.shape
        _, _, held_out = _ridge_per_element(F, labels, folds)
        self.training_error_ = np.abs(held_out - labels[:, None]).mean(axis=0)
        joint = RidgeCV(alphas=_ALPHAS).fit(F.reshape(n, -1), labels)
        self.coef_ = np.asarray(joint.coef_, np.float32).reshape(E, f)
        self.intercept_ = np.array([float(joint.intercept_)])
        self.weights_ = np.ones(E)

    # -------------------------------------------------------------- predict
    def _pooled(self, P: np.ndarray) -> np.ndarray:
        """``(n, E, 2 * bins)``: every bin detector's best and mean response, less the
        detector's median best on the training images."""
        E, B, d = self.detectors_.shape
        R = _pooled_responses(P, self.detectors_.reshape(-1, d), self.biases_.reshape(-1))
        return R.reshape(len(P), E, 2 * B)

    def _element_windows(self, P: np.ndarray) -> np.ndarray:
        """``(n, E)``: the window where each element fires best (any of its bin detectors)."""
        E, B, d = self.detectors_.shape
        scores, where = _best_windows(P, self.detectors_.reshape(-1, d), self.biases_.reshape(-1))
        return _best_bin_windows(scores, where, (E, B))

    def _bin_scores(self, P: np.ndarray) -> np.ndarray:
        """``(n, E, bins)``: each element's style-specific detectors' best scores, less
        their median on the training images."""
        E, B, d = self.detectors_.shape
        scores, _ = _best_windows(P, self.detectors_.reshape(-1, d), self.biases_.reshape(-1))
        return scores.reshape(len(P), E, B)

    def _readings(self, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each element's label reading ``(n, E)`` and whether it fired ``(n, E)``."""
        S = self._bin_scores(P)
        readings = np.einsum("neb,eb->ne", S, self.coef_) + self.intercept_
        return readings, S.max(axis=2) >= 0

    def predict(self, P: np.ndarray) -> np.ndarray:
        """The label of each image ``(n,)`` read from its elements."""
        if not hasattr(self, "coef_"):
            raise PlaceprintError("the elements are not fitted")
        P = np.asarray(P, np.float32)
        d = self.detectors_.shape[2]
        if P.ndim != 3 or P.shape[2] != d:
            raise PlaceprintError(f"patches must be (n, p, {d}), got {P.shape}")
        if self.settings.combine == "stacked":
            F = P[np.arange(len(P))[:, None], self._element_windows(P)]  # (n, E, d)
            readings = np.einsum("ned,ed->ne", F, self.coef_) + self.intercept_
            label = readings @ self.weights_ + self.stack_intercept_
            return np.clip(label, *self.label_range_)
        if self.settings.combine == "pooled":
            label = np.einsum("nef,ef->n", self._pooled(P), self.coef_) + self.intercept_[0]
            return np.clip(label, *self.label_range_)
        readings, fired = self._readings(P)
        w = np.where(fired, self.weights_[None, :], 0.0)
        none = w.sum(axis=1) == 0
        w[none] = self.weights_
        label = (readings * w).sum(axis=1) / w.sum(axis=1)
        return np.clip(label, *self.label_range_)  # never outside what was learned

    def params(self) -> dict:
        return asdict(self.settings)

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """``(meta, arrays)``: everything predicting needs, for a file."""
        if not hasattr(self, "coef_"):
            raise PlaceprintError("the elements are not fitted")
        meta = {"settings": self.params(), "label_range": list(self.label_range_),
                "stack_intercept": getattr(self, "stack_intercept_", 0.0)}  # fmt: skip
        return meta, {name: getattr(self, f"{name}_") for name in _STATE_ARRAYS}

    @classmethod
    def from_state(cls, meta: dict, arrays: dict) -> StyleAwareElements:
        """The fitted elements :meth:`state` describes."""
        model = cls(ElementSettings(**meta["settings"]))
        for name in _STATE_ARRAYS:
            setattr(model, f"{name}_", np.array(arrays[name]))
        model.label_range_ = tuple(meta["label_range"])
        model.stack_intercept_ = float(meta.get("stack_intercept", 0.0))
        return model

    def save(self, path, layout) -> int:
        """Write what predicting needs (detectors, regressors, weights) and the HOG
        ``layout`` (atomically); returns the bytes written."""
        from placeprint.index.fileformat import write_container

        meta, arrays = self.state()
        return write_container(path, FILE_KIND, {**meta, "layout": asdict(layout)}, arrays)

    @classmethod
    def load(cls, path):
        """``(elements, layout)`` from a file written by :meth:`save`."""
        from placeprint.index.fileformat import read_container
        from placeprint.midlevel.hog import HogLayout

        meta, arrays, _ = read_container(path, FILE_KIND)
        return cls.from_state(meta, arrays), HogLayout.from_dict(meta["layout"])


def whole_image_regression(X: np.ndarray, y: np.ndarray):
    """The baseline: ridge regression (CV-chosen penalty) on whole-image HOG."""
    from sklearn.linear_model import RidgeCV

    return RidgeCV(alphas=np.logspace(-3, 4, 15)).fit(np.asarray(X, np.float64), y)

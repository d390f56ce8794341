"""Where on Earth: a calibrated density over the sphere from a geotagged database.

Three sources of evidence, one mixture of von Mises-Fisher kernels (IM2GPS, Hays &
Efros 2008; Revisiting IM2GPS, Vo et al. 2017; PlaNet, Weyand et al. 2016):

- **kNN**: the ``k`` nearest database descriptors vote with weights
  ``exp(-(d_i - d_1) / T)``; each neighbour's position carries a kernel at every scale
  of ``scales_km`` (street to continent), so a near-duplicate can pin a photo to metres
  while a vague match spreads over a region;
- **cells**: a softmax classifier from descriptors to adaptive S2 cells, each cell a
  kernel the size of the cell;
- **prior**: the photo density (photos per cell).

How much each scale, the classifier and the prior count, and the temperature ``T``,
are learned by maximising the likelihood of held-out database photos' true positions
(EM on the mixing weights), which is what makes the credible regions calibrated.
Modes: mean-shift over the neighbours' positions (clusters with fewer than
``min_matches`` neighbours are dropped, the IM2GPS rule) plus the classifier's
likely cells, completed by mean-shift over the density's samples when 5 % or more of
its mass lies far from all of those. A mode states a region, the disc of ``radius_km``
around it (the distance holding 90 % of the samples that belong to the mode: nearest to
it and within ``2 * mode_km``), and a probability, the density's mass inside that disc.
Held-out photos recalibrate both the credible levels and the mode probabilities (the
truth inside the stated disc); a collection of at least ``MIN_CALIBRATION_ROWS`` photos
is calibrated by leave-one-out over up to ``calibration_rows`` of them, a smaller one
says it is not. No probability is 1: a calibrated one is at most ``(n + 1) / (n + 2)``
for ``n`` calibration photos (Laplace), an uncalibrated one at most
``UNCALIBRATED_MAX``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from placeprint.errors import PlaceprintError
from placeprint.geo.distance import EARTH_RADIUS_KM
from placeprint.geo.prediction import GeoGuess, GeoPrediction

DEFAULT_SCALES_KM = (0.05, 0.5, 5.0, 50.0, 500.0, 2500.0)
#: street, city, region, country, continent: a guess's score is its mean chance to lie within each
RANK_THRESHOLDS_KM = (1.0, 25.0, 200.0, 750.0, 2500.0)
TEMPERATURES = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, np.inf)
FILE_KIND = "geolocator"
MODE_REGION_SHARE = 0.9  # a mode's disc holds this share of the samples that belong to it
MIN_CALIBRATION_ROWS = 10  # fewer held-out photos cannot calibrate: say so instead
#: photos that calibrate verified answers at build, each located from the others and
#: verified. They split into those that verify and those that do not, and each group's
#: 50 % level is read from its own table: with 100 photos in each, its coverage is off
#: by about 0.05 (one standard error), against 0.07 with 50 (the issue allows 0.08)
VERIFIED_CALIBRATION_ROWS = 200
UNCALIBRATED_MAX = 0.99  # an uncalibrated probability never claims certainty


def kappa_of_km(scale_km: np.ndarray | float) -> np.ndarray:
    """vMF concentration of a kernel whose per-axis spread is ``scale_km``."""
    sigma = np.asarray(scale_km, float) / EARTH_RADIUS_KM
    return 1.0 / sigma**2


def log_vmf(dot: np.ndarray, kappa: np.ndarray) -> np.ndarray:
    """Log density (per steradian) of a vMF kernel at cosine ``dot`` from its centre."""
    kappa = np.asarray(kappa, float)
    log_c = np.log(kappa) - np.log(2 * np.pi) - np.log1p(-np.exp(-2 * kappa))
    return log_c + kappa * (np.asarray(dot, float) - 1.0)


def unit(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """``(n, 3)`` unit vectors of positions in degrees."""
    from placeprint.geo.sphere import to_unit

    return to_unit(np.asarray(lat, float), np.asarray(lon, float))


def cell_kappa(levels: np.ndarray) -> np.ndarray:
    """Concentration of a kernel standing for an S2 cell of each ``level``.

    A level-``L`` cell covers on average ``4 pi R^2 / (6 * 4^L)``; a disc of that area
    has radius ``r`` and a kernel with per-axis spread ``r / 2`` holds most of it.
    """
    area = 4 * np.pi * EARTH_RADIUS_KM**2 / (6.0 * 4.0 ** np.asarray(levels, float))
    return kappa_of_km(np.sqrt(area / np.pi) / 2.0)


def neighbour_weights(dist: np.ndarray, temperature: float) -> np.ndarray:
    """Rows of ``exp(-(d - d_min) / T)`` over each row's neighbours, summing to 1."""
    dist = np.asarray(dist, float)
    if np.isinf(temperature):
        w = np.ones_like(dist)
    else:
        w = np.exp(-(dist - dist.min(axis=-1, keepdims=True)) / temperature)
    return w / w.sum(axis=-1, keepdims=True)


def em_mixing_weights(log_lik: np.ndarray, iters: int = 200, tol: float = 1e-9) -> np.ndarray:
    """Mixing weights ``(J,)`` maximising ``sum_n log sum_j pi_j exp(log_lik[n, j])``."""
    from scipy.special import logsumexp

    n, j = log_lik.shape
    pi = np.full(j, 1.0 / j)
    last = -np.inf
    for _ in range(iters):
        joint = log_lik + np.log(np.maximum(pi, 1e-300))
        total = logsumexp(joint, axis=1, keepdims=True)
        pi = np.exp(joint - total).mean(axis=0)
        ll = float(total.mean())
        if ll - last < tol:
            break
        last = ll
    return pi


def hit_rate_curve(stated, hit) -> tuple[np.ndarray, np.ndarray]:
    """Isotonic regression of "the truth lies in the stated disc" on the stated
    probability: its ``(x, y)`` knots, to interpolate."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(np.asarray(stated, float), np.asarray(hit, float))
    return np.asarray(iso.X_thresholds_, float), np.asarray(iso.y_thresholds_, float)


def share_at_or_below(table: np.ndarray, raw: np.ndarray | float) -> np.ndarray:
    """Share of the sorted held-out levels ``table`` at or below each raw level."""
    return np.searchsorted(table, np.asarray(raw, float), side="right") / len(table)


class Geolocator:
    """Fit on a geotagged database of descriptors; ``predict_proba`` gives a density per photo.

    ``k`` neighbours vote; ``scales_km`` the kernel sizes learned between;
    ``cells`` an :class:`~placeprint.geo.cells.AdaptiveCells` (fitted or not: an
    unfitted one is fitted on the database positions) enables the cell classifier
    (``classifier=True``; ``hidden`` units, ``None`` = linear softmax), the
    photo-density prior and albums; ``land`` keeps mass off the sea where the evidence
    allows; ``holdout`` share (at most ``max_holdout``) of the database is held out to
    learn the mixing weights; ``mode_km`` is the mean-shift bandwidth of the modes.
    ``shortlist``: how many database rows, nearest descriptor first, each prediction
    carries (``GeoPrediction.shortlist``; at least the ``k`` voters) for geometric
    verification to check beyond the voters.
    """

    def __init__(
        self,
        k: int = 25,
        scales_km: Sequence[float] = DEFAULT_SCALES_KM,
        cells=None,
        classifier: bool = True,
        hidden: int | None = None,
        prior: bool = True,
        land: bool = True,
        knn: bool = True,
        mode_km: float = 25.0,
        min_matches: int = 4,
        samples: int = 2000,
        holdout: float = 0.2,
        max_holdout: int = 2000,
        calibration_rows: int = 300,
        rank: str = "accuracy",
        seed: int = 0,
        shortlist: int = 0,
    ) -> None:
        if k < 1 or not scales_km or min(scales_km) <= 0 or mode_km <= 0 or samples < 10:
            raise PlaceprintError(
                f"need k >= 1, positive scales_km and mode_km, samples >= 10; got k={k}, "
                f"scales_km={tuple(scales_km)}, mode_km={mode_km}, samples={samples}"
            )
        if not 0 < holdout < 1:
            raise PlaceprintError(f"holdout must lie in (0, 1), got {holdout}")
        if not knn and cells is None:
            raise PlaceprintError("knn=False needs cells (the classifier) to say anything")
        self.k = int(k)
        self.scales_km = tuple(float(s) for s in scales_km)
        self.cells = cells
        self.classifier = bool(classifier)
        self.hidden = hidden
        self.prior = bool(prior)
        self.land = bool(land)
        self.knn = bool(knn)
        self.mode_km = float(mode_km)
        self.min_matches = int(min_matches)
        self.samples = int(samples)
        self.holdout = float(holdout)
        self.max_holdout = int(max_holdout)
        self.calibration_rows = int(calibration_rows)
        if rank not in ("accuracy", "probability"):
            raise PlaceprintError(f"rank must be 'accuracy' or 'probability', got {rank!r}")
        self.rank = rank
        self.seed = int(seed)
        if int(shortlist) < 0:
            raise PlaceprintError(f"shortlist must be >= 0, got {shortlist}")
        self.shortlist = int(shortlist)

    # -- fitting ----------------------------------------------------------------------
    @property
    def uses_cells(self) -> bool:
        """Whether cells (classifier and/or prior) take part."""
        return self.cells is not None and (self.classifier or self.prior)

    def fit(self, descriptors: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> Geolocator:
        """Store the database, fit cells and classifier, learn the mixing weights."""
        from placeprint.geo.collection import validate_positions

        X = self._check_descriptors(descriptors, None)
        lat, lon = np.asarray(lat, float).ravel(), np.asarray(lon, float).ravel()
        validate_positions(lat, lon)
        if len(lat) != len(X):
            raise PlaceprintError(f"{len(X)} descriptors but {len(lat)} positions")
        if len(X) < 3:
            raise PlaceprintError("a geolocator needs at least 3 geotagged database images")
        self.descriptors_, self.lat_, self.lon_ = X, lat, lon
        self.xyz_ = unit(lat, lon)
        self._build_search()
        rng = np.random.default_rng(self.seed)
        n_hold = int(min(self.max_holdout, max(1, round(self.holdout * len(X)))))
        held = np.sort(rng.choice(len(X), n_hold, replace=False))
        train = np.setdiff1d(np.arange(len(X)), held)
        if self.uses_cells:
            self._fit_cells(train)
        self._learn_weights(held)
        self._calibrate(self._calibration_rows(held, rng))
        if self.uses_cells and self.classifier:
            self._fit_classifier(np.arange(len(X)))  # final head sees every photo
        return self

    def _check_descriptors(self, X, dim: int | None) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or (dim is not None and X.shape[1] != dim):
            want = f"(n, {dim})" if dim else "(n, d)"
            raise PlaceprintError(f"descriptors must be {want}, got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise PlaceprintError("descriptors contain NaN or infinite values")
        return np.ascontiguousarray(X)

    def _build_search(self) -> None:
        import faiss

        self.search_ = faiss.IndexFlatL2(self.descriptors_.shape[1])
        self.search_.add(self.descriptors_)

    def _neighbours(self, X: np.ndarray, exclude: np.ndarray | None = None, k: int | None = None):
        """``(dist (m, k), rows (m, k))`` L2 distances (``k``: default the voters');
        ``exclude[i]`` drops a self match."""
        import faiss

        k = min(self.k if k is None else k, len(self.descriptors_) - (exclude is not None))
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1 if len(X) < 16 else threads)  # FACTS: 1 thread per query
        try:
            d2, rows = self.search_.search(X, k + (exclude is not None))
        finally:
            faiss.omp_set_num_threads(threads)
        if exclude is not None:
            keep = rows != exclude[:, None]
            order = np.argsort(~keep, axis=1, kind="stable")[:, :k]  # self first dropped
            d2 = np.take_along_axis(d2, order, 1)
            rows = np.take_along_axis(rows, order, 1)
        return np.sqrt(np.maximum(d2, 0.0)), rows

    def _fit_cells(self, train: np.ndarray) -> None:
        cells = self.cells
        if not hasattr(cells, "cell_ids_"):
            cells.fit(self.lat_, self.lon_)
        self.photo_cell_ = cells.assign(self.lat_, self.lon_)
        self.cell_xyz_ = unit(cells.centres_lat_, cells.centres_lon_)
        self.cell_kappa_ = cell_kappa(cells.levels_)
        counts = np.bincount(self.photo_cell_[self.photo_cell_ >= 0], minlength=cells.n_cells)
        self.cell_prior_ = (counts + 1.0) / (counts + 1.0).sum()
        if self.classifier:
            self._fit_classifier(train)

    def _fit_classifier(self, rows: np.ndarray) -> None:
        from placeprint.geo.classifier import CellClassifier

        rows = rows[self.photo_cell_[rows] >= 0]
        if len(np.unique(self.photo_cell_[rows])) < 2:
            raise PlaceprintError(
                "the cell classifier needs photos in at least 2 cells: use finer cells "
                "(smaller max_photos) or classifier=False"
            )
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():  # the held-out EM weighs a rough head down anyway
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.classifier_ = CellClassifier(hidden=self.hidden, seed=self.seed).fit(
                self.descriptors_[rows], self.photo_cell_[rows], self.cells.n_cells
            )

    def _component_log_lik(self, X, truth_xyz, exclude, temperature, cell_probs):
        """``(m, J)`` log density of each component at the true positions."""
        from scipy.special import logsumexp

        cols = []
        if self.knn:
            dist, rows = self._neighbours(X, exclude)
            logw = np.log(np.maximum(neighbour_weights(dist, temperature), 1e-300))
            dots = np.einsum("mkd,md->mk", self.xyz_[rows], truth_xyz)
            for s in self.scales_km:
                cols.append(logsumexp(logw + log_vmf(dots, kappa_of_km(s)), axis=1))
        if self.uses_cells:
            dots = truth_xyz @ self.cell_xyz_.T
            lv = log_vmf(dots, self.cell_kappa_[None, :])
            if cell_probs is not None:
                cols.append(logsumexp(lv + np.log(np.maximum(cell_probs, 1e-300)), axis=1))
            if self.prior:
                cols.append(logsumexp(lv + np.log(self.cell_prior_)[None, :], axis=1))
        return np.stack(cols, axis=1)

    def component_names(self) -> list[str]:
        """Names of the mixture's components, in the order of ``weights_``."""
        names = [f"knn_{s:g}km" for s in self.scales_km] if self.knn else []
        if self.uses_cells and self.classifier:
            names.append("classifier")
        if self.uses_cells and self.prior:
            names.append("prior")
        return names

    def _learn_weights(self, held: np.ndarray) -> None:
        from scipy.special import logsumexp

        X = self.descriptors_[held]
        truth = self.xyz_[held]
        cell_probs = None
        if self.uses_cells and self.classifier:
            cell_probs = self.classifier_.predict_proba(X)
        temps = TEMPERATURES if self.knn else (np.inf,)
        best = None
        for t in temps:
            ll = self._component_log_lik(X, truth, held, t, cell_probs)
            pi = em_mixing_weights(ll)
            score = float(np.mean(logsumexp(ll + np.log(np.maximum(pi, 1e-300)), axis=1)))
            if best is None or score > best[0]:
                best = (score, t, pi)
        self.heldout_log_lik_, self.temperature_, self.weights_ = best
        self.heldout_rows_ = held

    def _held_out_predictions(self, rows: np.ndarray):
        """``(row, prediction)`` of each database photo in ``rows`` located from the others
        (its own match excluded)."""
        dist = nb = probs = None
        if self.knn:
            dist, nb = self._neighbours(self.descriptors_[rows], rows, self._ranked_rows)
        if self.uses_cells and self.classifier:
            probs = self.classifier_.predict_proba(self.descriptors_[rows])
        for i, r in enumerate(rows):
            yield (
                r,
                self._predict_one(
                    None if dist is None else dist[i],
                    None if nb is None else nb[i],
                    None if probs is None else probs[i],
                ),
            )

    @property
    def _ranked_rows(self) -> int:
        """Neighbours a prediction looks up: the voters, or the longer shortlist."""
        return max(self.k, self.shortlist)

    def _calibration_rows(self, held: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Photos the calibration predicts, each from all the others (leave-one-out).

        The held-out rows when there are ``calibration_rows`` of them; a smaller
        collection uses every photo (up to ``calibration_rows``), so that it is
        calibrated from ``MIN_CALIBRATION_ROWS`` photos on.
        """
        n = len(self.descriptors_)
        if len(held) >= self.calibration_rows or n <= len(held):
            return held[: self.calibration_rows]
        if n <= self.calibration_rows:
            return np.arange(n)
        return np.sort(rng.choice(n, self.calibration_rows, replace=False))

    def _calibrate(self, rows: np.ndarray) -> None:
        """Recalibration on held-out photos (Kuleshov et al. 2018), each predicted from the
        others (its own match excluded).

        Credible levels: the held-out truths' raw levels, sorted; a raw level ``l`` maps
        to the share of held-out levels ``<= l`` (so reported regions hold their stated
        share of truths). Mode probabilities: isotonic regression of "the truth lies
        inside the mode's stated disc" on the raw probability (its mass in the disc).
        """

        from placeprint.geo.distance import haversine_km

        self.level_table_ = np.zeros(0)
        self.mode_x_ = self.mode_y_ = np.zeros(0)
        self.calibration_count_ = 0
        if len(rows) < MIN_CALIBRATION_ROWS:
            return
        levels, raw, hit = [], [], []
        for r, pred in self._held_out_predictions(rows):
            levels.append(pred.density.credible_level([self.lat_[r]], [self.lon_[r]])[0])
            for m in pred.modes:
                raw.append(m.probability)
                hit.append(haversine_km(m.lat, m.lon, self.lat_[r], self.lon_[r]) <= m.radius_km)
        self.calibration_count_ = len(rows)
        self.level_table_ = np.sort(np.asarray(levels, float))
        self.mode_x_, self.mode_y_ = hit_rate_curve(raw, hit)

    @property
    def calibrated(self) -> bool:
        """Whether held-out photos recalibrated the levels and mode probabilities."""
        return len(getattr(self, "level_table_", ())) > 0

    def calibrated_level(self, raw: np.ndarray | float) -> np.ndarray:
        """Raw credible level(s) -> calibrated ones (identity before calibration)."""
        raw = np.asarray(raw, float)
        table = getattr(self, "level_table_", np.zeros(0))
        if len(table) == 0:
            return raw
        return share_at_or_below(table, raw)

    def raw_level(self, p: float) -> float:
        """The raw HPD level whose region holds a calibrated share ``p`` of truths."""
        table = getattr(self, "level_table_", np.zeros(0))
        if len(table) == 0:
            return float(p)
        return float(np.quantile(table, p))

    def calibrate_verified(
        self,
        verifier,
        max_rows: int = VERIFIED_CALIBRATION_ROWS,
        seed: int | None = None,
        progress: bool = False,
    ) -> int:
        """Calibrate verified answers: database photos, each located from the others and
        checked by ``verifier`` (:class:`~placeprint.geo.verified.AnswerVerifier` over this
        geolocator's photos), as :meth:`_calibrate` does for unverified answers.

        Learns the credible-level table and the verified mode's probability (isotonic on
        "the truth lies in its disc") from the photos that verified (at least
        ``MIN_CALIBRATION_ROWS``; otherwise verified answers keep their raw levels and say
        so). The photos that did *not* verify calibrate the answers whose verification
        fails the same way (:meth:`with_failed_verification`): those are the harder photos
        (no close match), which the calibration of all photos would state too confidently.
        Returns how many verified. ``progress``: a bar on a terminal (a photo takes up to
        about a second: it may check ``verifier.top`` others).
        """

        from placeprint.geo.distance import haversine_km
        from placeprint.progress import progress_bar

        self._check_fitted()
        self.verified_level_table_ = np.zeros(0)
        self.verified_x_ = self.verified_y_ = np.zeros(0)
        self.failed_level_table_ = self.failed_x_ = self.failed_y_ = np.zeros(0)
        n = len(self.descriptors_)
        rng = np.random.default_rng(self.seed if seed is None else seed)
        rows = np.sort(rng.choice(n, min(n, max_rows), replace=False))
        levels, stated, hit = [], [], []
        failed_levels, failed_p, failed_hit = [], [], []
        with progress_bar(not progress) as bar:
            task = bar.add_task("calibrating verified answers", total=len(rows))
            for r, pred in self._held_out_predictions(rows):
                bar.advance(task)
                path = verifier.image_of_row(int(r))
                evidence = verifier.check(path, pred, in_collection=path is not None)
                lat, lon = self.lat_[r], self.lon_[r]
                if not evidence.verified:
                    failed_levels.append(pred.density.credible_level([lat], [lon])[0])
                    for m in pred.modes:
                        failed_p.append(m.probability)
                        failed_hit.append(haversine_km(m.lat, m.lon, lat, lon) <= m.radius_km)
                    continue
                out = self.with_verified_kernel(pred, evidence)
                levels.append(out.density.credible_level([lat], [lon])[0])
                best = out.best
                stated.append(best.probability)
                hit.append(haversine_km(best.lat, best.lon, lat, lon) <= best.radius_km)
        if len(levels) >= MIN_CALIBRATION_ROWS:
            self.verified_level_table_ = np.sort(np.asarray(levels, float))
            self.verified_x_, self.verified_y_ = hit_rate_curve(stated, hit)
        if len(failed_levels) >= MIN_CALIBRATION_ROWS:
            self.failed_level_table_ = np.sort(np.asarray(failed_levels, float))
            self.failed_x_, self.failed_y_ = hit_rate_curve(failed_p, failed_hit)
        return len(levels)

    @property
    def failed_calibrated(self) -> bool:
        """Whether answers whose verification failed have their own calibration."""
        return len(getattr(self, "failed_level_table_", ())) > 0

    def _failed_level(self, raw: np.ndarray | float) -> np.ndarray:
        return share_at_or_below(self.failed_level_table_, raw)

    def calibration_of(self, pred: GeoPrediction) -> dict:
        """Which held-out photos calibrated the answer ``pred``: ``{"answers": "verified" |
        "failed verification" | "all" | "none", "photos": n}``."""
        tables = (
            ("failed verification", "failed_level_table_", self._failed_level),
            ("verified", "verified_level_table_", self._verified_level),
        )
        for name, attr, level_map in tables:
            table = getattr(self, attr, ())
            if len(table) and pred.level_map == level_map:
                return {"answers": name, "photos": len(table)}
        if self.calibrated and pred.level_map == self.calibrated_level:
            return {"answers": "all", "photos": self.calibration_count}
        return {"answers": "none", "photos": 0}

    def with_failed_verification(self, pred: GeoPrediction) -> GeoPrediction:
        """``pred`` (an unverified answer) calibrated on the collection's photos that did not
        verify either, when there were at least ``MIN_CALIBRATION_ROWS`` of them: its levels
        by their table, its modes' probabilities by their hit rate (isotonic, capped at
        ``(n + 1) / (n + 2)``). Otherwise ``pred`` unchanged."""
        if not self.failed_calibrated:
            return pred
        n = len(self.failed_level_table_)
        x, y = self.failed_x_, self.failed_y_
        if x[0] > 0:  # below the smallest calibrated probability, towards (0, 0)
            x, y = np.concatenate([[0.0], x]), np.concatenate([[0.0], y])
        p = np.interp([m.probability for m in pred.modes], x, y)
        p = np.minimum(p / max(1.0, float(p.sum())), (n + 1.0) / (n + 2.0))
        modes = [
            dataclasses.replace(m, probability=float(q)) for m, q in zip(pred.modes, p, strict=True)
        ]
        return dataclasses.replace(pred, modes=self._ranked(modes), level_map=self._failed_level)

    @property
    def verified_calibrated(self) -> bool:
        """Whether verified answers were calibrated (:meth:`calibrate_verified`)."""
        return len(getattr(self, "verified_level_table_", ())) > 0

    def _verified_level(self, raw: np.ndarray | float) -> np.ndarray:
        return share_at_or_below(self.verified_level_table_, raw)

    @property
    def calibration_count(self) -> int:
        """Photos the probabilities were calibrated on (0: not calibrated)."""
        if not self.calibrated:
            return 0
        return int(getattr(self, "calibration_count_", 0) or len(self.level_table_))

    @property
    def probability_cap(self) -> float:
        """Highest probability a mode may state: ``(n + 1) / (n + 2)`` for ``n`` calibration
        photos (every one of them a hit is not certainty), ``UNCALIBRATED_MAX`` without."""
        n = self.calibration_count
        return (n + 1.0) / (n + 2.0) if n else UNCALIBRATED_MAX

    def _calibrated_modes(self, guesses: list[GeoGuess]) -> list[GeoGuess]:
        cap = self.probability_cap
        if len(getattr(self, "mode_x_", ())) == 0:
            return [dataclasses.replace(g, probability=min(g.probability, cap)) for g in guesses]
        # below the smallest probability seen in calibration, interpolate towards (0, 0):
        # a 5 % side mode does not inherit the hit rate of the 90 % modes calibrated on
        x, y = self.mode_x_, self.mode_y_
        if x[0] > 0:
            x, y = np.concatenate([[0.0], x]), np.concatenate([[0.0], y])
        p = np.interp([g.probability for g in guesses], x, y)
        p = np.minimum(p / max(1.0, float(p.sum())), cap)
        out = [
            dataclasses.replace(g, probability=float(q)) for g, q in zip(guesses, p, strict=True)
        ]
        return self._ranked(out)

    def with_verified_kernel(self, pred: GeoPrediction, evidence) -> GeoPrediction:
        """``pred`` with a verified position folded in (:mod:`placeprint.geo.verified`).

        A kernel of per-axis spread ``evidence.spread_km`` at the verified position takes
        ``evidence.mass`` of the density (the rest scaled by ``1 - mass``); the modes are
        found again with that position as a candidate, and the mode holding it is marked
        verified. Every mode states its mass in its disc (the verified one uncapped by the
        calibration of unverified answers).
        """
        from placeprint.geo.distance import haversine_km
        from placeprint.geo.sphere import VmfMixture

        old = pred.density
        lat = np.concatenate([old.lat_, [evidence.lat]])
        lon = np.concatenate([old.lon_, [evidence.lon]])
        kap = np.concatenate([old.kappa_, [kappa_of_km(evidence.spread_km)]])
        w = np.concatenate([old.weights_ * (1.0 - evidence.mass), [evidence.mass]])
        density = VmfMixture(kap).fit(lat, lon, w)
        rows = pred.neighbours if len(pred.neighbours) else None
        nw = pred.neighbour_weights if len(pred.neighbours) else None
        modes = self._modes(density, rows, nw, None, pinned=(evidence.lat, evidence.lon))
        near = [haversine_km(m.lat, m.lon, evidence.lat, evidence.lon) for m in modes]
        j = int(np.argmin(near))
        p = modes[j].probability
        if self.verified_calibrated:  # hit rate of verified answers with this stated mass
            n = len(self.verified_level_table_)
            p = min(float(np.interp(p, self.verified_x_, self.verified_y_)), (n + 1.0) / (n + 2.0))
        mine = dataclasses.replace(
            modes[j], probability=p, verified=True, inliers=int(evidence.inliers)
        )
        # the other modes keep their mass in their discs (the density already gave the
        # verified kernel its share; the calibration of unverified answers does not apply)
        cap = self.probability_cap
        others = [
            dataclasses.replace(m, probability=min(m.probability, cap))
            for i, m in enumerate(modes)
            if i != j
        ]
        out = GeoPrediction(
            density=density,
            modes=[mine, *others],  # the verified place first
            # verified answers have their own level table (calibrate_verified); without
            # one, the density's raw levels
            level_map=self._verified_level if self.verified_calibrated else None,
            neighbours=pred.neighbours,
            neighbour_weights=pred.neighbour_weights,
            shortlist=pred.shortlist,
            cells=pred.cells,
            components={**pred.components, "verified": float(evidence.mass)},
        )
        if self.uses_cells:
            out.cell_probs = self._cell_mass(lat, lon, w)
        return out

    # -- prediction -------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "weights_"):
            raise PlaceprintError("the geolocator is not fitted: fit it on a geotagged database")

    def _kernels(self, dist, rows, cell_probs):
        """Kernel centres (lat, lon), concentrations and weights of one photo's density."""
        names = self.component_names()
        pi = dict(zip(names, self.weights_, strict=True))
        lat, lon, kap, w = [], [], [], []
        if self.knn:
            nw = neighbour_weights(dist, self.temperature_)
            for s in self.scales_km:
                lat.append(self.lat_[rows])
                lon.append(self.lon_[rows])
                kap.append(np.full(len(rows), kappa_of_km(s)))
                w.append(pi[f"knn_{s:g}km"] * nw)
        if self.uses_cells:
            cw = np.zeros(self.cells.n_cells)
            if cell_probs is not None:
                cw += pi["classifier"] * cell_probs
            if self.prior:
                cw += pi["prior"] * self.cell_prior_
            order = np.argsort(cw)[::-1]
            cum = np.cumsum(cw[order]) / max(cw.sum(), 1e-300)
            keep = order[: min(len(order), int(np.searchsorted(cum, 0.999)) + 1, 500)]
            lat.append(self.cells.centres_lat_[keep])
            lon.append(self.cells.centres_lon_[keep])
            kap.append(self.cell_kappa_[keep])
            w.append(cw[keep])
        lat, lon, kap, w = (np.concatenate(a) for a in (lat, lon, kap, w))
        if self.land:
            from placeprint.geo.land import land_weights

            spread = np.clip(EARTH_RADIUS_KM / np.sqrt(kap) * 2, 0.5, 500.0)
            for r in np.unique(spread):  # each kernel scale: land share of its disc
                sel = spread == r
                w[sel] = w[sel] * land_weights(lat[sel], lon[sel], radius_km=float(r))
        return lat, lon, kap, w / w.sum()

    def predict_proba(self, descriptors: np.ndarray) -> list[GeoPrediction]:
        """One :class:`GeoPrediction` per row of ``descriptors``."""
        self._check_fitted()
        X = self._check_descriptors(descriptors, self.descriptors_.shape[1])
        dist = rows = None
        if self.knn:
            dist, rows = self._neighbours(X, k=self._ranked_rows)
        probs = None
        if self.uses_cells and self.classifier:
            probs = self.classifier_.predict_proba(X)
        out = []
        for i in range(len(X)):
            out.append(
                self._predict_one(
                    None if dist is None else dist[i],
                    None if rows is None else rows[i],
                    None if probs is None else probs[i],
                )
            )
        return out

    def predict(self, descriptors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best guess ``(lat, lon)`` in degrees per row."""
        best = [p.best for p in self.predict_proba(descriptors)]
        return np.array([b.lat for b in best]), np.array([b.lon for b in best])

    def _predict_one(self, dist, rows, cell_probs, kernel_scale=None) -> GeoPrediction:
        """One prediction from its neighbours ranked by distance (the first ``k`` vote; all
        are its shortlist), its cell probabilities, and optional per-kernel weights."""
        from placeprint.geo.sphere import VmfMixture

        shortlist = np.zeros(0, np.int64) if rows is None else np.asarray(rows, np.int64)
        if rows is not None:
            dist, rows = dist[: self.k], rows[: self.k]

        lat, lon, kap, w = self._kernels(dist, rows, cell_probs)
        if kernel_scale is not None:
            w = w * kernel_scale
            w = w / w.sum()
        density = VmfMixture(kap).fit(lat, lon, w)
        nw = None if rows is None else neighbour_weights(dist, self.temperature_)
        modes = self._modes(density, rows, nw, cell_probs)
        pred = GeoPrediction(
            density=density,
            modes=self._calibrated_modes(modes),
            level_map=self.calibrated_level,
            neighbours=np.zeros(0, np.int64) if rows is None else np.asarray(rows),
            neighbour_weights=np.zeros(0) if nw is None else nw,
            shortlist=shortlist,
            cells=self.cells if self.uses_cells else None,
            components=dict(zip(self.component_names(), map(float, self.weights_), strict=True)),
        )
        if self.uses_cells:
            pred.cell_probs = self._cell_mass(lat, lon, w)
        return pred

    def _cell_mass(self, lat, lon, w) -> np.ndarray:
        """Mass per cell, each kernel's weight given to the cell of its centre."""
        cell = self.cells.assign(lat, lon)
        inside = cell >= 0
        mass = np.bincount(cell[inside], weights=w[inside], minlength=self.cells.n_cells)
        return mass / max(mass.sum(), 1e-300)

    def _modes(self, density, rows, nw, cell_probs, pinned=None) -> list[GeoGuess]:
        from placeprint.geo.distance import haversine_km
        from placeprint.geo.sphere import mean_shift_modes

        cand_lat, cand_lon = [], []
        if pinned is not None:  # a verified position: a mode candidate of its own
            cand_lat.append(float(pinned[0]))
            cand_lon.append(float(pinned[1]))
        if rows is not None:
            for m in mean_shift_modes(
                self.lat_[rows],
                self.lon_[rows],
                nw,
                bandwidth_km=self.mode_km,
                min_members=min(self.min_matches, len(rows)),
            ):
                cand_lat.append(m.lat)
                cand_lon.append(m.lon)
        if cell_probs is not None:
            for c in np.flatnonzero(cell_probs >= 0.05):
                cand_lat.append(float(self.cells.centres_lat_[c]))
                cand_lon.append(float(self.cells.centres_lon_[c]))
        if not cand_lat:  # prior only: the density's own heaviest kernels
            top = np.argsort(density.weights_)[::-1][:5]
            cand_lat, cand_lon = list(density.lat_[top]), list(density.lon_[top])
        cand_lat, cand_lon = np.array(cand_lat), np.array(cand_lon)
        s_lat, s_lon = density.sample(self.samples, np.random.default_rng(self.seed))
        d = haversine_km(s_lat[:, None], s_lon[:, None], cand_lat[None], cand_lon[None])
        reach = d.min(axis=1) <= 2 * self.mode_km
        if (~reach).mean() >= 0.05:  # mass no candidate explains: modes of those samples
            rest = np.flatnonzero(~reach)[:400]
            extra = mean_shift_modes(
                s_lat[rest], s_lon[rest], None, self.mode_km, max(4, len(rest) // 50)
            )
            cand_lat = np.concatenate([cand_lat, [m.lat for m in extra]])
            cand_lon = np.concatenate([cand_lon, [m.lon for m in extra]])
            d = haversine_km(s_lat[:, None], s_lon[:, None], cand_lat[None], cand_lon[None])
        nearest = d.argmin(axis=1)
        reach = d[np.arange(len(d)), nearest] <= 2 * self.mode_km
        kept, peaks = [], []
        for j in range(len(cand_lat)):
            mine = (nearest == j) & reach
            if mine.mean() < 0.01:
                continue
            peak = self._peak(density, cand_lat[j], cand_lon[j], rows, pinned)
            same = [i for i, q in enumerate(peaks) if haversine_km(*q, *peak) < 1e-3]
            if same:  # two candidates climbed to one peak: one mode
                kept[same[0]] = kept[same[0]] | mine
            else:
                kept.append(mine)
                peaks.append(peak)
        guesses = []
        for mine, (lat_j, lon_j) in zip(kept, peaks, strict=True):
            near = haversine_km(s_lat, s_lon, lat_j, lon_j)
            # the stated region: the disc holding most of the mode's own samples, but no
            # more than half-way to the next mode (discs never overlap); the stated
            # probability: the density's mass inside it
            radius = float(np.quantile(near[mine], MODE_REGION_SHARE))
            others = [
                haversine_km(a, b, lat_j, lon_j) for a, b in peaks if (a, b) != (lat_j, lon_j)
            ]
            if others:
                radius = min(radius, 0.5 * float(min(others)))
            share = float((near <= radius).mean())
            matches = 0
            if rows is not None:
                dn = haversine_km(self.lat_[rows], self.lon_[rows], lat_j, lon_j)
                matches = int((dn <= max(self.mode_km, radius)).sum())
            score = float(np.mean([(near <= t).mean() for t in RANK_THRESHOLDS_KM]))
            guesses.append(GeoGuess(lat_j, lon_j, share, radius, matches, score=score))
        if not guesses:  # nothing holds 1 %: the candidate with most samples nearest
            j = int(np.bincount(nearest, minlength=len(cand_lat)).argmax())
            guesses.append(GeoGuess(float(cand_lat[j]), float(cand_lon[j]), 0.0, 0.0, 0))
        return self._ranked(guesses)

    def _ranked(self, guesses: list[GeoGuess]) -> list[GeoGuess]:
        key = (lambda g: -g.score) if self.rank == "accuracy" else (lambda g: -g.probability)
        return sorted(guesses, key=key)

    def _peak(self, density, lat: float, lon: float, rows, pinned=None) -> tuple[float, float]:
        """The densest point near a mode: the mode itself or a neighbour within ``mode_km``.

        Mean-shift at ``mode_km`` finds *which* place; the finer kernels of the density
        say *where* in it (a near-duplicate neighbour pins the photo to its position).
        """
        from placeprint.geo.distance import haversine_km

        pts_lat, pts_lon = np.array([lat]), np.array([lon])
        if rows is not None:
            near = haversine_km(self.lat_[rows], self.lon_[rows], lat, lon) <= self.mode_km
            pts_lat = np.concatenate([pts_lat, self.lat_[rows][near]])
            pts_lon = np.concatenate([pts_lon, self.lon_[rows][near]])
        if pinned is not None and haversine_km(pinned[0], pinned[1], lat, lon) <= self.mode_km:
            pts_lat = np.concatenate([pts_lat, [pinned[0]]])
            pts_lon = np.concatenate([pts_lon, [pinned[1]]])
        best = int(np.argmax(density.log_pdf(pts_lat, pts_lon)))
        return float(pts_lat[best]), float(pts_lon[best])

    # -- albums -----------------------------------------------------------------------
    def predict_album(
        self, descriptors: np.ndarray, timestamps: np.ndarray | None = None, **transition
    ) -> list[GeoPrediction]:
        """Predictions for the photos of one album, each smoothed by the others (HMM on cells).

        ``timestamps`` (seconds) set how far the camera may have moved between photos
        (:func:`placeprint.geo.album.transition_matrix`; ``transition`` options pass on).
        """
        from placeprint.geo.album import smooth_album

        self._check_fitted()
        if not self.uses_cells:
            raise PlaceprintError("albums need cells: build the geolocator with cells")
        X = self._check_descriptors(descriptors, self.descriptors_.shape[1])
        single = self.predict_proba(X)
        if len(X) < 2:
            return single
        lik = np.stack([p.cell_probs for p in single]) / self.cell_prior_[None, :] + 1e-12
        post = smooth_album(
            lik,
            self.cells.centres_lat_,
            self.cells.centres_lon_,
            timestamps,
            prior=self.cell_prior_,
            **transition,
        )
        dist = rows = probs = None
        if self.knn:
            dist, rows = self._neighbours(X)
        if self.classifier:
            probs = self.classifier_.predict_proba(X)
        out = []
        for i in range(len(X)):
            lat, lon, _, _ = self._kernels(
                None if dist is None else dist[i],
                None if rows is None else rows[i],
                None if probs is None else probs[i],
            )
            cell = self.cells.assign(lat, lon)
            ratio = np.ones(len(lat))
            inside = cell >= 0
            ratio[inside] = post[i, cell[inside]] / np.maximum(
                single[i].cell_probs[cell[inside]], 1e-300
            )
            out.append(
                self._predict_one(
                    None if dist is None else dist[i],
                    None if rows is None else rows[i],
                    None if probs is None else probs[i],
                    kernel_scale=ratio,
                )
            )
        return out

    # -- persistence ------------------------------------------------------------------
    def params(self) -> dict:
        """Constructor parameters (without the cells object)."""
        return {
            "k": self.k,
            "scales_km": list(self.scales_km),
            "classifier": self.classifier,
            "hidden": self.hidden,
            "prior": self.prior,
            "land": self.land,
            "knn": self.knn,
            "mode_km": self.mode_km,
            "min_matches": self.min_matches,
            "samples": self.samples,
            "holdout": self.holdout,
            "max_holdout": self.max_holdout,
            "calibration_rows": self.calibration_rows,
            "rank": self.rank,
            "seed": self.seed,
            "shortlist": self.shortlist,
        }

    def save(self, path: str | Path, meta: dict | None = None) -> int:
        """Write the fitted geolocator to one file (atomic); returns its size in bytes."""
        from placeprint.index.fileformat import write_container

        self._check_fitted()
        arrays = {
            "descriptors": self.descriptors_,
            "lat": self.lat_,
            "lon": self.lon_,
            "weights": np.asarray(self.weights_, float),
            "level_table": self.level_table_,
            "mode_x": self.mode_x_,
            "mode_y": self.mode_y_,
            "calibration_count": np.array(int(getattr(self, "calibration_count_", 0))),
            "verified_level_table": getattr(self, "verified_level_table_", np.zeros(0)),
            "verified_x": getattr(self, "verified_x_", np.zeros(0)),
            "verified_y": getattr(self, "verified_y_", np.zeros(0)),
            "failed_level_table": getattr(self, "failed_level_table_", np.zeros(0)),
            "failed_x": getattr(self, "failed_x_", np.zeros(0)),
            "failed_y": getattr(self, "failed_y_", np.zeros(0)),
        }
        info = {
            "params": self.params(),
            "temperature": None if np.isinf(self.temperature_) else float(self.temperature_),
            "heldout_log_lik": float(self.heldout_log_lik_),
            "user": meta or {},
        }
        if self.uses_cells:
            arrays.update({f"cells.{k}": v for k, v in self.cells.state().items()})
            info["cells_params"] = self.cells.params()
            if self.classifier:
                arrays.update({f"classifier.{k}": v for k, v in self.classifier_.state().items()})
                info["classifier_params"] = self.classifier_.params()
        return write_container(path, FILE_KIND, info, arrays)

    @classmethod
    def load(cls, path: str | Path) -> Geolocator:
        """Open a geolocator written by :meth:`save`."""
        from placeprint.geo.cells import AdaptiveCells
        from placeprint.geo.classifier import CellClassifier
        from placeprint.index.fileformat import read_container

        meta, arrays, _ = read_container(path, FILE_KIND)
        try:
            cells = None
            if "cells_params" in meta:
                part = {k[6:]: np.asarray(v) for k, v in arrays.items() if k.startswith("cells.")}
                cells = AdaptiveCells.from_state(part, meta["cells_params"])
            geo = cls(cells=cells, **meta["params"])
            geo.descriptors_ = np.ascontiguousarray(arrays["descriptors"], np.float32)
            geo.lat_ = np.asarray(arrays["lat"], float)
            geo.lon_ = np.asarray(arrays["lon"], float)
            geo.xyz_ = unit(geo.lat_, geo.lon_)
            geo.weights_ = np.asarray(arrays["weights"], float)
            geo.level_table_ = np.asarray(arrays["level_table"], float)
            geo.mode_x_ = np.asarray(arrays["mode_x"], float)
            geo.mode_y_ = np.asarray(arrays["mode_y"], float)
            count = arrays.get("calibration_count")  # absent in files of the first format
            geo.calibration_count_ = int(count) if count is not None else len(geo.level_table_)
            for name in ("verified_level_table", "verified_x", "verified_y", "failed_level_table",
                         "failed_x", "failed_y"):  # fmt: skip
                setattr(geo, name + "_", np.asarray(arrays.get(name, np.zeros(0)), float))
            t = meta["temperature"]
            geo.temperature_ = np.inf if t is None else float(t)
            geo.heldout_log_lik_ = float(meta["heldout_log_lik"])
            geo.user_meta_ = meta.get("user", {})
            if cells is not None:
                geo.photo_cell_ = cells.assign(geo.lat_, geo.lon_)
                geo.cell_xyz_ = unit(cells.centres_lat_, cells.centres_lon_)
                geo.cell_kappa_ = cell_kappa(cells.levels_)
                counts = np.bincount(geo.photo_cell_[geo.photo_cell_ >= 0], minlength=cells.n_cells)
                geo.cell_prior_ = (counts + 1.0) / (counts + 1.0).sum()
                if "classifier_params" in meta:
                    part = {
                        k[11:]: np.asarray(v)
                        for k, v in arrays.items()
                        if k.startswith("classifier.")
                    }
                    geo.classifier_ = CellClassifier.from_state(part, meta["classifier_params"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PlaceprintError(f"{path} is not a valid placeprint geolocator ({exc})") from None
        geo._build_search()
        return geo

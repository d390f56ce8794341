"""A photo's answer checked against the database photos it matched: geometric verification.

IM2GPS's rule: a photo of a place that shares enough geometrically consistent local
features with database photos is pinned to their position; a generic scene keeps the
spread-out density of its retrieval. :class:`AnswerVerifier` re-ranks the distinct
neighbours of an answer by verified inliers (RootSIFT, sequential homographies:
:class:`~placeprint.verify.GeometricReranker`) and, when the best has at least
``min_inliers``, adds a kernel at the verified photos' position to the answer's density.

Which neighbours: the voters of the kNN density, heaviest first, then the rest of the
answer's shortlist (nearest descriptor first), up to ``top``. They are checked in rounds
of ``round_size``; once a round ends with a verification of at least ``settle_inliers``,
the rest is not checked (a photo of a well-covered place is settled in the first round; a
photo whose place the global descriptor ranks low is searched deeper). One pair takes
about 10 ms on 2 cores (2,000 features each; the matrix product already uses both cores,
so checking pairs on two threads was no faster). The kernel:

- centre: the inlier-weighted mean position of the verified photos within
  ``cluster_km`` of the best one;
- spread (per axis): ``sqrt(s^2 + gps_km^2 + view_km^2)``, ``s`` the inlier-weighted RMS
  distance of those photos from the centre, ``gps_km`` the GPS noise of a geotag,
  ``view_km`` how far apart two cameras that see the same facade typically stand;
- mass: ``verified_probability(inliers)``, the chance that a verification with that many
  inliers is right (``1 - 0.2 * 2^(-(n - min_inliers) / 10)``: 0.8 at 15 inliers, 0.9 at
  25, 0.98 at 48), the rest of the density scaled by ``1 - mass``.

The verified mode is marked (``GeoGuess.verified``, ``inliers``); only it may state a
probability above the calibrated cap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from placeprint.errors import PlaceprintError

GPS_KM = 0.01  # a phone geotag's typical error, 10 m
#: per-axis spread of the camera offset between two photos that verify: they see the same
#: facade, not from the same spot (Lund + Berlin, upright RootSIFT, 125 pairs with 15+
#: inliers: median 17.6 m, 90 % within 37.5 m apart, i.e. about 15-17 m a axis;
#: ``benchmarks/photos.py`` reports it. Rotation-invariant features verified 88 pairs,
#: 12.7 / 24.9 m apart, and the spread was 12 m)
VIEW_KM = 0.016
FALSE_AT_MIN = 0.2  # chance a verification at exactly min_inliers is wrong
HALVING_INLIERS = 10.0  # ... halved by every this many more inliers
VERIFIED_MAX = 0.999  # however many inliers, a verification is not certainty
#: distinct neighbours an answer checks at most (``index build --verify-top``): the kNN
#: density's 25 voters, then the shortlist, in rounds of ``ROUND_SIZE`` until one settles
#: it. 100 checks cost 0.86 s a photo on 2 cores (600 photos of 640x480, none settled);
#: answers checking 1 to all of the Lund+Berlin photos are in the README (``benchmarks/photos.py
#: --verify-top``). Deeper because a shortlist of 25 is 4 % of a 600-photo collection: on
#: 200 phone photos of a city against 602 (an outside check), checking 20 verified 30 %,
#: although 73 % had a database photo within 25 m
DEFAULT_VERIFY_TOP = 100
LEGACY_VERIFY_TOP = 10  # what geolocators written before ``--verify-top`` were calibrated with
ROUND_SIZE = 25  # candidates checked before deciding whether to go deeper
SETTLE_INLIERS = 50  # a verification this strong ends the search after its round


def verified_probability(inliers: int, min_inliers: int = 15) -> float:
    """Chance that a verification with ``inliers`` inliers found the right place."""
    if inliers < min_inliers:
        return 0.0
    wrong = FALSE_AT_MIN * 2.0 ** (-(inliers - min_inliers) / HALVING_INLIERS)
    return float(min(1.0 - wrong, VERIFIED_MAX))


@dataclass
class Evidence:
    """What verification found for one answer (``verified`` when a kernel was added)."""

    verified: bool
    inliers: int = 0
    lat: float = float("nan")
    lon: float = float("nan")
    spread_km: float = 0.0
    mass: float = 0.0
    rows: list[int] = field(default_factory=list)  # database rows that verified
    checked: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        out = {
            "verified": self.verified,
            "inliers": int(self.inliers),
            "checked": int(self.checked),
            "seconds": round(self.seconds, 4),
        }
        if self.verified:
            out.update(
                lat=round(self.lat, 7),
                lon=round(self.lon, 7),
                spread_km=round(self.spread_km, 5),
                mass=round(self.mass, 6),
                rows=[int(r) for r in self.rows],
            )
        return out


class AnswerVerifier:
    """Verify answers of a :class:`~placeprint.geo.geolocator.Geolocator` against its photos.

    ``image_of_row(row)`` gives the database photo of a geolocator row (a path; ``None``
    when it is missing, and that candidate is skipped). Database features are extracted
    once and kept (up to ``cache_items`` photos, about 1 MB each; ``cache``: a
    :class:`~placeprint.verify.FeatureCache` by path to share); one verifier may serve
    several threads. ``upright``: upright RootSIFT (:mod:`placeprint.verify.features`);
    ``round_size`` / ``settle_inliers``: see the module docstring.
    """

    def __init__(
        self,
        geo,
        image_of_row: Callable[[int], str | Path | None],
        top: int = DEFAULT_VERIFY_TOP,
        min_inliers: int = 15,
        cluster_km: float = 0.2,
        gps_km: float = GPS_KM,
        view_km: float = VIEW_KM,
        cache_items: int = 64,
        cache=None,
        memo: dict | None = None,
        round_size: int = ROUND_SIZE,
        settle_inliers: int = SETTLE_INLIERS,
        upright: bool = True,
    ) -> None:
        from placeprint.verify import GeometricReranker

        if top < 1 or min_inliers < 4 or not cluster_km > 0 or not gps_km > 0 or view_km < 0:
            raise PlaceprintError(
                "need top >= 1, min_inliers >= 4, cluster_km > 0, gps_km > 0 and view_km >= 0"
            )
        if round_size < 1 or settle_inliers < min_inliers:
            raise PlaceprintError(
                f"need round_size >= 1 and settle_inliers >= min_inliers, got {round_size}, "
                f"{settle_inliers}"
            )
        self.geo = geo
        self.top = int(top)
        self.round_size = int(round_size)
        self.settle_inliers = int(settle_inliers)
        self.min_inliers = int(min_inliers)
        self.cluster_km = float(cluster_km)
        self.gps_km = float(gps_km)
        self.view_km = float(view_km)
        self.reranker = GeometricReranker(
            top_k=self.top,
            min_inliers=self.min_inliers,
            confident_inliers=self.min_inliers,
            upright=bool(upright),
        )
        self.image_of_row = image_of_row
        # keyed by photo path: verifiers of several geolocators over one collection share it
        self.cache = cache if cache is not None else self.reranker.cache(self._fetch, cache_items)
        self._lock = threading.Lock()
        # inliers by (query photo path, database photo path): a benchmark that verifies the
        # same pairs for many geolocators of one collection checks each pair once
        self.memo = memo

    def _fetch(self, path: str):
        """Features of a database photo; none when it is missing or unreadable (that
        candidate then verifies nothing)."""
        from placeprint.verify.features import LocalFeatures

        try:
            if path and Path(path).is_file():
                return self.reranker.features(path)
        except PlaceprintError:
            pass
        return LocalFeatures(np.zeros((0, 4)), np.zeros((0, 128)), (1, 1), 1.0)

    def store_features(self, rows, workers: int | None = None, progress: bool = False) -> int:
        """Extract the local features of the database photos of ``rows`` into the on-disk
        store (:mod:`placeprint.verify.feature_store`) unless they are there, on
        ``workers`` threads (default: every core), so that no answer has to: ``index build``
        does it for every photo (``progress``: a bar on a terminal). Missing or unreadable
        photos are skipped. Returns how many photos' features are stored."""
        from placeprint.progress import progress_bar
        from placeprint.threads import ordered_map
        from placeprint.verify.feature_store import store

        def one(row: int) -> bool:
            path = self.image_of_row(int(row))
            if path is None or not Path(path).is_file():
                return False
            try:
                return store(path, **self.reranker.extraction)
            except PlaceprintError:
                return False

        rows = list(rows)
        stored = 0
        with progress_bar(not progress) as bar:
            task = bar.add_task("local features of the photos", total=len(rows))
            for ok in ordered_map(one, rows, workers):
                stored += bool(ok)
                bar.advance(task)
        return stored

    def candidates(self, pred) -> list[int]:
        """Up to ``top`` distinct database rows to check: the answer's voters, heaviest
        first, then the rest of its shortlist, nearest first."""
        rows = np.asarray(pred.neighbours, np.int64)
        order = np.argsort(-np.asarray(pred.neighbour_weights, float), kind="stable")
        ranked = np.concatenate([rows[order], np.asarray(pred.shortlist, np.int64)])
        _, first = np.unique(ranked, return_index=True)
        return [int(r) for r in ranked[np.sort(first)][: self.top]]

    def _inliers(self, query, q_key: str | None, row: int) -> int:
        """Inliers of the query against database row ``row`` (0 below ``min_inliers``)."""
        path = self.image_of_row(int(row))
        key = (q_key, "" if path is None else str(path))
        if self.memo is not None and q_key is not None and key in self.memo:
            return int(self.memo[key])
        with self._lock:  # the cache is shared by the service's threads
            db = self.cache(key[1])
        v = self.reranker.verify(query, db)
        found = int(v.inliers) if v.inliers >= self.min_inliers else 0
        if self.memo is not None and q_key is not None:
            self.memo[key] = found
        return found

    def check(self, image, pred, in_collection: bool = False) -> Evidence:
        """Verify the answer ``pred`` of the photo ``image`` (path or pixel array).

        ``in_collection``: ``image`` is the path of one of the database photos (as in
        calibration), so its features come from the cache the candidates use."""
        from placeprint.geo.distance import haversine_km

        t0 = time.perf_counter()
        rows = self.candidates(pred)
        if not rows:
            return Evidence(False)
        q_key = str(image) if isinstance(image, str | Path) else None
        try:
            if in_collection and q_key is not None:
                with self._lock:
                    query = self.cache(q_key)
            else:
                query = self.reranker.features(image)
        except PlaceprintError:
            return Evidence(False, seconds=time.perf_counter() - t0)
        inliers = np.zeros(len(rows), np.int64)
        checked = 0
        while checked < len(rows):
            stop = min(checked + self.round_size, len(rows))
            for i in range(checked, stop):
                inliers[i] = self._inliers(query, q_key, rows[i])
            checked = stop
            if inliers.max() >= self.settle_inliers:
                break
        rows, inliers = rows[:checked], inliers[:checked]
        seconds = time.perf_counter() - t0
        if inliers.max() < self.min_inliers:
            return Evidence(False, int(inliers.max()), checked=checked, seconds=seconds)
        lat, lon = self.geo.lat_[rows], self.geo.lon_[rows]
        best = int(np.argmax(inliers))
        near = (inliers > 0) & (haversine_km(lat, lon, lat[best], lon[best]) <= self.cluster_km)
        w = inliers[near].astype(float)
        c_lat, c_lon = (
            float(np.average(lat[near], weights=w)),
            float(np.average(lon[near], weights=w)),
        )
        d = haversine_km(lat[near], lon[near], c_lat, c_lon)
        spread = float(np.sqrt(np.average(d**2, weights=w) + self.gps_km**2 + self.view_km**2))
        return Evidence(
            True,
            int(inliers[best]),
            c_lat,
            c_lon,
            spread,
            verified_probability(int(inliers[best]), self.min_inliers),
            [int(r) for r in np.asarray(rows)[near]],
            checked,
            seconds,
        )

    def apply(self, image, pred):
        """The answer with verification folded in; its ``verification`` holds the
        :class:`Evidence` (the input answer is left as it was)."""
        import dataclasses

        evidence = self.check(image, pred)
        if evidence.verified:
            out = self.geo.with_verified_kernel(pred, evidence)
        else:  # calibrated on the collection's photos that did not verify either
            out = self.geo.with_failed_verification(pred)
        return dataclasses.replace(out, verification=evidence)

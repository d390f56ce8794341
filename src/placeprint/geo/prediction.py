"""What a geolocation answer holds: a density over the sphere, its modes, a cell distribution.

A :class:`GeoPrediction` is a weighted mixture of von Mises-Fisher kernels (the kNN
neighbours' positions at several scales, the classifier's cells, the photo-density
prior), its modes with their probability mass and radius, and, when cells are known,
the discrete distribution over them. It is what ``Geolocator.predict_proba`` returns
and what the command line, the maps and the web service show.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from placeprint.geo.sphere import VmfMixture


@dataclass(frozen=True)
class GeoGuess:
    """One mode of the density: position (degrees), probability mass inside the disc of
    ``radius_km`` around it, matching neighbours, name, accuracy score, and whether
    geometric verification pinned it (with how many inliers)."""

    lat: float
    lon: float
    probability: float
    radius_km: float
    matches: int = 0
    name: str | None = None
    score: float = 0.0
    verified: bool = False  # geometric verification pinned it (placeprint.geo.verified)
    inliers: int = 0

    @property
    def mass(self) -> float:
        """Alias of ``probability`` (what the map functions read)."""
        return self.probability

    def to_dict(self) -> dict:
        """Plain JSON-ready values."""
        return {
            "lat": round(float(self.lat), 7),
            "lon": round(float(self.lon), 7),
            "probability": round(float(self.probability), 6),
            "radius_km": round(float(self.radius_km), 4),
            "matches": int(self.matches),
            "name": self.name,
            "score": round(float(self.score), 6),
            "verified": bool(self.verified),
            "inliers": int(self.inliers),
        }


@dataclass
class GeoPrediction:
    """A guess of where one photo was taken (calibrated when its geolocator is).

    ``density`` is the full mixture (``log_pdf``, ``sample``, ``credible_level``);
    ``modes`` its best guesses (the geolocator's ranking: expected accuracy by default);
    ``cell_probs`` the mass per cell of ``cells`` (when the geolocator has cells);
    ``neighbours`` the database rows that voted and their weights; ``shortlist`` the
    database rows nearest by descriptor, nearest first (the voters and, when the
    geolocator keeps a longer shortlist, more), for verification to check.
    """

    density: VmfMixture
    modes: list[GeoGuess]
    neighbours: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    neighbour_weights: np.ndarray = field(default_factory=lambda: np.zeros(0))
    shortlist: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    cell_probs: np.ndarray | None = None
    cells: object | None = None
    components: dict = field(default_factory=dict)
    level_map: Callable[[np.ndarray], np.ndarray] | None = None
    verification: object | None = None  # placeprint.geo.verified.Evidence, when checked

    @property
    def best(self) -> GeoGuess:
        """The most probable mode."""
        return self.modes[0]

    def credible_level(self, lat: float, lon: float, samples: int = 4000, rng: int = 0) -> float:
        """Calibrated level of the smallest highest-density region holding ``(lat, lon)``.

        The point lies inside the p-credible region iff the level is ``<= p``; the
        geolocator's held-out recalibration (``level_map``) is applied when present.
        """
        raw = self.density.credible_level([lat], [lon], samples=samples, rng=rng)
        return float((self.level_map(raw) if self.level_map is not None else raw)[0])

    def grid(
        self, extent: tuple[float, float, float, float] | None = None, shape=(180, 360)
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(lat (H,), lon (W,), density per km^2 (H, W))`` over ``(lon0, lon1, lat0, lat1)``."""
        lon0, lon1, lat0, lat1 = extent or (-180.0, 180.0, -90.0, 90.0)
        h, w = shape
        lat = np.linspace(lat1, lat0, h)
        lon = np.linspace(lon0, lon1, w)
        LA, LO = np.meshgrid(lat, lon, indexing="ij")
        return lat, lon, self.density.pdf_km2(LA.ravel(), LO.ravel()).reshape(h, w)

    def cell_mass(
        self, extent: tuple[float, float, float, float], shape=(180, 360)
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(lat (H,), lon (W,), probability mass per grid cell (H, W))`` over ``extent``.

        Each mixture component's weight goes to the cell holding its centre: unlike the
        density sampled at cell centres, a peak a few metres wide still shows on a map of
        a whole country (components narrower than a cell, the usual case there).
        """
        lon0, lon1, lat0, lat1 = extent
        h, w = shape
        lat_edges = np.linspace(lat1, lat0, h + 1)
        lon_edges = np.linspace(lon0, lon1, w + 1)
        mix = self.density
        mass, _, _ = np.histogram2d(
            mix.lat_, mix.lon_, bins=[lat_edges[::-1], lon_edges], weights=mix.weights_
        )
        lat = (lat_edges[:-1] + lat_edges[1:]) / 2
        lon = (lon_edges[:-1] + lon_edges[1:]) / 2
        return lat, lon, mass[::-1]

    def to_dict(self) -> dict:
        """Modes and summary as JSON-ready values."""
        out = {"modes": [m.to_dict() for m in self.modes], "components": self.components}
        if self.verification is not None:
            out["verification"] = self.verification.to_dict()
        if len(self.neighbours):
            out["neighbours"] = [
                {"row": int(i), "weight": round(float(w), 6)}
                for i, w in zip(self.neighbours, self.neighbour_weights, strict=True)
            ]
        return out

    def to_geojson(self, top_cells: int = 200) -> dict:
        """GeoJSON FeatureCollection: the modes (points) and the most probable cells."""
        from placeprint.geo.maps import modes_to_geojson

        features = list(modes_to_geojson(self.modes)["features"])
        if self.cells is not None and self.cell_probs is not None:
            order = np.argsort(self.cell_probs)[::-1][:top_cells]
            order = order[self.cell_probs[order] > 0]
            cells = self.cells.to_geojson(values={"probability": self.cell_probs})
            features += [cells["features"][i] for i in order]
        return {"type": "FeatureCollection", "features": features}

"""PlaNet-style adaptive S2 cells: split busy cells, drop empty ones (Weyand et al., 2016).

The Earth is covered by the 6 S2 faces; a cell at level ``L`` has 4 children at ``L + 1``
(level 30 is ~1 cm). :class:`AdaptiveCells` starts from the cells at ``min_level`` that
hold photos, splits every cell with more than ``max_photos`` (PlaNet's t1) photos into its
children until ``max_level``, then discards cells with fewer than ``min_photos`` (t2)
photos. The kept cells never overlap, so each point lies in at most one of them.

Leaf cell ids come from ``s2sphere`` (once per point); every parent/level computation
afterwards is vectorised numpy on ``uint64`` ids.

>>> import numpy as np
>>> lat, lon = np.array([52.52, 52.53, 48.85]), np.array([13.40, 13.41, 2.35])
>>> cells = AdaptiveCells(max_photos=2, min_photos=1, max_level=5).fit(lat, lon)
>>> cells.assign(np.array([52.5]), np.array([13.4])).tolist()
[0]
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import s2sphere

from placeprint.errors import PlaceprintError

MAX_LEVEL = 30
FILE_KIND = "adaptive-cells"
_FORMAT = 1
_U1 = np.uint64(1)


# ---------------------------------------------------------------- uint64 cell-id arithmetic


def lsb_for_level(level: np.ndarray | int) -> np.ndarray:
    """Lowest set bit of a cell id at ``level``: ``1 << 2 * (30 - level)`` as uint64."""
    shift = (2 * (MAX_LEVEL - np.asarray(level, np.int64))).astype(np.uint64)
    return np.left_shift(_U1, shift)


def parent_ids(ids: np.ndarray, level: int) -> np.ndarray:
    """Ids (uint64) of the ancestors at ``level`` of cell ``ids`` at a finer (or equal) level."""
    lsb = lsb_for_level(level)
    ids = np.asarray(ids, np.uint64)
    return (ids & ~(lsb * np.uint64(2) - _U1)) | lsb


def levels_of(ids: np.ndarray) -> np.ndarray:
    """Level (0..30, int64) of each valid cell id, from its lowest set bit."""
    ids = np.asarray(ids, np.uint64)
    low = ids & (~ids + _U1)  # lowest set bit; a power of two, exact in float64
    tz = np.log2(low.astype(np.float64)).astype(np.int64)
    return MAX_LEVEL - tz // 2


def leaf_ids(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Leaf (level-30) S2 cell ids, uint64, of points in degrees (one s2sphere call each)."""
    make = s2sphere.CellId.from_lat_lng
    deg = s2sphere.LatLng.from_degrees
    return np.fromiter(
        (make(deg(a, b)).id() for a, b in zip(lat.tolist(), lon.tolist(), strict=True)),
        dtype=np.uint64,
        count=len(lat),
    )


def check_latlon(lat, lon) -> tuple[np.ndarray, np.ndarray]:
    """Validate points in degrees; returns 1-D float64 ``(lat, lon)`` or raises PlaceprintError."""
    lat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lon = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    if lat.ndim != 1 or lat.shape != lon.shape:
        raise PlaceprintError(
            f"lat and lon must be 1-D arrays of one length, got shapes {lat.shape} and {lon.shape}"
        )
    if not (np.isfinite(lat).all() and np.isfinite(lon).all()):
        raise PlaceprintError("lat/lon contain NaN or infinite values; drop those points first")
    if lat.size and (np.abs(lat).max() > 90 or np.abs(lon).max() > 180):
        raise PlaceprintError(
            "lat must lie in [-90, 90] and lon in [-180, 180] degrees (are they swapped?)"
        )
    return lat, lon


# ------------------------------------------------------------- rings on the sphere -> lon/lat


def _clip_half(ring: np.ndarray, keep_below: bool, at: float = 180.0) -> np.ndarray:
    """Sutherland-Hodgman clip of a closed-free (k, 2) lon/lat ring to lon <= at (or >= at)."""
    out = []
    k = len(ring)
    for i in range(k):
        p, q = ring[i], ring[(i + 1) % k]
        p_in = p[0] <= at if keep_below else p[0] >= at
        q_in = q[0] <= at if keep_below else q[0] >= at
        if p_in:
            out.append(p)
        if p_in != q_in:
            t = (at - p[0]) / (q[0] - p[0])
            out.append(np.array([at, p[1] + t * (q[1] - p[1])]))
    return np.array(out).reshape(-1, 2)


def _ccw_closed(ring: np.ndarray) -> np.ndarray | None:
    """Counter-clockwise (RFC 7946), closed ring; None when degenerate (< 3 distinct points)."""
    keep = np.ones(len(ring), bool)
    keep[1:] = np.any(np.abs(np.diff(ring, axis=0)) > 1e-12, axis=1)
    ring = ring[keep]
    if len(ring) > 1 and np.allclose(ring[0], ring[-1]):
        ring = ring[:-1]
    if len(ring) < 3:
        return None
    x, y = ring[:, 0], ring[:, 1]
    area2 = np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)
    if abs(area2) < 1e-18:
        return None
    if area2 < 0:
        ring = ring[::-1]
    return np.vstack([ring, ring[:1]])


def sphere_ring_to_lonlat(xyz: np.ndarray) -> list[np.ndarray]:
    """Closed (k, 2) lon/lat rings (degrees) drawing a polygon given by (k, 3) unit vectors.

    The points are the polygon's boundary in order (densify long edges first). Longitudes are
    unwrapped along the boundary; a vertex exactly at a pole becomes two points at that pole's
    latitude; a boundary that winds around a pole is closed through it. A polygon that crosses
    the antimeridian is cut at lon = +-180 into two parts, as RFC 7946 (GeoJSON) asks, so every
    returned ring lies within [-180, 180]. Rings are counter-clockwise and closed.
    """
    xyz = np.asarray(xyz, np.float64)
    lat = np.degrees(np.arcsin(np.clip(xyz[:, 2], -1.0, 1.0)))
    lon = np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0]))
    at_pole = np.abs(xyz[:, 2]) > 1.0 - 1e-12
    k = len(xyz)
    pts: list[tuple[float, float]] = []
    for i in range(k):
        if not at_pole[i]:
            pts.append((lon[i], lat[i]))
            continue
        prev, nxt = (i - 1) % k, (i + 1) % k
        pole = 90.0 if xyz[i, 2] > 0 else -90.0
        pts.append((lon[prev] if not at_pole[prev] else lon[nxt], pole))
        pts.append((lon[nxt] if not at_pole[nxt] else lon[prev], pole))
    ring = np.array(pts)
    steps = (np.diff(ring[:, 0], append=ring[0, 0]) + 180.0) % 360.0 - 180.0
    unwrapped = ring[0, 0] + np.concatenate([[0.0], np.cumsum(steps[:-1])])
    turn = unwrapped[-1] + steps[-1] - unwrapped[0]
    ring = np.column_stack([unwrapped, ring[:, 1]])
    if abs(turn) > 180.0:  # the boundary winds around a pole: close it through that pole
        pole = 90.0 if xyz[:, 2].mean() > 0 else -90.0
        end = unwrapped[0] + turn
        ring = np.vstack([ring, [[end, ring[0, 1]], [end, pole], [unwrapped[0], pole]]])
    ring[:, 0] -= 360.0 * np.floor((ring[:, 0].min() + 180.0) / 360.0)
    parts = [ring] if ring[:, 0].max() <= 180.0 + 1e-9 else []
    if not parts:
        east = _clip_half(ring, keep_below=False)
        parts = [_clip_half(ring, keep_below=True), east - np.array([360.0, 0.0])]
    out = []
    for part in parts:
        part[:, 0] = np.clip(part[:, 0], -180.0, 180.0)
        closed = _ccw_closed(part)
        if closed is not None:
            out.append(closed)
    return out


def _densify(corners: np.ndarray, max_step_deg: float) -> np.ndarray:
    """Points along the great-circle edges of a closed polygon of (k, 3) unit ``corners``."""
    out = []
    for i in range(len(corners)):
        a, b = corners[i], corners[(i + 1) % len(corners)]
        angle = math.degrees(math.acos(max(-1.0, min(1.0, float(np.dot(a, b))))))
        n = max(1, min(64, math.ceil(angle / max_step_deg)))
        t = np.arange(n)[:, None] / n
        seg = (1.0 - t) * a + t * b
        out.append(seg / np.linalg.norm(seg, axis=1, keepdims=True))
    return np.vstack(out)


# --------------------------------------------------------------------------------- the model


class AdaptiveCells:
    """Adaptive S2 partition of the Earth by photo density (PlaNet's t1/t2 rule).

    Parameters: ``max_photos`` (t1) splits a cell holding more photos, ``min_photos`` (t2)
    drops a cell holding fewer, ``min_level``/``max_level`` bound the S2 levels (0..30).

    Learned: ``cell_ids_ (m,) uint64`` sorted ascending, ``levels_ (m,) int64``,
    ``counts_ (m,) int64`` photos per cell, ``centres_lat_``/``centres_lon_ (m,)`` degrees
    (S2's cell centre), ``kept_ (n,) bool`` and ``photo_cell_ (n,) int64`` (cell index or -1)
    for the fitted photos.
    """

    def __init__(
        self,
        max_photos: int = 5000,
        min_photos: int = 50,
        min_level: int = 1,
        max_level: int = 13,
    ) -> None:
        self.max_photos = max_photos
        self.min_photos = min_photos
        self.min_level = min_level
        self.max_level = max_level

    def _check_params(self) -> None:
        ints = (self.max_photos, self.min_photos, self.min_level, self.max_level)
        if not all(isinstance(v, (int, np.integer)) for v in ints):
            raise PlaceprintError("max_photos, min_photos, min_level, max_level must be integers")
        if self.max_photos < 1 or self.min_photos < 0:
            raise PlaceprintError(
                f"need max_photos >= 1 and min_photos >= 0, got {self.max_photos}, "
                f"{self.min_photos}"
            )
        if not 0 <= self.min_level <= self.max_level <= MAX_LEVEL:
            raise PlaceprintError(
                f"need 0 <= min_level <= max_level <= 30, got {self.min_level}, {self.max_level}"
            )

    def fit(self, lat, lon) -> AdaptiveCells:
        """Build the partition from photo positions ``lat``, ``lon`` (n,) in degrees."""
        self._check_params()
        lat, lon = check_latlon(lat, lon)
        if lat.size == 0:
            raise PlaceprintError("no photo positions given; fit needs at least one point")
        leaves = leaf_ids(lat, lon)
        final = np.zeros(len(leaves), np.uint64)
        active = np.arange(len(leaves))
        for level in range(self.min_level, self.max_level + 1):
            pid = parent_ids(leaves[active], level)
            _, inv, cnt = np.unique(pid, return_inverse=True, return_counts=True)
            done = (cnt[inv] <= self.max_photos) | (level == self.max_level)
            final[active[done]] = pid[done]
            active = active[~done]
            if active.size == 0:
                break
        uniq, inv, cnt = np.unique(final, return_inverse=True, return_counts=True)
        keep = cnt >= self.min_photos
        if not keep.any():
            raise PlaceprintError(
                f"no cell holds min_photos={self.min_photos} photos ({len(lat)} given); "
                "lower min_photos or give more photos"
            )
        new_index = np.cumsum(keep) - 1
        self.cell_ids_ = uniq[keep]
        self.levels_ = levels_of(self.cell_ids_)
        self.counts_ = cnt[keep].astype(np.int64)
        self.kept_ = keep[inv]
        self.photo_cell_ = np.where(self.kept_, new_index[inv], -1).astype(np.int64)
        self._set_centres()
        return self

    def _set_centres(self) -> None:
        centres = [s2sphere.CellId(int(c)).to_lat_lng() for c in self.cell_ids_]
        self.centres_lat_ = np.array([c.lat().degrees for c in centres], np.float64)
        self.centres_lon_ = np.array([c.lng().degrees for c in centres], np.float64)

    def _check_fitted(self) -> None:
        if not hasattr(self, "cell_ids_"):
            raise PlaceprintError("AdaptiveCells is not fitted; call fit() or load() first")

    @property
    def n_cells(self) -> int:
        """Number of kept cells."""
        self._check_fitted()
        return len(self.cell_ids_)

    def counts_per_level(self) -> dict[int, int]:
        """Number of kept cells at each S2 level, ``{level: n_cells}`` in level order."""
        self._check_fitted()
        levels, n = np.unique(self.levels_, return_counts=True)
        return {int(lv): int(c) for lv, c in zip(levels, n, strict=True)}

    def assign(self, lat, lon) -> np.ndarray:
        """Index (n,) int64 of the kept cell holding each point (degrees), -1 when none does."""
        self._check_fitted()
        lat, lon = check_latlon(lat, lon)
        leaves = leaf_ids(lat, lon)
        half = lsb_for_level(self.levels_) - _U1
        lo, hi = self.cell_ids_ - half, self.cell_ids_ + half
        idx = np.searchsorted(lo, leaves, side="right") - 1
        safe = np.maximum(idx, 0)
        inside = (idx >= 0) & (leaves <= hi[safe])
        return np.where(inside, idx, -1).astype(np.int64)

    def _indices(self, i) -> np.ndarray:
        idx = np.atleast_1d(np.asarray(i))
        if idx.dtype.kind not in "iu" or idx.ndim != 1:
            raise PlaceprintError("cell indices must be an integer or a 1-D integer array")
        if idx.size and (idx.min() < -self.n_cells or idx.max() >= self.n_cells):
            raise PlaceprintError(f"cell index out of range: there are {self.n_cells} cells")
        return idx % max(self.n_cells, 1)

    def vertices(self, i) -> np.ndarray:
        """Corners (lat, lon) in degrees of cells ``i``: (4, 2) for an int, (k, 4, 2) for arrays."""
        self._check_fitted()
        idx = self._indices(i)
        out = np.empty((len(idx), 4, 2))
        for r, j in enumerate(idx):
            cell = s2sphere.Cell(s2sphere.CellId(int(self.cell_ids_[j])))
            for v in range(4):
                ll = s2sphere.LatLng.from_point(cell.get_vertex(v))
                out[r, v] = ll.lat().degrees, ll.lng().degrees
        return out[0] if np.ndim(i) == 0 else out

    def rings(self, i: int, max_step_deg: float = 1.0) -> list[np.ndarray]:
        """Closed (k, 2) lon/lat rings outlining cell ``i``, cut at the antimeridian.

        Edges (great circles) are densified to steps of at most ``max_step_deg`` degrees;
        see :func:`sphere_ring_to_lonlat` for the pole and antimeridian handling.
        """
        self._check_fitted()
        j = int(self._indices(i)[0])
        cell = s2sphere.Cell(s2sphere.CellId(int(self.cell_ids_[j])))
        corners = np.array([list(cell.get_vertex(v)) for v in range(4)], np.float64)
        corners /= np.linalg.norm(corners, axis=1, keepdims=True)
        return sphere_ring_to_lonlat(_densify(corners, max_step_deg))

    def to_geojson(
        self, values: dict[str, np.ndarray] | None = None, max_step_deg: float = 1.0
    ) -> dict:
        """GeoJSON FeatureCollection of the cell polygons (lon, lat order, RFC 7946).

        Properties: ``index``, ``token``, ``level``, ``count`` and one entry per array in
        ``values`` (each (m,), e.g. a probability per cell). A cell crossing the antimeridian
        becomes a MultiPolygon of its two halves cut at lon = +-180.
        """
        self._check_fitted()
        values = dict(values or {})
        for name, arr in values.items():
            arr = np.asarray(arr)
            if arr.shape != (self.n_cells,):
                raise PlaceprintError(
                    f"values[{name!r}] has shape {arr.shape}; need one value per cell "
                    f"({self.n_cells},)"
                )
            values[name] = arr.tolist()
        features = []
        for j in range(self.n_cells):
            polys = [[np.round(r, 6).tolist()] for r in self.rings(j, max_step_deg)]
            geometry = (
                {"type": "Polygon", "coordinates": polys[0]}
                if len(polys) == 1
                else {"type": "MultiPolygon", "coordinates": polys}
            )
            props = {
                "index": j,
                "token": s2sphere.CellId(int(self.cell_ids_[j])).to_token(),
                "level": int(self.levels_[j]),
                "count": int(self.counts_[j]),
            }
            props.update({name: arr[j] for name, arr in values.items()})
            features.append({"type": "Feature", "geometry": geometry, "properties": props})
        return {"type": "FeatureCollection", "features": features}

    # ------------------------------------------------------------------------- persistence

    def save(self, path: str | Path) -> int:
        """Write the fitted partition to ``path`` atomically; returns the file size in bytes."""
        from placeprint.index.fileformat import write_container

        self._check_fitted()
        meta = {
            "format": _FORMAT,
            "params": {
                "max_photos": int(self.max_photos),
                "min_photos": int(self.min_photos),
                "min_level": int(self.min_level),
                "max_level": int(self.max_level),
            },
        }
        arrays = {
            "cell_ids": self.cell_ids_,
            "counts": self.counts_,
            "kept": self.kept_,
            "photo_cell": self.photo_cell_,
        }
        return write_container(path, FILE_KIND, meta, arrays)

    @classmethod
    def load(cls, path: str | Path) -> AdaptiveCells:
        """Read a partition written by :meth:`save` (checks kind, size, checksum, contents)."""
        from placeprint.index.fileformat import read_container

        meta, arrays, _ = read_container(path, FILE_KIND)
        try:
            if meta["format"] != _FORMAT:
                raise PlaceprintError(
                    f"{path} holds adaptive cells format {meta['format']}; this placeprint "
                    f"reads format {_FORMAT} (refit and save again)"
                )
            self = cls(**meta["params"])
            self.cell_ids_ = np.array(arrays["cell_ids"], np.uint64)
            self.counts_ = np.array(arrays["counts"], np.int64)
            self.kept_ = np.array(arrays["kept"], bool)
            self.photo_cell_ = np.array(arrays["photo_cell"], np.int64)
        except (KeyError, TypeError, ValueError) as exc:
            raise PlaceprintError(f"{path} is not a valid adaptive cells file ({exc})") from None
        self._check_params()
        m = len(self.cell_ids_)
        if (
            self.counts_.shape != (m,)
            or self.photo_cell_.shape != self.kept_.shape
            or np.any(self.cell_ids_[1:] <= self.cell_ids_[:-1])
            or (m and (self.photo_cell_.max(initial=-1) >= m))
        ):
            raise PlaceprintError(f"{path} is not a valid adaptive cells file (inconsistent)")
        self.levels_ = levels_of(self.cell_ids_)
        self._set_centres()
        return self


# ------------------------------------------------------------------------ real photo density


def read_photo_locations(path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(lat, lon)`` (n,) float64 degrees of real photo positions from a LAT,LON csv.

    Defaults to ``data_path("world", "photo_locations_100k.csv")`` (100,000 MP-16/YFCC photos).
    """
    from placeprint.config import data_path

    path = Path(path) if path is not None else data_path("world", "photo_locations_100k.csv")
    if not path.is_file():
        raise PlaceprintError(f"photo locations file not found: {path}")
    with open(path, newline="") as fh:
        header = [h.strip().upper() for h in next(csv.reader(fh), [])]
    if "LAT" not in header or "LON" not in header:
        raise PlaceprintError(f"{path} needs a header with LAT and LON columns, got {header}")
    try:
        table = np.loadtxt(
            path,
            delimiter=",",
            skiprows=1,
            usecols=(header.index("LAT"), header.index("LON")),
            ndmin=2,
        )
    except ValueError as exc:
        raise PlaceprintError(f"{path} has an unreadable row ({exc})") from None
    return check_latlon(table[:, 0], table[:, 1])


def from_photo_locations(
    max_photos: int = 5000,
    min_photos: int = 50,
    min_level: int = 1,
    max_level: int = 13,
    path: str | Path | None = None,
) -> AdaptiveCells:
    """Fit :class:`AdaptiveCells` on the real photo positions of :func:`read_photo_locations`."""
    lat, lon = read_photo_locations(path)
    return AdaptiveCells(max_photos, min_photos, min_level, max_level).fit(lat, lon)

"""A deterministic synthetic city for cross-view (ground <-> aerial) experiments.

No real ground/aerial pairs can be obtained offline, so cross-view matching is trained
and measured on a 2.5-D map generated from a seed: low hills, a street grid, blocks of
buildings (heights, facade and roof colours), parks with trees, ponds and ground
classes. It is rendered

- as **aerial** orthographic tiles, north up, lit by the sun (hill shading and cast
  shadows), and
- as **ground** 360-degree equirectangular panoramas at street points (2:1, column 0
  looking north, azimuth clockwise; a ray marched per column through the height map,
  "voxel space" style), with depth.

Appearance follows a :class:`Condition` (season, hour of day): vegetation, snow and ice,
sun direction and strength, sky colour. Geometry is in metres: ``x`` east, ``y`` north,
the map's south-west corner at ``(0, 0)``; map cell ``(row, col)`` covers
``x in [col, col + 1) * res``, ``y in (size - (row + 1) * res, size - row * res]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from placeprint.errors import PlaceprintError

# ground classes of the map
GRASS, ROAD, PAVEMENT, WATER, BUILDING, TREE, SAND = range(7)
KIND_NAMES = ("grass", "road", "pavement", "water", "building", "tree", "sand")
SEASONS = ("summer", "autumn", "winter")
FLOOR_M = 3.2  # storey height: rows of windows on a facade
BAY_M = 2.6  # width of one window bay


@dataclass(frozen=True)
class WorldConfig:
    """What a generated city looks like (lengths in metres)."""

    size_m: float = 512.0
    res_m: float = 0.5
    street_spacing_m: tuple[float, float] = (40.0, 75.0)
    road_width_m: tuple[float, float] = (7.0, 12.0)
    pavement_m: float = 2.0
    building_height_m: tuple[float, float] = (5.0, 30.0)
    park_share: float = 0.15
    water_share: float = 0.05
    trees_per_km2: float = 4000.0
    hills_m: float = 3.0
    style_drift: bool = False  # windows change shape from west to east (render.window_style)

    def check(self) -> None:
        """One clear error for a value no city can have."""
        ranges = {
            "street_spacing_m": self.street_spacing_m,
            "road_width_m": self.road_width_m,
            "building_height_m": self.building_height_m,
        }
        for name, (lo, hi) in ranges.items():
            if not (0 < lo <= hi and math.isfinite(hi)):
                raise PlaceprintError(f"world {name} must be 0 < low <= high, got ({lo}, {hi})")
        if not (self.res_m > 0 and self.size_m >= 64 * self.res_m and math.isfinite(self.size_m)):
            raise PlaceprintError(
                f"world size_m must be at least 64 cells of res_m > 0, got {self.size_m} / "
                f"{self.res_m}"
            )
        if self.size_m / self.res_m > 8192:
            raise PlaceprintError("world too large: at most 8192 x 8192 cells")
        if self.road_width_m[1] + 2 * self.pavement_m >= self.street_spacing_m[0]:
            raise PlaceprintError("roads and pavements must be narrower than the street spacing")
        for name in ("park_share", "water_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise PlaceprintError(f"world {name} must lie in [0, 1]")
        if self.park_share + self.water_share > 1:
            raise PlaceprintError("park_share + water_share must be <= 1")
        if self.trees_per_km2 < 0 or self.hills_m < 0 or self.pavement_m < 0:
            raise PlaceprintError("trees_per_km2, hills_m and pavement_m must be >= 0")


@dataclass(frozen=True)
class Condition:
    """When a view is taken: ``season`` (summer, autumn, winter), ``hour`` (0-24, local
    solar time: the sun rises in the east at 6 and sets in the west at 19; before 6 and
    after 19 it is night, lit by street lamps and windows)."""

    season: str = "summer"
    hour: float = 12.0

    def check(self) -> None:
        if self.season not in SEASONS:
            raise PlaceprintError(f"season must be one of {', '.join(SEASONS)}")
        if not 0.0 <= self.hour < 24.0:
            raise PlaceprintError(f"hour must lie in [0, 24), got {self.hour}")

    @property
    def is_night(self) -> bool:
        """Whether the sun is down (before 6 or after 19)."""
        return not 6.0 <= self.hour <= 19.0

    def sun(self) -> tuple[float, float]:
        """``(azimuth, elevation)`` of the sun in radians (azimuth clockwise from north);
        at night, straight below the horizon (elevation -90 degrees)."""
        if self.is_night:
            return 0.0, -math.pi / 2
        t = (self.hour - 6.0) / 13.0  # 0 at dawn, 1 at dusk
        azimuth = math.radians(90.0 + 180.0 * t)  # east -> south -> west
        peak = {"summer": 55.0, "autumn": 35.0, "winter": 15.0}[self.season]
        elevation = math.radians(max(3.0, peak * math.sin(math.pi * t)))
        return azimuth, elevation


@dataclass
class World:
    """A generated city: per map cell the terrain height ``ground``, the height of what
    stands on it ``height`` (buildings, trees), its ``kind``, the colour seen from above
    ``top`` and from the side ``side`` (facades, canopies), and a texture value in
    [-1, 1]. Make one with :meth:`generate` (or :meth:`blank` + :meth:`add_box`)."""

    config: WorldConfig
    ground: np.ndarray
    height: np.ndarray
    kind: np.ndarray
    top: np.ndarray
    side: np.ndarray
    texture: np.ndarray
    seed: int = 0
    _aerial_cache: dict = field(default_factory=dict, repr=False)
    streets: dict = field(default_factory=dict, repr=False)

    # ----------------------------------------------------------------- making
    @property
    def cells(self) -> int:
        return self.ground.shape[0]

    @classmethod
    def blank(cls, config: WorldConfig | None = None, seed: int = 0) -> World:
        """Flat grass everywhere, nothing standing: for scenes built by hand."""
        config = config or WorldConfig()
        config.check()
        n = int(round(config.size_m / config.res_m))
        top = np.empty((n, n, 3), np.float32)
        top[:] = (0.33, 0.55, 0.25)
        return cls(
            config,
            np.zeros((n, n), np.float32),
            np.zeros((n, n), np.float32),
            np.full((n, n), GRASS, np.uint8),
            top,
            top.copy(),
            np.zeros((n, n), np.float32),
            seed,
        )

    def cell_slice(self, x0: float, y0: float, x1: float, y1: float) -> tuple[slice, slice]:
        """The map cells whose centres lie in the box ``[x0, x1] x [y0, y1]`` (metres)."""
        r = self.config.res_m
        size = self.config.size_m
        c0, c1 = int(math.ceil(x0 / r - 0.5)), int(math.floor(x1 / r - 0.5)) + 1
        r0, r1 = int(math.ceil((size - y1) / r - 0.5)), int(math.floor((size - y0) / r - 0.5)) + 1
        n = self.cells
        return slice(max(r0, 0), min(r1, n)), slice(max(c0, 0), min(c1, n))

    def add_box(self, x0, y0, x1, y1, height_m, side_rgb, top_rgb=None, kind=BUILDING) -> None:
        """Stand a flat-topped block of ``height_m`` on the box ``[x0, x1] x [y0, y1]``."""
        rows, cols = self.cell_slice(x0, y0, x1, y1)
        self.height[rows, cols] = height_m
        self.kind[rows, cols] = kind
        self.side[rows, cols] = side_rgb
        self.top[rows, cols] = side_rgb if top_rgb is None else top_rgb
        self._aerial_cache.clear()

    @classmethod
    def generate(cls, seed: int = 0, config: WorldConfig | None = None) -> World:
        """A city drawn from ``seed``: the same seed gives the same city, bit for bit."""
        config = config or WorldConfig()
        config.check()
        rng = np.random.default_rng([seed, 0xC17])
        w = cls.blank(config, seed)
        n, res, size = w.cells, config.res_m, config.size_m
        centres = (np.arange(n) + 0.5) * res
        X, Y = np.meshgrid(centres, size - centres)  # (row, col) -> x east, y north
        w.ground[:] = _hills(rng, X, Y, config.hills_m, size)
        w.texture[:] = _value_noise(rng, n, (4, 16, 64)).astype(np.float32)
        # street grid
        xs = _street_lines(rng, size, config.street_spacing_m)
        ys = _street_lines(rng, size, config.street_spacing_m)
        wx = rng.uniform(*config.road_width_m, size=len(xs))
        wy = rng.uniform(*config.road_width_m, size=len(ys))
        w.streets = {"x": xs, "x_width": wx, "y": ys, "y_width": wy}
        dist_x = np.min(np.abs(centres[None, :] - xs[:, None]) - wx[:, None] / 2, axis=0)
        dist_y = np.min(np.abs(centres[None, :] - ys[:, None]) - wy[:, None] / 2, axis=0)
        road_col, road_row = dist_x <= 0, dist_y[::-1] <= 0  # y grows up, rows down
        pave_col = (dist_x > 0) & (dist_x <= config.pavement_m)
        pave_row = ((dist_y > 0) & (dist_y <= config.pavement_m))[::-1]
        w.kind[road_row[:, None] | road_col[None, :]] = ROAD
        pave = (pave_row[:, None] | pave_col[None, :]) & (w.kind != ROAD)
        w.kind[pave] = PAVEMENT
        # blocks between streets: built, park or water
        x_edges = _block_edges(xs, wx, config.pavement_m, size)
        y_edges = _block_edges(ys, wy, config.pavement_m, size)
        for bx0, bx1 in x_edges:
            for by0, by1 in y_edges:
                if bx1 - bx0 < 6 or by1 - by0 < 6:
                    continue
                u = rng.uniform()
                if u < config.water_share:
                    _pond(w, rng, bx0, by0, bx1, by1)
                elif u < config.water_share + config.park_share:
                    _park(w, rng, bx0, by0, bx1, by1)
                else:
                    _built_block(w, rng, bx0, by0, bx1, by1)
        _street_trees(w, rng, xs, wx, ys, wy)
        _colour_ground(w)
        return w

    # -------------------------------------------------------------- sampling
    def surface(self) -> np.ndarray:
        """Height above sea of the top of every cell: ``ground + height``."""
        return self.ground + self.height

    def to_cell(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(row, col, inside)`` of the cells holding points ``(x, y)`` (clipped)."""
        r = self.config.res_m
        col = np.floor(np.asarray(x) / r).astype(np.int64)
        row = np.floor((self.config.size_m - np.asarray(y)) / r).astype(np.int64)
        n = self.cells
        inside = (row >= 0) & (row < n) & (col >= 0) & (col < n)
        return np.clip(row, 0, n - 1), np.clip(col, 0, n - 1), inside

    def street_line(self, axis: str, index: int, spacing_m: float, margin_m: float) -> np.ndarray:
        """``(m, 2)`` points every ``spacing_m`` along the centre line of a generated
        street: ``axis`` "x" for the north-south streets (``x`` constant), "y" for the
        east-west ones; ``index`` counts from the west / south. Points lie at least
        ``margin_m`` from the map's edge."""
        if axis not in ("x", "y") or not self.streets:
            raise PlaceprintError("street_line needs a generated city and axis 'x' or 'y'")
        lines = self.streets[axis]
        if not 0 <= index < len(lines):
            raise PlaceprintError(f"this city has {len(lines)} {axis}-streets, not {index + 1}")
        if spacing_m <= 0 or not 0 <= margin_m < self.config.size_m / 2:
            raise PlaceprintError("spacing_m must be > 0 and margin_m inside the map")
        along = np.arange(margin_m, self.config.size_m - margin_m + 1e-9, spacing_m)
        across = np.full_like(along, lines[index])
        return np.stack([across, along] if axis == "x" else [along, across], axis=1)

    def street_points(
        self, count: int, rng: np.random.Generator, margin_m: float, spacing_m: float = 0.0
    ) -> np.ndarray:
        """``(count, 2)`` random ``(x, y)`` on roads at least ``margin_m`` from the map's edge
        and ``spacing_m`` from each other (fewer rows if the roads hold no more)."""
        size = self.config.size_m
        if not 0 <= margin_m < size / 2:
            raise PlaceprintError(f"margin_m must lie in [0, {size / 2}), got {margin_m}")
        rows, cols = self.cell_slice(margin_m, margin_m, size - margin_m, size - margin_m)
        sub = self.kind[rows, cols] == ROAD
        cand = np.argwhere(sub)
        if len(cand) == 0:
            raise PlaceprintError("no road inside the margin: the map is too small")
        r = self.config.res_m
        if spacing_m <= 0:
            pick = cand[rng.integers(0, len(cand), size=count)]
        else:  # greedy dart throwing over the road cells in random order
            kept: list[np.ndarray] = []
            pts = np.empty((0, 2))
            for i in rng.permutation(len(cand)):
                p = cand[i] * r
                if len(pts) and np.min(np.sum((pts - p) ** 2, axis=1)) < spacing_m**2:
                    continue
                kept.append(cand[i])
                pts = np.vstack([pts, p])
                if len(kept) == count:
                    break
            pick = np.array(kept).reshape(-1, 2)
        jitter = rng.uniform(-0.5, 0.5, size=(len(pick), 2)) * r
        x = (pick[:, 1] + cols.start + 0.5) * r + jitter[:, 0]
        y = size - (pick[:, 0] + rows.start + 0.5) * r + jitter[:, 1]
        return np.stack([x, y], axis=1)


# -------------------------------------------------------------------- generation
def _hills(rng, X, Y, amplitude, size) -> np.ndarray:
    h = np.zeros_like(X)
    for _ in range(4):
        kx, ky = rng.uniform(0.5, 2.0, size=2) * 2 * np.pi / size
        phase = rng.uniform(0, 2 * np.pi)
        h += np.sin(kx * X + ky * Y + phase)
    return (amplitude / 4.0 * h).astype(np.float32)


def _value_noise(rng, n: int, scales) -> np.ndarray:
    """Smooth noise in [-1, 1]: random grids of a few scales, upsampled bilinearly."""
    from scipy.ndimage import zoom

    out = np.zeros((n, n))
    for k in scales:
        g = rng.uniform(-1, 1, size=(k + 1, k + 1))
        out += zoom(g, n / (k + 1), order=1)[:n, :n] / len(scales)
    return np.clip(out * 1.5, -1, 1)


def _street_lines(rng, size, spacing) -> np.ndarray:
    lines, at = [], rng.uniform(0, spacing[0])
    while at < size:
        lines.append(at)
        at += rng.uniform(*spacing)
    return np.array(lines)


def _block_edges(lines, widths, pavement, size) -> list[tuple[float, float]]:
    edges = np.concatenate([[-np.inf], lines, [np.inf]])
    half = np.concatenate([[0], widths / 2 + pavement, [0]])
    out = []
    for i in range(len(edges) - 1):
        a = max(edges[i] + half[i], 0.0)
        b = min(edges[i + 1] - half[i + 1], size)
        if b > a:
            out.append((a, b))
    return out


FACADES = np.array(
    [
        (0.78, 0.70, 0.58),  # sandstone
        (0.62, 0.33, 0.26),  # brick
        (0.85, 0.85, 0.80),  # render
        (0.45, 0.47, 0.52),  # concrete
        (0.72, 0.62, 0.42),  # ochre
        (0.55, 0.60, 0.66),  # glass-grey
        (0.80, 0.55, 0.45),  # terracotta
    ],
    np.float32,
)
ROOFS = np.array([(0.35, 0.35, 0.37), (0.55, 0.25, 0.20), (0.25, 0.25, 0.25), (0.6, 0.6, 0.6)])


def _built_block(w: World, rng, x0, y0, x1, y1) -> None:
    """Lots along the block's long side, two deep; most hold a building."""
    lo, hi = w.config.building_height_m
    along_x = (x1 - x0) >= (y1 - y0)
    length, depth = (x1 - x0, y1 - y0) if along_x else (y1 - y0, x1 - x0)
    cuts = [0.0]
    while cuts[-1] < length:
        cuts.append(cuts[-1] + rng.uniform(8.0, 22.0))
    cuts[-1] = length
    rows = [(0.0, depth / 2), (depth / 2, depth)] if depth > 16 else [(0.0, depth)]
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        for d0, d1 in rows:
            if b - a < 4 or rng.uniform() < 0.12:
                continue  # a yard
            inset = rng.uniform(0.0, 2.5)
            h = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
            facade = np.clip(FACADES[rng.integers(len(FACADES))] + rng.normal(0, 0.04, 3), 0, 1)
            roof = np.clip(ROOFS[rng.integers(len(ROOFS))] + rng.normal(0, 0.03, 3), 0, 1)
            u0, u1 = a + 0.5, b - 0.5
            v0, v1 = d0 + inset, d1 - inset
            if along_x:
                box = (x0 + u0, y0 + v0, x0 + u1, y0 + v1)
            else:
                box = (x0 + v0, y0 + u0, x0 + v1, y0 + u1)
            w.add_box(*box, h, facade, roof)


def _tree(w: World, x, y, radius, height) -> None:
    rows, cols = w.cell_slice(x - radius, y - radius, x + radius, y + radius)
    r = w.config.res_m
    size = w.config.size_m
    cx = (np.arange(cols.start, cols.stop) + 0.5) * r
    cy = size - (np.arange(rows.start, rows.stop) + 0.5) * r
    d2 = (cx[None, :] - x) ** 2 + (cy[:, None] - y) ** 2
    dome = height * np.sqrt(np.clip(1 - d2 / radius**2, 0, 1)) ** 0.5
    sub_h = w.height[rows, cols]
    grow = (dome > sub_h) & (d2 <= radius**2) & (w.kind[rows, cols] != BUILDING)
    sub_h[grow] = dome[grow]
    w.kind[rows, cols][grow] = TREE


def _park(w: World, rng, x0, y0, x1, y1) -> None:
    area = (x1 - x0) * (y1 - y0)
    count = rng.poisson(w.config.trees_per_km2 * area / 1e6 * 3)
    for _ in range(count):
        _tree(
            w, rng.uniform(x0, x1), rng.uniform(y0, y1), rng.uniform(1.5, 4.0), rng.uniform(5, 12)
        )
    if rng.uniform() < 0.5:  # a sand playground
        cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
        rows, cols = w.cell_slice(cx - 4, cy - 4, cx + 4, cy + 4)
        flat = w.kind[rows, cols] == GRASS
        w.kind[rows, cols][flat] = SAND


def _pond(w: World, rng, x0, y0, x1, y1) -> None:
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    ax, ay = (x1 - x0) * rng.uniform(0.25, 0.45), (y1 - y0) * rng.uniform(0.25, 0.45)
    rows, cols = w.cell_slice(x0, y0, x1, y1)
    r, size = w.config.res_m, w.config.size_m
    px = (np.arange(cols.start, cols.stop) + 0.5) * r
    py = size - (np.arange(rows.start, rows.stop) + 0.5) * r
    inside = ((px[None, :] - cx) / ax) ** 2 + ((py[:, None] - cy) / ay) ** 2 <= 1
    w.kind[rows, cols][inside] = WATER
    ground = w.ground[rows, cols]
    ground[inside] = ground[inside].min() - 0.3 if inside.any() else ground[inside]


def _street_trees(w: World, rng, xs, wx, ys, wy) -> None:
    pave = w.config.pavement_m
    size = w.config.size_m
    for lines, widths, vertical in ((xs, wx, True), (ys, wy, False)):
        for at, width in zip(lines, widths, strict=True):
            if rng.uniform() < 0.5:
                continue
            step = rng.uniform(8, 15)
            for s in np.arange(rng.uniform(0, step), size, step):
                off = (width / 2 + pave / 2) * (1 if rng.uniform() < 0.5 else -1)
                x, y = (at + off, s) if vertical else (s, at + off)
                row, col, inside = w.to_cell(np.array([x]), np.array([y]))
                if inside[0] and w.kind[row[0], col[0]] == PAVEMENT:
                    _tree(w, x, y, rng.uniform(1.5, 3.0), rng.uniform(5, 9))


def _colour_ground(w: World) -> None:
    """Summer base colours of cells whose colour is their class (all but buildings)."""
    base = {
        GRASS: (0.33, 0.55, 0.25),
        ROAD: (0.30, 0.30, 0.32),
        PAVEMENT: (0.62, 0.60, 0.56),
        WATER: (0.20, 0.35, 0.55),
        TREE: (0.18, 0.42, 0.16),
        SAND: (0.80, 0.72, 0.52),
    }
    for kind, rgb in base.items():
        m = w.kind == kind
        w.top[m] = rgb
        w.side[m] = rgb
    w._aerial_cache.clear()

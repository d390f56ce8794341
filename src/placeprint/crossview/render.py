"""Views of a :class:`~placeprint.crossview.world.World`: aerial tiles and ground panoramas.

- :func:`aerial_tile`: north-up orthographic tile centred on ``(x, y)``: what is seen
  from above in the season's colours, hill-shaded and with the shadows the sun casts.
- :func:`panorama`: 360-degree equirectangular view (``(width / 2, width)``, column 0
  centred just east of north, azimuth clockwise, row 0 the zenith) from eye height at
  ``(x, y)``, with the depth of every pixel (``inf`` for sky). Each column is a ray
  marched through the height map in steps of one map cell; a pixel shows the first
  cell whose top rises above its line of sight: a facade (windows by storey and bay),
  a canopy, or the ground. Light: the sun of the :class:`Condition`, haze with distance.
- :func:`crop_view`: a limited field of view of a panorama at a heading.
"""

from __future__ import annotations

import math

import numpy as np

from placeprint.crossview.world import (
    BAY_M,
    BUILDING,
    FLOOR_M,
    GRASS,
    ROAD,
    TREE,
    WATER,
    Condition,
    World,
)
from placeprint.errors import PlaceprintError

NIGHT_AMBIENT = 0.06  # light at night without a lamp (moon, sky glow)
NIGHT_LAMP = 0.6  # light street lamps add next to the camera, falling off with distance
NIGHT_LAMP_REACH_M = 12.0

SEASON_COLOURS = {
    # (grass, tree canopy, water) colours of each season; None keeps the summer colour
    "summer": ((0.33, 0.55, 0.25), (0.18, 0.42, 0.16), (0.20, 0.35, 0.55)),
    "autumn": ((0.52, 0.50, 0.28), (0.70, 0.42, 0.15), (0.22, 0.33, 0.45)),
    "winter": ((0.92, 0.93, 0.95), (0.42, 0.38, 0.34), (0.78, 0.84, 0.90)),
}


def _seasonal(world: World, condition: Condition) -> tuple[np.ndarray, np.ndarray]:
    """``(top, side)`` colours of every cell in ``condition``'s season (cached)."""
    key = ("seasonal", condition.season)
    if key not in world._aerial_cache:
        world._aerial_cache[key] = _season_colours(world, condition.season)
    return world._aerial_cache[key]


def _season_colours(world: World, season: str) -> tuple[np.ndarray, np.ndarray]:
    grass, canopy, water = SEASON_COLOURS[season]
    top, side = world.top.copy(), world.side.copy()
    for kind, rgb in ((GRASS, grass), (TREE, canopy), (WATER, water)):
        m = world.kind == kind
        top[m] = rgb
        side[m] = rgb
    if season == "winter":  # snow on roofs and, thinly, on roads
        roofs = world.kind == BUILDING
        top[roofs] = 0.35 * top[roofs] + 0.65 * np.float32(0.93)
        roads = world.kind == ROAD
        top[roads] = 0.7 * top[roads] + 0.3 * np.float32(0.85)
    return top, side


def _light(condition: Condition) -> tuple[np.ndarray, float, float]:
    """Sun direction (unit, x east / y north / z up), its strength and the ambient light
    (at night: no sun, dim ambient light)."""
    az, el = condition.sun()
    if condition.is_night:
        return np.array([0.0, 0.0, -1.0]), 0.0, NIGHT_AMBIENT
    sun = np.array([math.sin(az) * math.cos(el), math.cos(az) * math.cos(el), math.sin(el)])
    strength = 0.55 + 0.45 * min(1.0, math.sin(el) / math.sin(math.radians(30)))
    ambient = 0.35 if condition.hour >= 7.5 and condition.hour <= 17.5 else 0.25
    return sun, strength, ambient


def _shadows(world: World, sun: np.ndarray) -> np.ndarray:
    """Cells in the shadow of a taller cell towards the sun (marched one cell at a time)."""
    z = world.surface()
    res = world.config.res_m
    horiz = math.hypot(sun[0], sun[1])
    if horiz < 1e-6 or sun[2] <= 0:
        return np.zeros(z.shape, bool)
    step_col, step_row = sun[0] / horiz, -sun[1] / horiz  # rows grow southwards
    rise = sun[2] / horiz * res  # metres the sun ray climbs per cell
    reach = int(min(z.shape[0], math.ceil((float(z.max() - z.min()) + 1) / max(rise, 1e-3))))
    shadow = np.zeros(z.shape, bool)
    n = z.shape[0]
    for k in range(1, reach + 1):
        dr, dc = int(round(k * step_row)), int(round(k * step_col))
        if abs(dr) >= n or abs(dc) >= n:
            break
        src = z[max(dr, 0) : n + min(dr, 0), max(dc, 0) : n + min(dc, 0)]
        dst = (slice(max(-dr, 0), n + min(-dr, 0)), slice(max(-dc, 0), n + min(-dc, 0)))
        shadow[dst] |= src > z[dst] + k * rise
    return shadow


def aerial_image(world: World, condition: Condition) -> np.ndarray:
    """The whole map seen from above in ``condition``: ``(n, n, 3) float32`` in [0, 1]
    (cached per condition)."""
    condition.check()
    key = (condition.season, round(condition.hour, 3))
    if key in world._aerial_cache:
        return world._aerial_cache[key]
    top, _ = _seasonal(world, condition)
    sun, strength, ambient = _light(condition)
    z = world.surface()
    res = world.config.res_m
    gy, gx = np.gradient(z, res)  # rows go south: d/dy = -d/drow
    normal = np.stack([-gx, gy, np.ones_like(z)], axis=-1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    lambert = np.clip(normal @ sun.astype(np.float32), 0, 1)
    lit = np.where(_shadows(world, sun), 0.0, lambert)
    shade = ambient + (1 - ambient) * strength * lit
    tex = 1.0 + 0.12 * world.texture
    image = np.clip(top * (shade * tex)[..., None], 0, 1).astype(np.float32)
    world._aerial_cache[key] = image
    return image


def aerial_tile(
    world: World,
    x: float,
    y: float,
    condition: Condition | None = None,
    size_px: int = 128,
    res_m: float = 0.5,
) -> np.ndarray:
    """North-up ``(size_px, size_px, 3) uint8`` tile centred on ``(x, y)``, ``res_m``
    metres a pixel (bilinear from the map; outside the map is black)."""
    from scipy.ndimage import map_coordinates

    condition = condition or Condition()
    if size_px < 8 or res_m <= 0:
        raise PlaceprintError(f"need size_px >= 8 and res_m > 0, got {size_px}, {res_m}")
    image = aerial_image(world, condition)
    offs = (np.arange(size_px) + 0.5 - size_px / 2) * res_m
    px = x + offs  # columns: west -> east
    py = y - offs  # rows: north -> south
    r = world.config.res_m
    cols = px / r - 0.5
    rows = (world.config.size_m - py) / r - 0.5
    R, C = np.meshgrid(rows, cols, indexing="ij")
    out = np.stack(
        [map_coordinates(image[..., k], [R, C], order=1, mode="constant") for k in range(3)],
        axis=-1,
    )
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)


def _sky(elevation: np.ndarray, condition: Condition) -> np.ndarray:
    """Sky colour ``(H, 3)`` by elevation: blue at noon, warmer and darker near dusk,
    near black at night (a faint glow of the city at the horizon)."""
    t = np.clip(elevation / (np.pi / 2), 0, 1)[:, None] ** 0.6
    if condition.is_night:
        zenith, horizon = np.array([0.02, 0.03, 0.07]), np.array([0.16, 0.13, 0.14])
        return (horizon * (1 - t) + zenith * t).astype(np.float32)
    _, sun_el = condition.sun()
    warm = 1.0 - min(1.0, math.degrees(sun_el) / 25.0)
    zenith = np.array([0.25, 0.45, 0.85]) * (1 - warm) + np.array([0.30, 0.30, 0.55]) * warm
    horizon = np.array([0.75, 0.85, 0.95]) * (1 - warm) + np.array([0.95, 0.65, 0.40]) * warm
    return (horizon * (1 - t) + zenith * t).astype(np.float32)


def panorama(
    world: World,
    x: float,
    y: float,
    condition: Condition | None = None,
    width: int = 256,
    eye_m: float = 1.7,
    max_range_m: float = 150.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(image (width/2, width, 3) uint8, depth (width/2, width) float32 metres)``."""
    image, depth, _ = labelled_panorama(world, x, y, condition, width, eye_m, max_range_m)
    return image, depth


GROUND, VERTICAL, SKY = 0, 1, 2  # geometric classes of what a pixel shows (Hoiem et al.)
SURFACE_NAMES = ("ground", "vertical", "sky")


def labelled_panorama(
    world: World,
    x: float,
    y: float,
    condition: Condition | None = None,
    width: int = 256,
    eye_m: float = 1.7,
    max_range_m: float = 150.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`panorama` and the geometric class of every pixel ``(width/2, width) uint8``:
    :data:`SKY` where the ray meets nothing, :data:`VERTICAL` on buildings and trees,
    :data:`GROUND` on the ground (road, pavement, grass, water, sand)."""
    condition = condition or Condition()
    condition.check()
    if width < 8 or width % 2 or eye_m <= 0 or max_range_m <= 0:
        raise PlaceprintError("need an even width >= 8, eye_m > 0 and max_range_m > 0")
    H = width // 2
    res = world.config.res_m
    az = (np.arange(width) + 0.5) / width * 2 * np.pi
    el = np.pi / 2 - (np.arange(H) + 0.5) / H * np.pi  # zenith -> nadir
    dist = np.arange(1, int(max_range_m / res) + 1) * res  # (S,)
    ex, ey = np.sin(az)[:, None], np.cos(az)[:, None]
    sx, sy = x + ex * dist[None, :], y + ey * dist[None, :]  # (W, S)
    row, col, inside = world.to_cell(sx, sy)
    r0, c0, _ = world.to_cell(np.array([x]), np.array([y]))
    eye = float(world.ground[r0[0], c0[0]]) + eye_m
    z = np.where(inside, world.surface()[row, col], -np.inf)
    angle = np.arctan2(z - eye, dist[None, :])  # (W, S) elevation of each cell's top
    reach = np.maximum.accumulate(angle, axis=1)
    # first cell along the ray whose top reaches each row's line of sight
    hit = reach[:, :, None] >= el[None, None, :]  # (W, S, H)
    first = hit.argmax(axis=1)  # (W, H)
    seen = hit.any(axis=1)
    W_idx = np.arange(width)[:, None]
    hr, hc = row[W_idx, first], col[W_idx, first]
    d = dist[first]
    top, side = _seasonal(world, condition)
    kind = world.kind[hr, hc]
    cell_top = angle[W_idx, first]
    on_side = (kind == BUILDING) | (kind == TREE)
    on_side &= el[None, :] < cell_top - 1e-6
    colour = np.where(on_side[..., None], side[hr, hc], top[hr, hc])
    sun, strength, ambient = _light(condition)
    # facades face the camera: normal = -ray direction (horizontal)
    facing = np.clip(-(ex * sun[0] + ey * sun[1]), 0, 1)  # (W, 1)
    flat = ambient + (1 - ambient) * strength * sun[2]
    shade = np.where(on_side, ambient + (1 - ambient) * strength * facing, flat)
    if condition.is_night:  # street lamps: what is near is lit, what is far fades out
        shade = shade + NIGHT_LAMP / (1.0 + (d / NIGHT_LAMP_REACH_M) ** 2)
    # windows: storeys and bays on the facade, from the hit point's height and position
    hit_z = eye + d * np.tan(el[None, :]) - world.ground[hr, hc]
    along = (x + ex * d) + (y + ey * d)
    half_w, half_h = _window_half_sizes(world, x + ex * d)
    window = (
        on_side
        & (kind == BUILDING)
        & (np.abs(np.mod(hit_z, FLOOR_M) - WINDOW_CENTRE_M[0]) < half_h)
        & (np.abs(np.mod(along, BAY_M) - WINDOW_CENTRE_M[1]) < half_w)
        & (hit_z > 1.5)
    )
    glass = (
        np.array([0.20, 0.24, 0.30]) if 7.0 <= condition.hour <= 17.5 else np.array([0.9, 0.8, 0.5])
    )
    if condition.is_night:  # some windows are lit, the others dark, fixed per window
        cell = np.floor(hit_z / FLOOR_M) * 12.9898 + np.floor(along / BAY_M) * 78.233
        lit = np.mod(np.sin(cell) * 43758.5453, 1.0) < 0.55
        glass = np.where(lit[..., None], glass, np.array([0.04, 0.04, 0.06]))
    colour = np.where(
        window[..., None], glass, colour * (shade * (1 + 0.12 * world.texture[hr, hc]))[..., None]
    )
    sky = _sky(np.maximum(el, 0), condition)  # (H, 3)
    haze = 1 - np.exp(-d / 400.0)
    horizon = sky[min(H - 1, H // 2)]
    colour = colour * (1 - haze[..., None]) + horizon * haze[..., None]
    image = np.where(seen[..., None], colour, sky[None, :, :])  # (W, H, 3)
    depth = np.where(seen, d, np.inf).astype(np.float32)
    image = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    standing = (kind == BUILDING) | (kind == TREE)
    surface = np.where(seen, np.where(standing, VERTICAL, GROUND), SKY).astype(np.uint8)
    return (
        np.ascontiguousarray(image.transpose(1, 0, 2)),
        np.ascontiguousarray(depth.T),
        np.ascontiguousarray(surface.T),
    )


WINDOW_CENTRE_M = (1.65, 1.3)  # window centre: height in its storey, position in its bay
WINDOW_SIZE_M = (1.2, 1.3)  # width, height of a window


def window_style(world: World, x_m: np.ndarray) -> np.ndarray:
    """The building style at east coordinate ``x_m``: 0 in the west to 1 in the east in a
    city with ``style_drift``, else 0.5 everywhere (the standard window)."""
    if not world.config.style_drift:
        return np.full(np.shape(x_m), 0.5)
    return np.clip(np.asarray(x_m, float) / world.config.size_m, 0.0, 1.0)


def _window_half_sizes(world: World, x_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Half width and half height of the windows at east coordinate ``x_m``: the standard
    1.2 x 1.3 m window, or, with style drift, tall narrow windows in the west (0.4 x 2.0 m)
    turning into wide low ones in the east (2.0 x 0.8 m)."""
    if not world.config.style_drift:
        w, h = WINDOW_SIZE_M
        return np.full(np.shape(x_m), w / 2), np.full(np.shape(x_m), h / 2)
    s = window_style(world, x_m)
    return (0.4 + 1.6 * s) / 2, (2.0 - 1.2 * s) / 2


def crop_view(pano: np.ndarray, heading_deg: float, fov_deg: float) -> np.ndarray:
    """The columns of a panorama covering ``fov_deg`` centred on ``heading_deg``
    (clockwise from north), wrapping at the seam."""
    pano = np.asarray(pano)
    if pano.ndim < 2 or pano.shape[1] != 2 * pano.shape[0]:
        raise PlaceprintError(f"a panorama must be 2:1 (H, 2H), got shape {pano.shape}")
    if not 0 < fov_deg <= 360:
        raise PlaceprintError(f"field of view must lie in (0, 360], got {fov_deg}")
    W = pano.shape[1]
    n = max(1, int(round(W * fov_deg / 360.0)))
    start = int(round((heading_deg % 360.0) / 360.0 * W - n / 2))
    return pano[:, np.arange(start, start + n) % W]

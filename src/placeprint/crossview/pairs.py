"""Ground/aerial training and test pairs drawn from synthetic cities.

Each pair is an aerial tile centred on a street point and the 360-degree ground
panorama taken there (north at column 0, as in the CVUSA protocol), the ground view in
a random season and hour, the tile in a summer or autumn daytime (10-14 h). Training and test
areas are different cities (:func:`area_seed`), so no test place is ever seen in
training. A :class:`PairSet` is saved as one ``.npz`` (written atomically) with the
settings that made it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from placeprint.crossview.world import SEASONS, Condition, World, WorldConfig
from placeprint.errors import PlaceprintError

AREAS = ("train", "val", "test")
FORMAT = "placeprint-crossview-pairs"
VERSION = 1


@dataclass(frozen=True)
class PairSettings:
    """How pairs are drawn: tile size and ground resolution, panorama width, margin
    kept from the city's edge so that every tile and view lies inside it; points at
    least ``spacing_m`` apart (no two tiles nearly the same), at most ``per_city`` from
    one city (an area of more pairs spans several cities)."""

    tile_px: int = 128
    tile_res_m: float = 0.5
    pano_width: int = 256
    eye_m: float = 1.7
    max_range_m: float = 150.0
    spacing_m: float = 12.0
    per_city: int = 300

    def check(self, config: WorldConfig) -> None:
        if self.tile_px < 8 or self.tile_res_m <= 0:
            raise PlaceprintError("tile_px must be >= 8 and tile_res_m > 0")
        if self.pano_width < 8 or self.pano_width % 2:
            raise PlaceprintError("pano_width must be an even number >= 8")
        if self.spacing_m < 0 or self.per_city < 1:
            raise PlaceprintError("spacing_m must be >= 0 and per_city >= 1")
        if self.margin_m() * 2 >= config.size_m:
            raise PlaceprintError(
                f"a {self.tile_px * self.tile_res_m:g} m tile does not fit a "
                f"{config.size_m:g} m city with room to spare"
            )

    def margin_m(self) -> float:
        return self.tile_px * self.tile_res_m / 2 + 4.0


def area_seed(seed: int, area: str) -> int:
    """The city of ``area`` (train, val or test) for experiment ``seed``: distinct areas
    are distinct cities."""
    if area not in AREAS:
        raise PlaceprintError(f"area must be one of {', '.join(AREAS)}, got {area!r}")
    digest = hashlib.sha256(f"{seed}:{area}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


@dataclass
class PairSet:
    """``aerial (n, S, S, 3)`` and ``ground (n, S/... , W, 3)`` uint8, positions ``xy (n, 2)``
    metres, the ground views' ``seasons``/``hours`` and how they were made (``meta``)."""

    aerial: np.ndarray
    ground: np.ndarray
    xy: np.ndarray
    seasons: np.ndarray
    hours: np.ndarray
    meta: dict

    def __len__(self) -> int:
        return len(self.aerial)

    def save(self, path: str | Path) -> Path:
        """One compressed ``.npz`` written atomically (a temporary file, then a rename)."""
        import io

        from placeprint.atomic import atomic_write_bytes

        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            aerial=self.aerial,
            ground=self.ground,
            xy=self.xy,
            seasons=self.seasons,
            hours=self.hours,
            meta=np.array(json.dumps({"format": FORMAT, "version": VERSION, **self.meta})),
        )
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> PairSet:
        """Read a pair set; anything else (or a damaged file) is one clear error."""
        path = Path(path)
        if not path.is_file():
            raise PlaceprintError(f"pair set not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                if meta.get("format") != FORMAT:
                    raise ValueError
                if meta.get("version") != VERSION:
                    raise PlaceprintError(
                        f"{path}: pair set version {meta.get('version')}, this placeprint "
                        f"reads version {VERSION}"
                    )
                parts = {k: z[k] for k in ("aerial", "ground", "xy", "seasons", "hours")}
        except PlaceprintError:
            raise
        except Exception:
            raise PlaceprintError(f"{path} is not a placeprint cross-view pair set") from None
        n = len(parts["aerial"])
        if any(len(v) != n for v in parts.values()):
            raise PlaceprintError(f"{path}: parts of different lengths")
        return cls(meta=meta, **parts)


def make_pairs(
    count: int,
    area: str = "train",
    seed: int = 0,
    config: WorldConfig | None = None,
    settings: PairSettings | None = None,
    progress=None,
) -> PairSet:
    """``count`` pairs in the cities of ``area``; the same arguments give the same bytes.

    ``progress(done, total)`` is called now and then.
    """
    from placeprint.crossview.render import aerial_tile, panorama

    if count < 1:
        raise PlaceprintError(f"count must be >= 1, got {count}")
    config = config or WorldConfig()
    settings = settings or PairSettings()
    config.check()
    settings.check(config)
    first = area_seed(seed, area)
    rng = np.random.default_rng([first, 1])
    S, W = settings.tile_px, settings.pano_width
    aerial = np.empty((count, S, S, 3), np.uint8)
    ground = np.empty((count, W // 2, W, 3), np.uint8)
    xy = np.empty((count, 2))
    city = np.empty(count, np.int64)
    seasons = rng.choice(np.array(SEASONS), size=count)
    hours = np.round(rng.uniform(7.0, 18.5, size=count), 2)
    aerial_seasons = rng.choice(np.array(["summer", "autumn"]), size=count)
    aerial_hours = rng.integers(10, 15, size=count).astype(float)  # a few lightings, cached
    done, k = 0, 0
    while done < count:  # one city at a time: only one is held in memory
        if k > 10 * (count // settings.per_city + 1):
            raise PlaceprintError("the cities' roads cannot hold that many pairs so far apart")
        world = World.generate(first + k, config)
        want = min(settings.per_city, count - done)
        pts = world.street_points(want, rng, settings.margin_m(), settings.spacing_m)
        for x, y in pts:
            i = done
            xy[i], city[i] = (x, y), k
            aerial[i] = aerial_tile(
                world,
                x,
                y,
                Condition(str(aerial_seasons[i]), float(aerial_hours[i])),
                S,
                settings.tile_res_m,
            )
            ground[i], _ = panorama(
                world,
                x,
                y,
                Condition(str(seasons[i]), float(hours[i])),
                W,
                settings.eye_m,
                settings.max_range_m,
            )
            done += 1
            if progress is not None and (done == count or done % 100 == 0):
                progress(done, count)
        k += 1
    meta = {
        "area": area,
        "seed": seed,
        "city_seeds": [first + j for j in range(k)],
        "cities": city.tolist(),
        "world": asdict(config),
        "settings": asdict(settings),
    }
    return PairSet(aerial, ground, xy, seasons.astype(str), hours, meta)

"""Labelled image sets for style-aware elements: Nordland (position along the line,
season) and the synthetic city whose windows change shape from west to east."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from placeprint.errors import PlaceprintError

TUNE_LAST_FRAME = 20000  # Nordland: frames <= 20000 to learn, the rest to test
CHOOSE_LAST_FRAME = 15000  # within those, for choosing settings: <= 15000 learn, the rest check


def nordland_sets(tuning: bool = False):
    """``{label: (train_images, train_labels, test_images, test_labels)}`` for Nordland:
    ``position`` (frame number along the line) and ``season`` (0 summer, 1 winter), both
    seasons' frames <= 20000 to learn and frames >= 20010 to test; ``tuning``: frames
    <= 15000 to learn and 15010-20000 to check, never a test frame."""
    from placeprint.datasets.nordland import load_nordland

    nl = load_nordland()
    frames = np.asarray(nl.frames, float)
    images = list(nl.summer) + list(nl.winter)
    both = np.concatenate([frames, frames])
    season = np.concatenate([np.zeros(len(frames)), np.ones(len(frames))])
    last, end = (CHOOSE_LAST_FRAME, TUNE_LAST_FRAME) if tuning else (TUNE_LAST_FRAME, np.inf)
    train = np.flatnonzero(both <= last)
    test = np.flatnonzero((both > last) & (both <= end))
    pick = lambda idx: [images[i] for i in idx]  # noqa: E731
    return {
        "position": (pick(train), both[train], pick(test), both[test]),
        "season": (pick(train), season[train], pick(test), season[test]),
    }


def style_views(
    count: int,
    area: str = "train",
    seed: int = 0,
    size: tuple[int, int] = (120, 160),
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(images (count, h, w, 3) uint8, style (count,))``: street photos of cities with
    ``style_drift`` (daytime, random season), labelled with the window style (0 west to
    1 east) where they were taken; headings face a facade side of the street."""
    from placeprint.crossview.pairs import area_seed
    from placeprint.crossview.render import panorama, window_style
    from placeprint.crossview.world import SEASONS, Condition, World, WorldConfig
    from placeprint.synth.cutout import perspective_cutout

    if count < 1:
        raise PlaceprintError(f"need at least one view, got {count}")
    rng = np.random.default_rng([seed, 0x57E])
    world = World.generate(area_seed(seed, area), WorldConfig(style_drift=True))
    points = world.street_points(count, rng, margin_m=20.0, spacing_m=4.0)
    if len(points) < count:
        raise PlaceprintError(f"the city holds only {len(points)} street points")
    images, labels = [], []
    for i, (x, y) in enumerate(points):
        condition = Condition(str(rng.choice(SEASONS)), float(rng.uniform(8.0, 17.0)))
        pano, _ = panorama(world, x, y, condition, width=512)
        heading = rng.uniform(0, 360)
        images.append(perspective_cutout(pano, heading, rng.uniform(0, 15), 60.0, size))
        labels.append(float(window_style(world, np.array([x]))[0]))
        if progress:
            progress(i + 1, count)
    return np.stack(images), np.array(labels)

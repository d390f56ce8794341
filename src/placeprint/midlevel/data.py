"""Labelled image sets for style-aware elements: Nordland (position along the line,
season) with its test split and tuning folds, and the synthetic city whose windows change
shape from west to east."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from placeprint.errors import PlaceprintError

TUNE_LAST_FRAME = 20000  # Nordland: frames <= 20000 to learn, the rest to test
FOLD_FRAMES = 5000  # tuning folds: blocks of 5,000 frames of the learning stretch


def nordland_labelled() -> tuple[list, np.ndarray, np.ndarray, np.ndarray]:
    """``(images, frame, season, dark)`` of Nordland's frames, summer's then winter's: the
    frame number along the line (``position``), 0 summer / 1 winter (``season``) and
    whether the place is near-black in either season (tunnels, stations; the dataset's
    protocol reports results with and without them)."""
    from placeprint.datasets.nordland import load_nordland

    nl = load_nordland()
    frames = np.asarray(nl.frames, float)
    season = np.concatenate([np.zeros(len(frames)), np.ones(len(frames))])
    dark = np.tile(nl.dark_mask(), 2)
    return list(nl.summer) + list(nl.winter), np.concatenate([frames, frames]), season, dark


def nordland_test_split(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(learn, test)`` masks: both seasons' frames <= 20000 learn, the rest test."""
    return frames <= TUNE_LAST_FRAME, frames > TUNE_LAST_FRAME


def tuning_folds(label: str, frames: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(learn, check)`` masks over the learning frames only (<= 20000), shaped like the
    test split: for ``season`` each block of 5,000 frames is checked by a model learned on
    the other three (the test stretch is track never seen, in both seasons); for
    ``position`` frames <= 5,000 k learn and the next 5,000 check (k = 1, 2, 3), as every
    test frame lies beyond the learned stretch."""
    blocks = np.ceil(frames / FOLD_FRAMES).astype(int)  # frame 1-5000 -> 1, ...
    last = int(np.ceil(TUNE_LAST_FRAME / FOLD_FRAMES))
    usable = frames <= TUNE_LAST_FRAME
    if label == "season":
        return [(usable & (blocks != b), blocks == b) for b in range(1, last + 1)]
    if label == "position":
        return [(usable & (blocks <= b), blocks == b + 1) for b in range(1, last)]
    raise PlaceprintError(f"no Nordland folds for label {label!r}")


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

"""Labelled photos of the synthetic city: perspective views with exact per-pixel classes.

Each street point gives a daytime-to-dusk panorama (random season and hour, 6:30-19:00)
and its geometric classes (:func:`placeprint.crossview.render.labelled_panorama`); a
few perspective views at random headings, pitches and fields of view are cut out of
both (labels by nearest pixel). A share of the views is turned grey, so that a model
trained on them also reads grey photos. Cities differ by area (:func:`area_seed`), so
held-out scenes are never seen in training.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from placeprint.crossview.world import SEASONS, Condition, World


def labelled_views(
    count: int,
    area: str = "train",
    seed: int = 0,
    size: tuple[int, int] = (120, 160),
    views_per_panorama: int = 4,
    pano_width: int = 512,
    grey_share: float = 0.2,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(images (count, h, w, 3) uint8, labels (count, h, w) uint8)`` of one area."""
    from placeprint.crossview.pairs import area_seed
    from placeprint.crossview.render import labelled_panorama
    from placeprint.synth.cutout import perspective_cutout

    rng = np.random.default_rng([seed, 0x6C0])
    images, labels = [], []
    city, world, points = 0, None, None
    while len(images) < count:
        if world is None or len(points) == 0:
            world = World.generate(area_seed(seed, area) + 7919 * city)
            points = list(world.street_points(200, rng, margin_m=20.0, spacing_m=10.0))
            city += 1
        x, y = points.pop()
        condition = Condition(str(rng.choice(SEASONS)), float(rng.uniform(6.5, 19.0)))
        pano, _, surface = labelled_panorama(world, x, y, condition, width=pano_width)
        for _ in range(min(views_per_panorama, count - len(images))):
            heading = rng.uniform(0, 360)
            pitch = rng.uniform(-10, 15)
            fov = rng.uniform(45, 80)
            image = perspective_cutout(pano, heading, pitch, fov, size)
            if rng.uniform() < grey_share:
                grey = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
                image = np.repeat(np.rint(grey).astype(np.uint8)[..., None], 3, axis=2)
            images.append(image)
            labels.append(perspective_cutout(surface, heading, pitch, fov, size, nearest=True))
        if progress:
            progress(len(images), count)
    return np.stack(images), np.stack(labels)

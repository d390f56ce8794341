"""Pictures of geometric context: a photo beside its class map."""

from __future__ import annotations

from pathlib import Path

import numpy as np

COLOURS = np.array([(60, 170, 60), (200, 60, 50), (70, 110, 230)], np.float32)  # g, v, s


def class_map_colours(proba: np.ndarray) -> np.ndarray:
    """``(h, w, 3)`` probabilities -> ``(h, w, 3) uint8``: each class's colour, mixed by
    its probability (a sure pixel is pure green, red or blue; an unsure one a blend)."""
    return np.clip(np.rint(proba @ COLOURS), 0, 255).astype(np.uint8)


def class_map_picture(rgb: np.ndarray, proba: np.ndarray, path: str | Path) -> Path:
    """Save the photo (resized to the map) beside its class map as a PNG (atomically)."""
    import cv2
    from PIL import Image

    from placeprint.atomic import atomic_open

    h, w = proba.shape[:2]
    photo = cv2.resize(np.asarray(rgb, np.float32), (w, h), interpolation=cv2.INTER_AREA)
    photo = np.clip(np.rint(photo), 0, 255).astype(np.uint8)
    gap = np.full((h, 4, 3), 255, np.uint8)
    picture = np.hstack([photo, gap, class_map_colours(proba)])
    with atomic_open(path, "wb") as fh:
        Image.fromarray(picture).save(fh, format="PNG")
    return Path(path)

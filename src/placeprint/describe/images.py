"""Reading images from paths or arrays into float32 grayscale arrays."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from placeprint.errors import PlaceprintError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PlaceprintError(f"not a folder of images: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise PlaceprintError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {folder}")
    return files


def load_gray(image: str | Path | np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """Load one image as ``(h, w) float32`` grayscale in [0, 255], resized to ``size=(w, h)``.

    ``image`` is a path or an array (``(h, w)`` or ``(h, w, 3)``, any numeric dtype).
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, np.ndarray):
        arr = np.asarray(image)
        if arr.ndim == 3 and arr.shape[2] in (3, 4):
            arr = arr[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        elif arr.ndim != 2:
            raise PlaceprintError(f"image array must be (h, w) or (h, w, 3), got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise PlaceprintError("image array contains NaN or inf")
        pil = Image.fromarray(arr.astype(np.float32), mode="F")
    else:
        path = Path(image)
        try:
            with Image.open(path) as im:
                pil = im.convert("L")
                pil.load()
        except FileNotFoundError:
            raise PlaceprintError(f"image not found: {path}") from None
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise PlaceprintError(f"cannot read image {path}: {exc}") from None
        pil = pil.convert("F")
    if size is not None and pil.size != tuple(size):
        pil = pil.resize(tuple(size), Image.Resampling.BILINEAR)
    return np.asarray(pil, dtype=np.float32)


def load_gray_batch(images: Sequence[str | Path | np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """Load many images as ``(n, h, w) float32`` grayscale, all resized to ``size=(w, h)``."""
    out = np.empty((len(images), size[1], size[0]), np.float32)
    for i, image in enumerate(images):
        out[i] = load_gray(image, size)
    return out

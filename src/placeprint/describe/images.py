"""Reading images from paths or arrays into float32 grayscale arrays."""

from __future__ import annotations

import contextlib
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
    from PIL import Image

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
        pil = open_photo(image).convert("L").convert("F")
    if size is not None and pil.size != tuple(size):
        pil = pil.resize(tuple(size), Image.Resampling.BILINEAR)
    return np.asarray(pil, dtype=np.float32)


def as_8bit_rgb(im):
    """A PIL image as 8-bit RGB: 16- and 32-bit grey scaled down (not clipped at 255),
    floats clipped to [0, 255], palette, alpha, grey and CMYK converted."""
    from PIL import Image

    if im.mode.startswith("I"):  # I;16, I;16B, I (16-bit PNGs open as one of these)
        a = np.asarray(im, dtype=np.float64)
        if a.size and a.max() > 255:
            a = a / 257.0  # 65535 -> 255
        im = Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8), mode="L")
    elif im.mode == "F":
        im = Image.fromarray(np.clip(np.asarray(im), 0, 255).round().astype(np.uint8), mode="L")
    return im if im.mode == "RGB" else im.convert("RGB")


def bomb_pixels(err: Exception) -> int | None:
    """The pixel count Pillow's ``DecompressionBombError`` names, if it does."""
    import re

    found = re.search(r"\((\d+) pixels\)", str(err))
    return int(found.group(1)) if found else None


def too_many_pixels(path: str | Path, err: Exception) -> str:
    """The message for a file past Pillow's decompression-bomb limit (twice
    ``Image.MAX_IMAGE_PIXELS``, about 179 megapixels)."""
    from PIL import Image

    pixels = bomb_pixels(err)
    size = f"{pixels / 1e6:.0f} megapixels, " if pixels is not None else ""
    limit = 2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6
    return f"cannot read image {path}: too many pixels ({size}at most {limit:.0f} megapixels)"


@contextlib.contextmanager
def large_images_allowed():
    """Read photos up to Pillow's hard limit without its warning (a 108-megapixel phone
    photo is a photo, not an attack); past it, ``Image.DecompressionBombError``."""
    import warnings

    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


#: JPEGs of more pixels than this are decoded at a reduced scale (Pillow's ``draft``: 1/2,
#: 1/4 or 1/8 in the decoder), keeping the longer side at least ``DRAFT_LONG_SIDE``, more
#: than any describer or the verification reads by default (at most 1,600). A 108-megapixel
#: photo then takes a quarter of the memory and time; smaller photos are decoded whole.
DRAFT_ABOVE_PIXELS = 40e6
DRAFT_LONG_SIDE = 4096


def _decode_smaller_if_huge(im) -> None:
    """Ask the JPEG decoder for a reduced scale when ``im`` is huge (see above)."""
    w, h = im.size
    if im.format != "JPEG" or w * h <= DRAFT_ABOVE_PIXELS:
        return
    scale = DRAFT_LONG_SIDE / max(w, h)
    im.draft(im.mode, (max(1, int(np.ceil(w * scale))), max(1, int(np.ceil(h * scale)))))


def open_photo(path: str | Path):
    """A photo file as an upright (EXIF orientation applied) 8-bit RGB PIL image."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with large_images_allowed(), Image.open(path) as im:
            _decode_smaller_if_huge(im)
            im.load()
            return as_8bit_rgb(ImageOps.exif_transpose(im))
    except Image.DecompressionBombError as exc:
        raise PlaceprintError(too_many_pixels(path, exc)) from None
    except FileNotFoundError:
        raise PlaceprintError(f"image not found: {path}") from None
    except IsADirectoryError:
        raise PlaceprintError(f"{path} is a folder, not an image") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise PlaceprintError(f"cannot read image {path}: {exc}") from None


def load_gray_batch(images: Sequence[str | Path | np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """Load many images as ``(n, h, w) float32`` grayscale, all resized to ``size=(w, h)``."""
    out = np.empty((len(images), size[1], size[0]), np.float32)
    for i, image in enumerate(images):
        out[i] = load_gray(image, size)
    return out


def load_rgb(
    image: str | Path | np.ndarray,
    size: tuple[int, int] | None = None,
    max_side: int | None = None,
) -> np.ndarray:
    """Load one image as ``(h, w, 3) float32`` RGB in [0, 255].

    ``image`` is a path or an array (``(h, w)`` grey or ``(h, w, 3|4)``, any numeric
    dtype; float arrays are taken as already in [0, 255]). ``size=(w, h)`` resizes to
    exactly that size; ``max_side`` instead shrinks (never enlarges) so that the longer
    side is at most ``max_side`` pixels, keeping the aspect ratio. Unreadable files
    raise :class:`PlaceprintError` naming the file.
    """
    from PIL import Image

    if isinstance(image, np.ndarray):
        arr = np.asarray(image)
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        elif arr.ndim == 3 and arr.shape[2] in (3, 4):
            arr = arr[..., :3]
        else:
            raise PlaceprintError(f"image array must be (h, w) or (h, w, 3), got {arr.shape}")
        if arr.size == 0:
            raise PlaceprintError("image array is empty")
        if not np.all(np.isfinite(arr)):
            raise PlaceprintError("image array contains NaN or inf")
        rgb = np.clip(arr.astype(np.float32), 0, 255)
        if size is None and max_side is None:
            return np.ascontiguousarray(rgb)
        pil = Image.fromarray(rgb.round().astype(np.uint8), mode="RGB")
    else:
        pil = open_photo(image)
    if size is not None:
        if pil.size != tuple(size):
            pil = pil.resize(tuple(size), Image.Resampling.BILINEAR)
    elif max_side is not None and max(pil.size) > max_side:
        scale = max_side / max(pil.size)
        new = (max(1, round(pil.size[0] * scale)), max(1, round(pil.size[1] * scale)))
        pil = pil.resize(new, Image.Resampling.BILINEAR)
    return np.asarray(pil, dtype=np.float32)

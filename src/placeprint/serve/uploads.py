"""Checks on uploaded images: size while reading, type by content, pixel count before decoding.

An upload is read in chunks and refused as soon as it passes the size limit; its type is
decided by its first bytes and by Pillow (never by its name or declared type); its pixel
count is checked from the header before any pixel data is decoded (decompression bombs);
truncated or corrupt files are refused; the EXIF orientation is applied and the result is
an ``(H, W, 3)`` uint8 RGB array ready for a describer.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from placeprint.describe.images import as_8bit_rgb, bomb_pixels

#: Pillow formats accepted (MPO is the multi-picture JPEG some cameras write)
ACCEPTED = {
    "JPEG": "JPEG",
    "MPO": "JPEG",
    "PNG": "PNG",
    "WEBP": "WebP",
    "BMP": "BMP",
    "TIFF": "TIFF",
}
ACCEPTED_NAMES = "JPEG, PNG, WebP, BMP or TIFF"
#: the Pillow decoders tried (the JPEG one also yields MPO)
_FORMATS = ["JPEG", "PNG", "WEBP", "BMP", "TIFF"]
_CHUNK = 1 << 20
#: decoded images are reduced to at most this many pixels on their long side (JPEGs are
#: decoded at a reduced scale directly): no describer looks at more, and memory stays small
MAX_SIDE = 1600


class UploadError(Exception):
    """An upload the service refuses: an HTTP status and one clear sentence."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def sniff(head: bytes) -> str | None:
    """The image family of a file from its first bytes (``JPEG``, ``PNG``, ...), else None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head.startswith(b"BM"):
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    return None


def _mb(n: float) -> str:
    return f"{n / (1 << 20):.1f} MiB"


async def read_limited(upload, max_bytes: int, name: str = "the upload") -> bytes:
    """Read an ``UploadFile``-like object (async ``read(n)``), refusing more than ``max_bytes``.

    Stops reading at the first chunk past the limit (413); an empty upload is a 400.
    """
    chunks, total = [], 0
    while True:
        chunk = await upload.read(min(_CHUNK, max_bytes + 1 - total) or 1)
        if not chunk:
            break
        total += len(chunk)
        if total > max_bytes:
            raise UploadError(413, f"{name} is larger than the limit of {_mb(max_bytes)}")
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        raise UploadError(400, f"{name} is empty")
    return data


def check_header(data: bytes, max_pixels: float, name: str = "the upload") -> Image.Image:
    """Open ``data`` (header only) and check its type and pixel count; returns the lazy image."""
    if not data:
        raise UploadError(400, f"{name} is empty")
    family = sniff(data[:16])
    if family is None:
        raise UploadError(
            415, f"{name} is not an image this service reads ({ACCEPTED_NAMES}, judged by content)"
        )
    try:
        im = Image.open(io.BytesIO(data), formats=_FORMATS)
    except Image.DecompressionBombError as err:  # Pillow's own guard, past 2x its limit
        pixels = bomb_pixels(err)
        size = f" ({pixels / 1e6:.0f} megapixels)" if pixels is not None else ""
        raise UploadError(
            413,
            f"{name} has too many pixels{size}; the limit is {max_pixels / 1e6:.0f} megapixels",
        ) from None
    except UnidentifiedImageError:
        raise UploadError(415, f"{name} is not a readable {family} image") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise UploadError(400, f"{name} is a damaged {family} image: {err}") from None
    if ACCEPTED.get(im.format or "") != family:
        raise UploadError(415, f"{name} is not an image this service reads ({ACCEPTED_NAMES})")
    w, h = im.size
    if w < 1 or h < 1:
        raise UploadError(400, f"{name} has no pixels ({w} x {h})")
    if w * h > max_pixels:
        raise UploadError(
            413,
            f"{name} is {w} x {h} pixels ({w * h / 1e6:.0f} megapixels); the limit is "
            f"{max_pixels / 1e6:.0f} megapixels",
        )
    return im


def image_pixels(data: bytes, max_pixels: float, name: str = "the upload") -> int:
    """Pixel count of an upload from its header (checked as :func:`check_header`)."""
    w, h = check_header(data, max_pixels, name).size
    return int(w) * int(h)


def decode_image(
    data: bytes, max_pixels: float = 50e6, name: str = "the upload", max_side: int = MAX_SIDE
) -> np.ndarray:
    """Checked, EXIF-oriented ``(H, W, 3)`` uint8 RGB pixels of an uploaded image, at most
    ``max_side`` pixels on the long side (JPEGs decoded at a reduced scale, others reduced
    right after decoding), so the memory an upload holds is bounded.

    Raises :class:`UploadError`: 400 empty/truncated/corrupt, 413 too many pixels,
    415 not an accepted image type.
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # someone relaxed Pillow: truncated files must fail
        raise UploadError(500, "the service is misconfigured (Pillow loads truncated images)")
    im = check_header(data, max_pixels, name)
    try:
        im.verify()  # structure and checksums, without decoding the pixels
        im = Image.open(io.BytesIO(data), formats=_FORMATS)
        if max(im.size) > max_side:
            im.draft("RGB", (max_side, max_side))  # JPEG: DCT scaling, 1/2 .. 1/8
        im.load()
        im = ImageOps.exif_transpose(im)
        if max(im.size) > max_side:
            im.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
        rgb = as_8bit_rgb(im)  # 16-bit grey scaled, not clipped; CMYK, palette, alpha
    except Image.DecompressionBombError:
        raise UploadError(413, f"{name} has too many pixels (a decompression bomb?)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise UploadError(400, f"{name} is truncated or damaged: {err}") from None
    return np.asarray(rgb, dtype=np.uint8)

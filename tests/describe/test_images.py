"""Photo files as describers and verification see them: upright, 8-bit RGB, any mode."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from placeprint.describe.images import load_gray, load_rgb
from placeprint.errors import PlaceprintError


def _gradient(h: int = 48, w: int = 64) -> np.ndarray:
    """An (h, w, 3) uint8 picture with no symmetry (so a rotation shows)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 4, y * 5, (x + 2 * y) % 256], axis=2).astype(np.uint8)


def test_exif_orientation_is_applied(tmp_path):
    rgb = _gradient()
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = 6  # stored sideways: the viewer turns it 90 degrees clockwise
    im.save(tmp_path / "sideways.png", exif=exif.tobytes())
    got = load_rgb(tmp_path / "sideways.png")
    upright = np.rot90(rgb, k=-1)  # 90 degrees clockwise, by hand
    assert got.shape == upright.shape == (64, 48, 3)
    np.testing.assert_array_equal(got, upright.astype(np.float32))
    assert load_gray(tmp_path / "sideways.png").shape == (64, 48)


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    values = np.linspace(0, 65535, 64 * 32).reshape(32, 64).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    grey = load_gray(tmp_path / "deep.png")
    np.testing.assert_allclose(grey, np.round(values / 257.0), atol=1.0)
    assert grey.min() == 0 and grey.max() == 255 and np.median(grey) < 200  # not saturated
    # nor is it taken for a flat photo (clipping at 255 made every 16-bit photo white)
    from placeprint.locate import photo_detail_problem

    assert photo_detail_problem(tmp_path / "deep.png") is None
    Image.fromarray(np.full((32, 64), 30000, np.uint16)).save(tmp_path / "flat.png")
    assert "flat colour" in photo_detail_problem(tmp_path / "flat.png")


def test_large_photos_are_read_quietly_and_too_large_ones_named(tmp_path, monkeypatch):
    """Up to Pillow's hard limit (twice MAX_IMAGE_PIXELS) a photo is read without its
    warning; past it, one clear error naming the file (here with the limit lowered)."""
    import warnings

    from placeprint.geo.exif import read_gps
    from placeprint.locate import photo_detail_problem

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # hard limit 2000 pixels
    Image.fromarray(_gradient(36, 40)).save(tmp_path / "large.jpg")  # 1440 pixels
    Image.fromarray(_gradient(48, 64)).save(tmp_path / "huge.jpg")  # 3072 pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails
        assert load_rgb(tmp_path / "large.jpg").shape == (36, 40, 3)
        assert photo_detail_problem(tmp_path / "large.jpg") is None
    for read in (load_rgb, load_gray, read_gps):
        with pytest.raises(PlaceprintError, match=r"huge.jpg: too many pixels \(0 megapixels, "):
            read(tmp_path / "huge.jpg")
    assert photo_detail_problem(tmp_path / "huge.jpg") is None  # named where it is described


def test_cmyk_palette_and_alpha_load_as_rgb(tmp_path):
    rgb = _gradient()
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "print.jpg", quality=95)
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png")
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])).save(
        tmp_path / "alpha.png"
    )
    for name in ("print.jpg", "alpha.png"):
        got = load_rgb(tmp_path / name)
        assert got.shape == rgb.shape
        assert np.abs(got - rgb).mean() < 12, name  # the same picture, within coding loss
    # a palette image: exactly the colours its palette holds
    with Image.open(tmp_path / "palette.png") as im:
        colours = np.asarray(im.convert("RGB"), np.float32)
    np.testing.assert_array_equal(load_rgb(tmp_path / "palette.png"), colours)


def test_unreadable_files_name_themselves(tmp_path):
    (tmp_path / "fake.jpg").write_text("not an image")
    with pytest.raises(PlaceprintError, match="cannot read image .*fake.jpg"):
        load_rgb(tmp_path / "fake.jpg")
    with pytest.raises(PlaceprintError, match="image not found"):
        load_gray(tmp_path / "missing.png")
    with pytest.raises(PlaceprintError, match="is a folder"):
        load_rgb(tmp_path)


def test_huge_jpegs_are_decoded_at_a_reduced_scale(tmp_path, monkeypatch):
    """Past DRAFT_ABOVE_PIXELS a JPEG is decoded smaller (its longer side still at least
    DRAFT_LONG_SIDE): the same picture as the full decode shrunk; other formats whole."""
    from placeprint.describe import images

    rgb = np.asarray(Image.fromarray(_gradient()).resize((400, 300), Image.BILINEAR))
    Image.fromarray(rgb).save(tmp_path / "big.jpg", quality=95)
    Image.fromarray(rgb).save(tmp_path / "big.png")
    full = load_rgb(tmp_path / "big.jpg")
    monkeypatch.setattr(images, "DRAFT_ABOVE_PIXELS", 100_000)  # 400 x 300 = 120,000
    monkeypatch.setattr(images, "DRAFT_LONG_SIDE", 100)
    small = load_rgb(tmp_path / "big.jpg")
    assert small.shape == (75, 100, 3)  # 1/4 scale: the smallest with a longer side >= 100
    shrunk = np.asarray(Image.fromarray(full.astype(np.uint8)).resize((100, 75), Image.BOX))
    assert np.abs(small - shrunk).mean() < 4  # the same picture
    assert load_rgb(tmp_path / "big.png").shape == (300, 400, 3)

"""Features of image files kept on disk: the same features as extraction, read back."""

import os
import time

import numpy as np
import pytest
from PIL import Image

from placeprint.verify import feature_store
from placeprint.verify.features import extract

SETTINGS = {"max_side": 640, "min_side": 256, "max_features": 500, "contrast_threshold": 0.04}


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("PLACEPRINT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PLACEPRINT_FEATURE_CACHE_MB", raising=False)
    return tmp_path


def photo(path, seed):
    rng = np.random.default_rng(seed)
    img = np.kron(rng.integers(0, 255, (24, 32)), np.ones((10, 10))).astype(np.uint8)
    Image.fromarray(img).save(path)
    return path


def counting(monkeypatch):
    calls = []
    real = feature_store.extract_sift

    def spy(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(feature_store, "extract_sift", spy)
    return calls


def test_stored_features_equal_extraction_and_are_read_back(store, monkeypatch):
    p = photo(store / "a.png", 0)
    calls = counting(monkeypatch)
    want = extract(p, **SETTINGS)
    first = feature_store.cached_extract(p, **SETTINGS)
    again = feature_store.cached_extract(str(p), **SETTINGS)
    assert len(calls) == 1 and len(want) > 50  # the second came from disk
    for got in (first, again):
        np.testing.assert_array_equal(got.keypoints, want.keypoints)
        np.testing.assert_array_equal(got.descriptors, want.descriptors)
        assert got.shape == want.shape and got.scale == want.scale
    feature_store.cached_extract(p, **{**SETTINGS, "max_features": 100})  # other settings
    assert len(calls) == 2


def test_an_edited_photo_or_a_damaged_entry_is_extracted_again(store, monkeypatch):
    p = photo(store / "a.png", 0)
    calls = counting(monkeypatch)
    feature_store.cached_extract(p, **SETTINGS)
    photo(p, 1)  # new pixels, new size and time
    os.utime(p, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    got = feature_store.cached_extract(p, **SETTINGS)
    np.testing.assert_array_equal(got.descriptors, extract(p, **SETTINGS).descriptors)
    assert len(calls) == 2
    for entry in feature_store.store_folder().glob("*/*.npz"):
        entry.write_bytes(b"not a zip")
    got = feature_store.cached_extract(p, **SETTINGS)
    np.testing.assert_array_equal(got.descriptors, extract(p, **SETTINGS).descriptors)
    assert len(calls) == 3


def test_the_folder_is_bounded_and_can_be_turned_off(store, monkeypatch):
    paths = [photo(store / f"{i}.png", i) for i in range(4)]
    for p in paths:
        feature_store.cached_extract(p, **SETTINGS)
    files = sorted(feature_store.store_folder().glob("*/*.npz"), key=lambda f: f.stat().st_mtime_ns)
    sizes = [f.stat().st_size for f in files]
    assert len(files) == 4
    assert feature_store.prune(sum(sizes[2:])) == 2  # the two oldest go
    assert sorted(feature_store.store_folder().glob("*/*.npz")) == sorted(files[2:])
    monkeypatch.setenv("PLACEPRINT_FEATURE_CACHE_MB", "0")
    calls = counting(monkeypatch)
    feature_store.cached_extract(paths[3], **SETTINGS)
    assert len(calls) == 1  # off: extracted, nothing read or written
    assert len(list(feature_store.store_folder().glob("*/*.npz"))) == 2


def test_store_extracts_each_photo_once_and_answers_read_it(store, monkeypatch):
    p = photo(store / "a.png", 0)
    calls = counting(monkeypatch)
    assert feature_store.store(p, **SETTINGS) and feature_store.store(p, **SETTINGS)
    assert len(calls) == 1  # the second found it stored (and read nothing)
    got = feature_store.cached_extract(p, **SETTINGS)
    assert len(calls) == 1
    np.testing.assert_array_equal(got.descriptors, extract(p, **SETTINGS).descriptors)
    monkeypatch.setenv("PLACEPRINT_FEATURE_CACHE_MB", "0")
    assert not feature_store.store(photo(store / "b.png", 1), **SETTINGS)  # off: nothing


def test_a_verifier_stores_every_database_photo_before_answers(store, monkeypatch):
    """What index build does: every photo's features stored, missing and broken photos
    skipped; answers then extract only the query."""
    from types import SimpleNamespace

    from placeprint.geo.verified import AnswerVerifier
    from placeprint.verify import GeometricReranker

    paths = [photo(store / f"{i}.png", i) for i in range(3)]
    broken = store / "broken.jpg"
    broken.write_bytes(b"not an image")
    rows = [*paths, store / "missing.jpg", broken, None]
    geo = SimpleNamespace(lat_=np.zeros(len(rows)), lon_=np.zeros(len(rows)))
    ver = AnswerVerifier(geo, lambda r: rows[r])
    calls = counting(monkeypatch)
    assert ver.store_features(range(len(rows)), workers=2) == 3
    assert len(calls) == 4  # three photos and the broken one tried; the missing one not
    fresh = GeometricReranker()
    got = fresh.features(paths[1])
    assert len(calls) == 4  # read from the store
    want = extract(paths[1], **fresh.extraction)
    np.testing.assert_array_equal(got.descriptors, want.descriptors)
    assert ver.store_features(range(3)) == 3 and len(calls) == 4  # stored already

"""Local features of image files kept on disk: extracted once per photo, not per process.

Verifying an answer needs the local features of the query and of up to ``top`` database
photos. Extracting them (SIFT on up to 640 px) is most of the time of a cold answer, and
an index build, a merge or a restarted service would extract the same photos' features
again. Features of image *files* are therefore cached under
``cache_root()/local-features``, keyed by the file's absolute path, size and modification
time (an edited photo is extracted again) and by the extraction settings.

Stored exactly: keypoints as float32 and OpenCV's SIFT values (whole numbers 0-255) as
uint8, RootSIFT recomputed on load, so a cached answer is the uncached one (about 0.3 MB
a photo at 2,000 features). Files are written atomically; a damaged one is extracted
again. The folder is bounded by ``$PLACEPRINT_FEATURE_CACHE_MB`` (default 2048; 0 turns
the cache off): past it, the oldest files are removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import zipfile
from pathlib import Path

import numpy as np

from placeprint.verify.features import LocalFeatures, extract_sift, rootsift

STORE_VERSION = 1
DEFAULT_LIMIT_MB = 2048
PRUNE_EVERY = 64  # writes between checks of the folder's size

_lock = threading.Lock()
_writes = 0


def limit_bytes() -> int:
    """The folder's bound in bytes (``$PLACEPRINT_FEATURE_CACHE_MB``; 0: no cache)."""
    text = os.environ.get("PLACEPRINT_FEATURE_CACHE_MB", str(DEFAULT_LIMIT_MB))
    try:
        return max(0, int(float(text) * 2**20))
    except ValueError:
        return DEFAULT_LIMIT_MB * 2**20


def store_folder() -> Path:
    """Where cached features live."""
    from placeprint.config import cache_root

    return cache_root() / "local-features"


def _entry(path: Path, settings: dict) -> Path:
    from placeprint.describe.cache import image_key

    text = json.dumps([STORE_VERSION, image_key(path), settings], sort_keys=True)
    key = hashlib.sha1(text.encode()).hexdigest()
    return store_folder() / key[:2] / f"{key}.npz"


def _read(entry: Path) -> LocalFeatures | None:
    try:
        with np.load(entry, allow_pickle=False) as z:
            kp, raw = z["keypoints"], z["sift"]
            shape, scale = tuple(int(v) for v in z["shape"]), float(z["scale"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if raw.dtype != np.uint8 or raw.ndim != 2 or kp.shape != (len(raw), 4):
        return None
    return LocalFeatures(kp, rootsift(raw), shape, scale)


def _write(entry: Path, kp, raw, shape, scale) -> None:
    from placeprint.atomic import atomic_open

    global _writes
    entry.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(entry, "wb") as fh:
        np.savez(fh, keypoints=kp, sift=raw, shape=np.asarray(shape), scale=np.float64(scale))
    with _lock:
        _writes += 1
        due = _writes % PRUNE_EVERY == 0
    if due:
        prune(limit_bytes())


def prune(limit: int) -> int:
    """Remove the oldest cached files until the folder holds at most ``limit`` bytes;
    returns how many were removed."""
    files = []
    for sub in store_folder().glob("*/*.npz"):
        try:
            st = sub.stat()
        except OSError:
            continue
        files.append((st.st_mtime_ns, st.st_size, sub))
    total = sum(f[1] for f in files)
    removed = 0
    for _, size, sub in sorted(files):
        if total <= limit:
            break
        sub.unlink(missing_ok=True)
        total -= size
        removed += 1
    return removed


def cached_extract(image, **settings) -> LocalFeatures:
    """:func:`~placeprint.verify.features.extract` of ``image`` with ``settings``, from the
    store when ``image`` is a file path that was extracted before with the same settings."""
    if not isinstance(image, str | Path) or limit_bytes() == 0:
        kp, raw, shape, scale = extract_sift(image, **settings)
        return LocalFeatures(kp, rootsift(raw), shape, scale)
    path = Path(image)
    entry = _entry(path, settings)
    if entry.is_file():
        found = _read(entry)
        if found is not None:
            return found
    (kp, raw, shape, scale), _ = _extract_into(entry, path, settings)
    return LocalFeatures(kp, rootsift(raw), shape, scale)


def _extract_into(entry: Path, path: Path, settings: dict) -> tuple[tuple, bool]:
    """:func:`extract_sift` of ``path`` written at ``entry``: the extraction, and whether
    it was written (a full or read-only disk leaves it unwritten: no answer needs it)."""
    found = extract_sift(path, **settings)
    try:
        _write(entry, *found)
    except OSError:
        return found, False
    return found, True


def store(path: str | Path, **settings) -> bool:
    """Extract the features of the image file ``path`` with ``settings`` into the store
    unless they are there already (then nothing is read). True when they are stored; False
    when the store is off or the disk refused the file. Unreadable images raise
    :class:`~placeprint.errors.PlaceprintError`."""
    if limit_bytes() == 0:
        return False
    path = Path(path)
    entry = _entry(path, settings)
    if entry.is_file():
        return True
    return _extract_into(entry, path, settings)[1]

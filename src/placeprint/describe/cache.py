"""Describe a collection once: on-disk descriptor cache, batches, both cores, bad files skipped.

Batches run on every core (threads). Descriptors are stored per describer
configuration (``config_key()``, which includes a learner's state fingerprint) in
a folder of shard files, one per finished batch, each written atomically. An
interrupted run therefore keeps every finished batch and the next run describes
only what is missing. Entries are keyed by the image's absolute path, size and
modification time, so an edited image is described again. Images that cannot be
read are reported by name and skipped.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from placeprint.atomic import atomic_open, atomic_write_bytes
from placeprint.errors import PlaceprintError
from placeprint.threads import default_threads, ordered_map

SHARD_VERSION = 1


def image_key(path: str | Path) -> str:
    """Cache key of an image file: absolute path, size and mtime (ns)."""
    path = Path(path).resolve()
    try:
        st = path.stat()
        stamp = f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        stamp = "missing"
    return f"{path}|{stamp}"


class DescriptorCache:
    """Shards of ``(keys, descriptors)`` for one describer configuration under ``folder``."""

    def __init__(self, folder: str | Path, describer) -> None:
        config = describer.config()
        self.folder = Path(folder) / f"{describer.name}-{describer.config_key()}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.dim = int(describer.dim)
        config_file = self.folder / "config.json"
        if not config_file.exists():
            _atomic_write_bytes(config_file, json.dumps(config, indent=1, default=str).encode())
        self._rows: dict[str, np.ndarray] = {}
        for shard in sorted(self.folder.glob("shard-*.npz")):
            self._read_shard(shard)

    def _read_shard(self, shard: Path) -> None:
        try:
            with np.load(shard, allow_pickle=False) as z:
                if int(z["version"]) != SHARD_VERSION:
                    return
                keys, X = z["keys"], z["descriptors"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return  # a damaged shard is ignored and its images described again
        if X.ndim != 2 or X.shape[1] != self.dim or len(keys) != len(X):
            return
        for key, row in zip(keys.tolist(), X, strict=True):
            self._rows[key] = row

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: str) -> bool:
        return key in self._rows

    def get(self, key: str) -> np.ndarray:
        """The cached ``(dim,) float32`` row of ``key``."""
        return self._rows[key]

    def put(self, keys: Sequence[str], X: np.ndarray) -> None:
        """Store a finished batch as a new shard (atomically)."""
        if len(keys) == 0:
            return
        X = np.asarray(X, np.float32)
        digest = hashlib.sha1("\n".join(keys).encode()).hexdigest()[:16]
        shard = self.folder / f"shard-{digest}.npz"
        with atomic_open(shard) as fh:
            np.savez(fh, version=np.int32(SHARD_VERSION), keys=np.array(keys), descriptors=X)
        for key, row in zip(keys, X, strict=True):
            self._rows[key] = row


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data)


@dataclass
class DescribedCollection:
    """Descriptors of the readable images, in input order, and what was skipped."""

    descriptors: np.ndarray  # (n_ok, dim) float32
    kept: list[int]  # indices into the input list of each row
    failed: list[tuple[str, str]] = field(default_factory=list)  # (image, reason)
    from_cache: int = 0


# -- workers ---------------------------------------------------------------------
def _describe_batch(describer, items: list) -> tuple[np.ndarray, list[int], list[tuple[int, str]]]:
    """Describe a batch; on a bad image, fall back to one by one and report the bad ones."""
    try:
        return describer(items), list(range(len(items))), []
    except PlaceprintError:
        pass
    rows, ok, bad = [], [], []
    for i, item in enumerate(items):
        try:
            rows.append(describer([item])[0])
            ok.append(i)
        except PlaceprintError as exc:
            bad.append((i, str(exc)))
    X = np.vstack(rows) if rows else np.zeros((0, describer.dim), np.float32)
    return X, ok, bad


def default_workers(describer) -> int:
    """Threads to use: 1 for describers that thread natively, else every core (max 8)."""
    if getattr(describer, "native_threads", False):
        return 1
    return default_threads()


def describe_collection(
    describer,
    images: Sequence[str | Path | np.ndarray],
    cache: str | Path | None = None,
    batch: int = 32,
    workers: int | None = None,
    progress: bool = True,
    on_batch: Callable[[int], None] | None = None,
) -> DescribedCollection:
    """Describe ``images`` with ``describer``: ``(n_ok, dim) float32`` plus skipped files.

    ``cache`` is a folder (e.g. ``cache_root() / "descriptors"``) or None; arrays are
    never cached (they have no path). ``workers`` threads share the batches (default:
    every core, or 1 for describers that thread natively). ``on_batch`` is called with
    the number of images after each finished batch.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, TimeRemainingColumn

    from placeprint.progress import progress_bar

    describer.check_fitted()
    if batch < 1:
        raise PlaceprintError(f"batch must be >= 1, got {batch}")
    n = len(images)
    store = DescriptorCache(cache, describer) if cache is not None else None
    keys = [None if isinstance(im, np.ndarray) else image_key(im) for im in images]
    rows: dict[int, np.ndarray] = {}
    failed: dict[int, str] = {}
    if store is not None:
        for i, key in enumerate(keys):
            if key is not None and key in store:
                rows[i] = store.get(key)
    from_cache = len(rows)
    todo = [i for i in range(n) if i not in rows]
    batches = [todo[s : s + batch] for s in range(0, len(todo), batch)]
    workers = default_workers(describer) if workers is None else max(1, int(workers))
    workers = min(workers, len(batches)) if batches else 1

    def collect(idx: list[int], result) -> None:
        X, ok, bad = result
        for j, row in zip(ok, X, strict=True):
            rows[idx[j]] = row
        for j, reason in bad:
            failed[idx[j]] = reason
        if store is not None:
            good = [(keys[idx[j]], X[r]) for r, j in enumerate(ok) if keys[idx[j]] is not None]
            if good:
                store.put([k for k, _ in good], np.vstack([x for _, x in good]))

    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn())
    with progress_bar(not progress, *columns, TimeRemainingColumn()) as bar:
        task = bar.add_task(f"describing ({describer.name})", total=n, completed=from_cache)
        # threads: describers are pure functions of their input and fitted state, and their
        # heavy work (OpenCV, numpy, onnxruntime) releases the GIL
        results = ordered_map(
            lambda idx: _describe_batch(describer, [images[i] for i in idx]), batches, workers
        )
        for idx, result in zip(batches, results, strict=True):
            collect(idx, result)
            bar.advance(task, len(idx))
            if on_batch:
                on_batch(len(idx))
    kept = sorted(rows)
    X = (
        np.vstack([rows[i] for i in kept]).astype(np.float32)
        if kept
        else np.zeros((0, describer.dim), np.float32)
    )
    names = [
        str(images[i]) if not isinstance(images[i], np.ndarray) else f"array[{i}]"
        for i in sorted(failed)
    ]
    return DescribedCollection(
        X, kept, list(zip(names, [failed[i] for i in sorted(failed)], strict=True)), from_cache
    )

"""Describe and encode on a Dask cluster: the expensive stages of ``index build``.

A :class:`DaskRunner` splits the images into ordered shards of ``shard_size``; the fitted
describer is sent to every worker once (``scatter(broadcast=True)``); each shard is
described on a worker (the descriptor cache honoured: workers read and write the same
cache folder); the client keeps the shards in order. A worker lost mid-shard has its
shard run again elsewhere (``retries``); an unreadable image is reported and skipped as in
a single-machine build. Every finished shard is written to ``work_dir`` (one ``.npz``,
atomically), named by what made it (describer config and the shard's files), so a build
that is stopped and started again describes only the shards it had not finished.

Encoding is mapped over the workers in the same shards. Describers and codecs are pure
functions of their input and fitted state, so the result is the single-machine build's.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from placeprint.errors import PlaceprintError


def shards_of(n: int, shard_size: int) -> list[range]:
    """Consecutive ranges covering ``0..n-1``, each at most ``shard_size`` long."""
    if shard_size < 1:
        raise PlaceprintError(f"shard size must be >= 1, got {shard_size}")
    return [range(a, min(a + shard_size, n)) for a in range(0, n, shard_size)]


def _describe_shard(describer, files: list[str]) -> tuple[np.ndarray, list[int], list]:
    """On a worker: one shard's descriptors, the kept positions and the failures."""
    from placeprint.config import cache_root
    from placeprint.describe.cache import describe_collection

    result = describe_collection(
        describer, files, cache=cache_root() / "descriptors", workers=1, progress=False
    )
    return result.descriptors, list(result.kept), list(result.failed)


def _encode_shard(codec, X: np.ndarray) -> np.ndarray:
    """On a worker: the codes of one shard's descriptors."""
    return codec.encode(X)


class DaskRunner:
    """A Dask client (a cluster at ``scheduler``, or ``workers`` local worker processes)
    that describes and encodes shards. Use as a context manager."""

    def __init__(
        self,
        scheduler: str | None = None,
        workers: int | None = None,
        shard_size: int = 500,
        work_dir: str | Path | None = None,
        retries: int = 2,
        processes: bool = True,
        quiet: bool = False,
    ) -> None:
        if (scheduler is None) == (workers is None):
            raise PlaceprintError("give either a scheduler address or a number of workers")
        if workers is not None and not 1 <= workers <= 256:
            raise PlaceprintError(f"--workers must be 1-256, got {workers}")
        shards_of(1, shard_size)
        self.scheduler = scheduler
        self.workers = workers
        self.shard_size = int(shard_size)
        self.work_dir = None if work_dir is None else Path(work_dir)
        self.retries = int(retries)
        self.processes = processes
        self.quiet = quiet
        self.client = None
        self._cluster = None
        self.reused_shards = 0

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> DaskRunner:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise PlaceprintError(
                "the Dask path needs dask and distributed (make installs them: "
                "pip install 'placeprint[distributed]')"
            ) from None
        try:
            if self.scheduler is not None:
                self.client = Client(self.scheduler, timeout="20s")
            else:
                self._cluster = LocalCluster(
                    n_workers=self.workers,
                    threads_per_worker=1,
                    processes=self.processes,
                    dashboard_address=":0",
                )
                self.client = Client(self._cluster)
        except OSError as exc:
            where = self.scheduler or "local cluster"
            raise PlaceprintError(f"cannot reach the Dask scheduler ({where}): {exc}") from None
        if not self.quiet:
            print(f"Dask dashboard: {self.client.dashboard_link}", file=sys.stderr)
        return self

    def __exit__(self, *exc) -> None:
        if self.client is not None:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    # ------------------------------------------------------------- describing
    def _shard_file(self, describer, files: Sequence[str]) -> Path | None:
        if self.work_dir is None:
            return None
        key = hashlib.sha1(
            json.dumps([describer.config(), [str(f) for f in files]], default=str).encode()
        ).hexdigest()[:16]
        return self.work_dir / f"shard-{key}.npz"

    def describe(self, describer, files: Sequence[str | Path]) -> tuple[np.ndarray, list[int]]:
        """Descriptors of ``files`` (in order) and the positions kept, like
        :func:`placeprint.sources.describe_files`."""
        from distributed import as_completed

        from placeprint.progress import progress_bar

        files = [str(f) for f in files]
        ranges = shards_of(len(files), self.shard_size)
        results: dict[int, tuple[np.ndarray, list[int], list]] = {}
        pending = {}
        if self.work_dir is not None:
            self.work_dir.mkdir(parents=True, exist_ok=True)
        shared = self.client.scatter(describer, broadcast=True)
        for i, r in enumerate(ranges):
            done = self._shard_file(describer, files[r.start : r.stop])
            if done is not None and done.is_file():
                with np.load(done, allow_pickle=False) as z:
                    failed = json.loads(str(z["failed"]))
                    results[i] = (z["X"], z["kept"].tolist(), failed)
                self.reused_shards += 1
                continue
            future = self.client.submit(
                _describe_shard, shared, files[r.start : r.stop], retries=self.retries, pure=False
            )
            pending[future] = i
        t0, images = time.perf_counter(), 0
        with progress_bar(self.quiet) as bar:
            task = bar.add_task("describing shards", total=len(ranges), completed=len(results))
            for future in as_completed(list(pending)):
                i = pending[future]
                try:
                    X, kept, failed = future.result()
                except Exception as exc:  # a shard that failed every retry
                    raise PlaceprintError(f"shard {i + 1} of {len(ranges)} failed: {exc}") from None
                results[i] = (X, kept, failed)
                shard = files[ranges[i].start : ranges[i].stop]
                self._save_shard(describer, shard, X, kept, failed)
                images += len(ranges[i])
                rate = images / max(time.perf_counter() - t0, 1e-9)
                bar.update(task, advance=1, description=f"describing shards ({rate:.0f} images/s)")
        X_all, kept_all = [], []
        for i, r in enumerate(ranges):
            X, kept, failed = results[i]
            for name, reason in failed:
                print(f"warning: skipped {name}: {reason}", file=sys.stderr)
            X_all.append(np.asarray(X, np.float32).reshape(len(kept), -1))
            kept_all += [r.start + k for k in kept]
        if not kept_all:
            raise PlaceprintError("no image could be read")
        dims = {x.shape[1] for x in X_all if len(x)}
        return np.concatenate([x for x in X_all if len(x)]).reshape(-1, dims.pop()), kept_all

    def _save_shard(self, describer, files, X, kept, failed) -> None:
        path = self._shard_file(describer, files)
        if path is None:
            return
        from placeprint.atomic import atomic_open

        with atomic_open(path, "wb") as fh:
            np.savez(fh, X=X, kept=np.asarray(kept, np.int64), failed=json.dumps(failed))

    # --------------------------------------------------------------- encoding
    def encode(self, codec, X: np.ndarray) -> np.ndarray:
        """Codes of ``X`` computed on the workers, shard by shard, in order."""
        shared = self.client.scatter(codec, broadcast=True)
        ranges = shards_of(len(X), max(self.shard_size, 4096))
        futures = [
            self.client.submit(_encode_shard, shared, X[r.start : r.stop], retries=self.retries)
            for r in ranges
        ]
        return np.concatenate(self.client.gather(futures))

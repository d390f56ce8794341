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


def with_threads(describer, threads: int):
    """A copy of ``describer`` whose native threads (a deep describer's ONNX Runtime
    session) are ``threads``, so that a worker uses the cores Dask gives it and no more;
    other describers are returned as they are. Descriptors do not depend on the thread
    count (checked on cnn_netvlad), and the config, which names shards and cache entries,
    leaves threads out."""
    if not hasattr(describer, "threads"):
        return describer
    import pickle

    copy = pickle.loads(pickle.dumps(describer))  # a fitted describer drops its session
    copy.threads = int(threads)
    if hasattr(copy, "backbone") and hasattr(copy.backbone, "threads"):
        copy.backbone.threads = int(threads)
    return copy


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

    def worker_threads(self) -> int:
        """Threads of the smallest worker (each runs one shard at a time a thread)."""
        workers = self.client.scheduler_info().get("workers", {})
        return max(1, min((w.get("nthreads", 1) for w in workers.values()), default=1))

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
        :func:`placeprint.sources.describe_files`.

        With a ``work_dir`` the client never holds more than one shard: each finished shard
        goes to its file, and the result is a read-only memory map of all of them in order
        (``descriptors.npy`` there), so a codec fitted on a sample and encoding shard by
        shard read only what they need.
        """
        from distributed import as_completed

        from placeprint.progress import progress_bar

        files = [str(f) for f in files]
        ranges = shards_of(len(files), self.shard_size)
        results: dict[int, tuple[np.ndarray, list[int], list] | Path] = {}
        pending = {}
        if self.work_dir is not None:
            self.work_dir.mkdir(parents=True, exist_ok=True)
        worker_copy = with_threads(describer, self.worker_threads())
        shared = self.client.scatter(worker_copy, broadcast=True)
        for i, r in enumerate(ranges):
            done = self._shard_file(describer, files[r.start : r.stop])
            if done is not None and done.is_file():
                results[i] = done
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
                i = pending.pop(future)
                try:
                    X, kept, failed = future.result()
                except Exception as exc:  # a shard that failed every retry
                    raise PlaceprintError(f"shard {i + 1} of {len(ranges)} failed: {exc}") from None
                future.release()
                shard = files[ranges[i].start : ranges[i].stop]
                saved = self._save_shard(describer, shard, X, kept, failed)
                results[i] = saved if saved is not None else (X, kept, failed)
                images += len(ranges[i])
                rate = images / max(time.perf_counter() - t0, 1e-9)
                bar.update(task, advance=1, description=f"describing shards ({rate:.0f} images/s)")
        return self._assemble(ranges, results)

    @staticmethod
    def _load_shard(entry, descriptors: bool = True) -> tuple[np.ndarray | None, list[int], list]:
        """``(X, kept, failed)`` of a finished shard (in memory or its file); ``X`` is None
        with ``descriptors=False`` (a shard file's arrays are read only when asked for)."""
        if not isinstance(entry, Path):
            X, kept, failed = entry
            return np.asarray(X, np.float32).reshape(len(kept), -1), list(kept), failed
        with np.load(entry, allow_pickle=False) as z:
            kept = z["kept"].tolist()
            X = z["X"].astype(np.float32).reshape(len(kept), -1) if descriptors else None
            return X, kept, json.loads(str(z["failed"]))

    def _assemble(self, ranges: list[range], results: dict) -> tuple[np.ndarray, list[int]]:
        """The shards in order: a memory map in ``work_dir`` when the shards are files, else
        one array. Failures are reported here, in route order."""
        counts, kept_all = [], []
        for i, r in enumerate(ranges):  # first pass: sizes and failures, no descriptors read
            _, kept, failed = self._load_shard(results[i], descriptors=False)
            for name, reason in failed:
                print(f"warning: skipped {name}: {reason}", file=sys.stderr)
            counts.append(len(kept))
            kept_all += [r.start + k for k in kept]
        if not kept_all:
            raise PlaceprintError("no image could be read")
        # the first shard with descriptors gives their length; every shard before it is
        # empty, so it is also the first written
        first = int(np.flatnonzero(counts)[0])
        head = self._load_shard(results[first])[0]
        dim = head.shape[1]
        rest = (i for i in range(first + 1, len(ranges)) if counts[i])
        on_disk = all(isinstance(e, Path) for e in results.values())
        if on_disk and self.work_dir is not None:
            from placeprint.atomic import atomic_open

            target = self.work_dir / "descriptors.npy"
            header = {"descr": "<f4", "fortran_order": False, "shape": (len(kept_all), dim)}
            with atomic_open(target, "wb") as fh:  # streamed: one shard in memory at a time
                np.lib.format.write_array_header_1_0(fh, header)
                fh.write(np.ascontiguousarray(head, "<f4"))
                del head
                for i in rest:
                    fh.write(np.ascontiguousarray(self._load_shard(results[i])[0], "<f4"))
            return np.load(target, mmap_mode="r"), kept_all
        parts = [head] + [self._load_shard(results[i])[0] for i in rest]
        return np.concatenate(parts).reshape(-1, dim), kept_all

    def _save_shard(self, describer, files, X, kept, failed) -> Path | None:
        path = self._shard_file(describer, files)
        if path is None:
            return None
        from placeprint.atomic import atomic_open

        with atomic_open(path, "wb") as fh:
            np.savez(fh, X=X, kept=np.asarray(kept, np.int64), failed=json.dumps(failed))
        return path

    # --------------------------------------------------------------- encoding
    def encode(self, codec, X: np.ndarray) -> np.ndarray:
        """Codes of ``X`` computed on the workers, shard by shard, in order.

        At most two shards a worker are in flight, so a memory-mapped ``X`` is read a few
        shards at a time: the client holds the codes, not the descriptors.
        """
        from distributed import wait

        shared = self.client.scatter(codec, broadcast=True)
        ranges = shards_of(len(X), max(self.shard_size, 4096))
        window = 2 * max(1, len(self.client.scheduler_info().get("workers", {})))
        codes: list[np.ndarray | None] = [None] * len(ranges)
        pending: dict = {}
        for i, r in enumerate(ranges):
            if len(pending) >= window:
                self._collect(
                    wait(list(pending), return_when="FIRST_COMPLETED").done, pending, codes
                )
            part = np.array(X[r.start : r.stop])  # a memory-mapped shard is read here
            pending[self.client.submit(_encode_shard, shared, part, retries=self.retries)] = i
        self._collect(list(pending), pending, codes)
        return np.concatenate(codes)

    @staticmethod
    def _collect(done, pending: dict, codes: list) -> None:
        for future in done:
            codes[pending.pop(future)] = future.result()

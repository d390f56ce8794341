"""The query side of a sharded map, measured: memory per shard and latency over shards.

``S`` shards of ``n`` places each, built with one codec and one key length. Shard 1
holds the real database route (Nordland summer) followed by distractors; the others
hold distractors only, all drawn by the segment generator fitted on the route's tuning
places
(:class:`~placeprint.datasets.distractors.SegmentRouteGenerator`: as confusable as real
places). Each shard is saved and loaded back as a server would; memory is the rise of
the process's resident set while loading them. Queries are real winter windows; latency
runs from their raw descriptors through one projection and every shard's search
(:class:`~placeprint.distributed.shards.ShardSet`), one thread, for the first 1..S shards,
after one untimed query (a running server is warm).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

CHUNK = 1 << 20


def current_rss_mb() -> float:
    """Resident memory of this process now, MiB (``/proc/self/statm``)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return float("nan")
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def machine_memory_gb() -> float:
    """Physical memory of this machine, GB."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 1e9


def _shard(codec, gen, n: int, real_codes: np.ndarray | None, seed: int, key_bits: int):
    from placeprint.index import OverloadedIndex

    index = OverloadedIndex(codec, key_bits=key_bits)
    left = n
    if real_codes is not None:
        index.add_codes(real_codes)
        left -= len(real_codes)
    for chunk in gen.database(left, chunk=CHUNK, start=seed * n):
        index.add_codes(codec.quantize(chunk))
    index.build()
    return index


def shard_serving(
    codec,
    database: np.ndarray,
    queries: np.ndarray,
    ends: np.ndarray,
    length: int,
    shards: int,
    places: int,
    source_rows: np.ndarray | None = None,
    matcher_options: dict | None = None,
    seed: int = 0,
    quiet: bool = True,
) -> dict:
    """Memory and latency of ``shards`` shards of ``places`` places (see the module).

    ``database (N, d)`` real route descriptors (shard 1 starts with them); ``queries``
    the same places under another condition, row for row; ``ends`` the last frames of
    the ``length``-frame query windows; ``source_rows`` the database rows distractors are
    made from (default all: give the tuning rows); ``matcher_options`` every shard's.
    """
    from placeprint.datasets.distractors import SegmentRouteGenerator
    from placeprint.distributed.shards import ShardSet
    from placeprint.index import OverloadedIndex
    from placeprint.index.overloaded import default_key_bits

    if places <= len(database):
        from placeprint.errors import PlaceprintError

        raise PlaceprintError(f"a shard needs more than the {len(database)} real places")
    rows = np.arange(len(database)) if source_rows is None else np.asarray(source_rows)
    gen = SegmentRouteGenerator(seed=seed).fit(codec.transform(database[rows]))
    key_bits = default_key_bits(places, codec.n_bits)
    real = codec.encode(database)
    build_s, paths = [], []
    with tempfile.TemporaryDirectory(prefix="placeprint-shards-") as tmp:
        for s in range(shards):
            t0 = time.perf_counter()
            index = _shard(codec, gen, places, real if s == 0 else None, seed + s, key_bits)
            paths.append(Path(tmp) / f"shard{s}.ppidx")
            index.save(paths[-1])
            build_s.append(time.perf_counter() - t0)
            if not quiet:
                print(f"shard {s + 1}/{shards}: {places:,} places in {build_s[-1]:.1f} s")
            del index
        shard_bytes = paths[0].stat().st_size
        rss0 = current_rss_mb()
        loaded = [OverloadedIndex.load(p) for p in paths]
        rss1 = current_rss_mb()
    rows = []
    for s in range(1, shards + 1):
        group = ShardSet(loaded[:s], **(matcher_options or {}))
        group.search(queries[ends[0] - length + 1 : ends[0] + 1])  # a running server is warm
        latency, correct = [], 0
        for e in ends:
            X = queries[e - length + 1 : e + 1]
            t0 = time.perf_counter()
            r = group.search(X, k=5)
            latency.append((time.perf_counter() - t0) * 1000)
            correct += abs(r.best - int(e)) <= 2
        rows.append(
            {
                "shards": s,
                "places": group.ntotal,
                "ms_p50": float(np.median(latency)),
                "ms_p95": float(np.percentile(latency, 95)),
                "r1": correct / len(ends),
            }
        )
    per_shard_mb = (rss1 - rss0) / shards
    ram_gb = machine_memory_gb()
    return {
        "places_per_shard": places,
        "key_bits": key_bits,
        "query_length": length,
        "queries": len(ends),
        "shard_file_bytes": shard_bytes,
        "bytes_per_place": shard_bytes / places,
        "build_seconds_per_shard": float(np.mean(build_s)),
        "rss_mb_per_loaded_shard": per_shard_mb,
        "machine_memory_gb": ram_gb,
        "shards_one_machine_serves": int(0.75 * ram_gb * 1e9 / 2**20 // max(per_shard_mb, 1e-9)),
        "rows": rows,
    }

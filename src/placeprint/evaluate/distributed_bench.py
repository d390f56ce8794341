"""Describe + encode throughput on one machine and on local Dask clusters, and what that
means at 10M, 100M and 1B places: ``python benchmarks/distributed.py --help``.

Rows, on ``--images`` Nordland frames with ``--describer`` (fitted once, on the client,
before any row: fitting is the same in every path):

- **one process**: the plain build's path (:func:`placeprint.sources.describe_files`,
  then the codec fitted and every descriptor encoded), using every core as it does;
- **Dask, k workers** (``--workers``, one thread each, a local cluster): the same through
  :class:`placeprint.distributed.runner.DaskRunner`; the cluster's start is timed apart.

Every row starts from an empty descriptor cache. The codes of every Dask row are checked
against the one-process codes. The projection multiplies the measured cost per image by
the number of places and divides by the cores of a cluster; see ``docs/scaling.md``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from placeprint.errors import PlaceprintError

SCALES = (10_000_000, 100_000_000, 1_000_000_000)


def _timed_build(describe, encode, describer, files, code_size: int) -> dict:
    from placeprint.codec import CoarseCodec

    t0 = time.perf_counter()
    X, kept = describe(describer, files)
    t1 = time.perf_counter()
    codec = CoarseCodec(code_size=code_size).fit(X)
    codes = encode(codec, X)
    t2 = time.perf_counter()
    return {"describe_s": t1 - t0, "encode_s": t2 - t1, "seconds": t2 - t0,
            "images_per_s": len(kept) / (t2 - t0), "codes": codes, "X": X,
            "codec": codec}  # fmt: skip


def distributed_main(argv: list[str], prog: str = "benchmarks/distributed.py") -> dict:
    """Describe+encode throughput: one process against local Dask clusters; projections."""
    from placeprint import describe as registry
    from placeprint.evaluate.benchargs import Parser, finish
    from placeprint.evaluate.report import print_table, run_metadata
    from placeprint.index.overloaded import code_size_for_budget

    p = Parser(prog=prog, description=distributed_main.__doc__)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--images", type=int, default=2500, help="Nordland frames to describe")
    p.add_argument("--describer", default="cnn_netvlad")
    p.add_argument("--workers", default="1,2", help="local cluster sizes to measure")
    p.add_argument("--shard-size", type=int, default=250)
    p.add_argument(
        "--threads", type=int, default=None,
        help="threads of a deep describer in every row (default: its own, 2); 1 measures "
        "scaling per core: the one-process row then uses one core, each worker one",
    )  # fmt: skip
    p.add_argument("--query-shards", type=int, default=3, help="shards to query (0: skip)")
    p.add_argument("--shard-places", type=int, default=10_000_000, help="places a shard")
    p.add_argument("--query-length", type=int, default=100, help="frames a query sequence")
    p.add_argument(
        "--settings", default=None, help="validation settings for serving (default: the "
        "headline's benchmarks/results/validation.json; 'defaults': library defaults)"
    )  # fmt: skip
    p.add_argument("--code-size", type=int, default=7, help="serving: code bytes (headline: 7)")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    try:
        sizes = [int(w) for w in a.workers.split(",") if w.strip()]
    except ValueError:
        raise PlaceprintError(f"{prog}: --workers must be numbers like 1,2") from None
    if not sizes or min(sizes) < 1 or a.images < 50 or a.shard_size < 1:
        raise PlaceprintError(f"{prog}: need workers >= 1, --images >= 50, --shard-size >= 1")
    if a.query_shards < 0 or not 10 <= a.query_length <= 500 or not 1 <= a.code_size <= 8:
        raise PlaceprintError(
            f"{prog}: need --query-shards >= 0, 10 <= --query-length <= 500, --code-size 1-8"
        )
    if a.query_shards and a.shard_places < 10_000:
        raise PlaceprintError(f"{prog}: --shard-places must be at least 10000")
    if a.describer not in registry.catalog():
        raise PlaceprintError(f"{prog}: unknown describer {a.describer!r}")
    from placeprint.datasets.nordland import load_nordland
    from placeprint.distributed.runner import DaskRunner
    from placeprint.sources import describe_files

    files = [str(f) for f in load_nordland().summer[: a.images]]
    if a.threads is not None and not 1 <= a.threads <= 64:
        raise PlaceprintError(f"{prog}: --threads must be 1-64")
    d = registry.get(a.describer, **({} if a.threads is None else {"threads": a.threads}))
    t0 = time.perf_counter()
    if d.learns:
        d.fit(files)
    fit_s = time.perf_counter() - t0
    code_size = min(8, code_size_for_budget(len(files), 8.0))
    rows = []
    saved_cache = os.environ.get("PLACEPRINT_CACHE")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["PLACEPRINT_CACHE"] = str(Path(tmp) / "plain")
            plain = _timed_build(
                lambda dd, ff: describe_files(dd, ff, progress=False, cache=False),
                lambda codec, X: codec.encode(X),
                d, files, code_size,
            )  # fmt: skip
            rows.append({"path": "one process", "workers": 0, "startup_s": 0.0, **plain})
            for k in sizes:
                os.environ["PLACEPRINT_CACHE"] = str(Path(tmp) / f"dask{k}")  # an empty cache
                t0 = time.perf_counter()
                with DaskRunner(workers=k, shard_size=a.shard_size, quiet=True) as runner:
                    startup = time.perf_counter() - t0
                    row = _timed_build(runner.describe, runner.encode, d, files, code_size)
                row["identical_codes"] = bool(np.array_equal(row["codes"], plain["codes"]))
                rows.append({"path": f"Dask, {k} worker(s)", "workers": k, "startup_s": startup,
                             **row})  # fmt: skip
                if not a.quiet:
                    print(f"{k} worker(s): {row['images_per_s']:.1f} images/s", flush=True)
    finally:
        if saved_cache is None:
            os.environ.pop("PLACEPRINT_CACHE", None)
        else:
            os.environ["PLACEPRINT_CACHE"] = saved_cache
    serving = None
    if a.query_shards:
        serving = _serving(a)
    for r in rows:
        for key in ("codes", "X", "codec"):
            r.pop(key)
    base = rows[0]
    by_workers = {r["workers"]: r for r in rows}
    print_table(
        f"Describe + encode, {len(files)} Nordland frames, {a.describer}"
        + (f" ({d.threads} thread(s) a process)" if hasattr(d, "threads") else "")
        + f" (fit {fit_s:.0f} s before, the same for every row)",
        ["path", "images/s", "describe s", "encode s", "cluster start s", "vs one process",
         "same codes"],
        [[r["path"], r["images_per_s"], r["describe_s"], r["encode_s"], r["startup_s"],
          r["images_per_s"] / base["images_per_s"], r.get("identical_codes", True)]
         for r in rows],
    )  # fmt: skip
    best = max(r["images_per_s"] for r in rows)
    per_core = best / (os.cpu_count() or 1)
    projection = [
        {
            "places": n,
            "cpu_hours": n / per_core / 3600,
            "hours_on_100_cores": n / per_core / 100 / 3600,
            "hours_on_1000_cores": n / per_core / 1000 / 3600,
            "index_gb_at_8_bytes": n * 8 / 1e9,
        }
        for n in SCALES
    ]
    print_table(
        f"Projection from {per_core:.1f} images/s a core (measured here)",
        ["places", "CPU hours", "hours on 100 cores", "hours on 1,000 cores", "index GB"],
        [[r["places"], r["cpu_hours"], r["hours_on_100_cores"], r["hours_on_1000_cores"],
          r["index_gb_at_8_bytes"]] for r in projection],
    )  # fmt: skip
    two, one = by_workers.get(2), by_workers.get(1)
    out = {
        **run_metadata(prog, argv),
        "images": len(files),
        "describer": a.describer,
        "describer_threads": getattr(d, "threads", None),
        "fit_seconds": fit_s,
        "rows": rows,
        "speedup_2_workers_vs_one_process": (
            two["images_per_s"] / base["images_per_s"] if two else None
        ),
        "speedup_2_workers_vs_1_worker": (
            two["images_per_s"] / one["images_per_s"] if two and one else None
        ),
        "overhead_2_workers_vs_plain": (
            (two["seconds"] + two["startup_s"]) / base["seconds"] - 1 if two else None
        ),
        "images_per_s_per_core": per_core,
        "projection": projection,
        "serving": serving,
    }
    return finish(out, a.json)


def _serving(a) -> dict:
    """The query side (:mod:`placeprint.evaluate.shard_serving`) on the headline's route,
    describer, codec and matcher settings (``--settings``), with its table."""
    from placeprint.evaluate.bench import _route_for, _settings
    from placeprint.evaluate.report import print_table
    from placeprint.evaluate.shard_serving import shard_serving
    from placeprint.evaluate.validate import fit_codec

    settings = _settings(a.settings)
    route = _route_for(settings, a.quiet)
    tune = np.arange(route.tune_rows)
    codec = fit_codec(route, tune, a.code_size, **(settings or {}).get("codec", {}))
    L = a.query_length
    test = route.subsets()["test"]
    ends = np.array([e for e in range(L - 1, len(test), 25) if test[e - L + 1 : e + 1].all()])
    if len(ends) == 0:
        raise PlaceprintError(f"no test window of {L} frames on this route")
    res = shard_serving(
        codec, route.database, route.queries, ends, L, a.query_shards, a.shard_places,
        source_rows=tune, matcher_options=(settings or {}).get("matcher", {}), quiet=a.quiet,
    )  # fmt: skip
    res["describer"] = route.describer
    from placeprint.evaluate.bench import DEFAULT_SETTINGS

    res["settings"] = (
        "library defaults" if settings is None else str(a.settings or DEFAULT_SETTINGS)
    )
    print_table(
        f"Serving shards of {a.shard_places:,} places ({res['bytes_per_place']:.2f} B/place, "
        f"{res['rss_mb_per_loaded_shard']:.0f} MiB loaded; {res['shards_one_machine_serves']} "
        f"fit in 75 % of this machine's {res['machine_memory_gb']:.0f} GB): {len(ends)} "
        f"winter test windows of {L} frames, one thread, the headline's settings",
        ["shards", "places", "ms p50", "ms p95", "R@1"],
        [[r["shards"], r["places"], r["ms_p50"], r["ms_p95"], r["r1"]] for r in res["rows"]],
    )
    return res

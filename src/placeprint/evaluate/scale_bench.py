"""Route recognition among millions of places: real queries in a synthetic haystack.

``distractor_experiment`` puts the real database (Nordland summer) at a random,
seeded offset inside a synthetic route of ``n`` places fitted to it
(:class:`~placeprint.datasets.synthetic.RouteGenerator`), builds one compact index
file, loads it memory-mapped and matches the real winter windows against it.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from placeprint.evaluate.harness import run_windows
from placeprint.evaluate.pipeline import Pipeline, RealRoute, fit_pipeline
from placeprint.evaluate.report import peak_rss_mb
from placeprint.index import OverloadedIndex
from placeprint.index.bitpack import codes_to_int
from placeprint.sequence.matcher import DEFAULT_VELOCITIES, SequenceMatcher

CHUNK = 1 << 18

# Operating points for the recall-vs-work curve (the default matcher is the first).
CURVE_POINTS: dict[str, dict] = {
    "default (1200 probes a query)": {},
    "600 probes a query": {"probe_budget": 600},
    "900 probes a query": {"probe_budget": 900},
    "1600 probes a query": {"probe_budget": 1600},
    "2400 probes a query": {"probe_budget": 2400},
    "narrow cascade": {"anchor_budget": 38400, "local_budget": 4800},
    "wide cascade": {"anchor_budget": 153600, "local_budget": 19200},
}


def build_haystack(
    pipe: Pipeline,
    n_distractors: int,
    seed: int,
    path: Path,
    progress=None,
    insert_real: bool = True,
    query_model: str = "regression",
) -> dict:
    """Generate ``n_distractors`` places around the real database and save the index.

    Returns timings, the insertion offset, sizes and peak memory. The distractor
    route is made and encoded one chunk at a time (never all floats in memory).
    """
    from placeprint.datasets.synthetic import RouteGenerator

    Zdb, Zq = pipe.projected(pipe.database), pipe.projected(pipe.queries)
    gen = RouteGenerator(seed=seed, query_model=query_model).fit(Zdb, Zq)
    rng = np.random.default_rng(seed)
    offset = int(rng.integers(0, n_distractors + 1)) if insert_real else -1
    index = OverloadedIndex(
        pipe.codec, describer={"name": "seqslam+pca", "dims": pipe.database.shape[1]}
    )
    generate_s = 0.0
    t_start = time.perf_counter()
    real_codes = pipe.codec.encode(pipe.database)
    done = 0
    if n_distractors == 0:
        if not insert_real:
            raise ValueError("a synthetic-only haystack needs n_distractors > 0")
        index.add_codes(real_codes)
    else:
        stream = gen.database(n_distractors, chunk=CHUNK)
        while True:
            t0 = time.perf_counter()
            chunk = next(stream, None)
            generate_s += time.perf_counter() - t0
            if chunk is None:
                break
            codes = pipe.codec.quantize(chunk)  # generated in the projected space
            if done <= offset < done + len(chunk):
                a = offset - done
                index.add_codes(codes[:a])
                index.add_codes(real_codes)
                index.add_codes(codes[a:])
            else:
                index.add_codes(codes)
            done += len(chunk)
            if progress:
                progress(len(chunk))
        if insert_real and offset == n_distractors:
            index.add_codes(real_codes)
    index.build()
    size = index.save(path)
    total_s = time.perf_counter() - t_start
    return {
        "offset": offset,
        "generator": gen,
        "places": index.ntotal,
        "generate_seconds": generate_s,
        "build_seconds": total_s - generate_s,
        "index_file_bytes": size,
        "peak_rss_mb": peak_rss_mb(),
        "bytes_per_place": index.bytes_per_place(),
        "bytes": index.nbytes(),
        "info": index.info(),
    }


def distractor_experiment(
    route: RealRoute,
    n_distractors: int,
    lengths=(1, 10, 25, 50, 100),
    stride: int = 5,
    seed: int = 0,
    code_size: int = 7,
    curve: bool = True,
    ceiling_queries: int = 0,
    settings: dict | None = None,
    quiet: bool = False,
    workdir: str | Path | None = None,
) -> dict:
    """Real queries against the real database hidden in ``n_distractors`` synthetic places."""
    from rich.progress import Progress

    pipe = fit_pipeline(route, code_size=code_size)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = Path(tmp) / "haystack.ppidx"
        with Progress(disable=quiet, transient=True) as bar:
            task = bar.add_task(f"indexing {n_distractors:,} distractors", total=n_distractors)
            built = build_haystack(pipe, n_distractors, seed, path, lambda n: bar.advance(task, n))
        t0 = time.perf_counter()
        index = OverloadedIndex.load(path)
        load_s = time.perf_counter() - t0
        offset = built["offset"]
        truth = offset + np.arange(len(route.queries))
        subsets = route.subsets()
        matcher = SequenceMatcher(index, **(settings or {}))
        per_length = []
        with Progress(disable=quiet, transient=True) as bar:
            task = bar.add_task("matching winter sequences", total=None)
            for L in lengths:
                res = run_windows(
                    matcher.match,
                    pipe.queries,
                    truth,
                    L,
                    stride,
                    progress=lambda n: bar.advance(task, n),
                )
                summary = res.summary(truth, subsets)
                summary.update(baseline_ratios(L, index.ntotal, summary["ops_mean"]))
                summary["encode_multiply_adds"] = matcher.encode_ops(L)
                summary["confidence_median"] = (
                    float(np.median(res.confidence[np.isfinite(res.confidence)]))
                    if np.isfinite(res.confidence).any()
                    else None
                )
                per_length.append(summary)
        curve_rows = []
        if curve:
            for name, options in CURVE_POINTS.items():
                m = SequenceMatcher(index, **{**(settings or {}), **options})
                for L in (50, 100):
                    if L > len(route.queries):
                        continue
                    res = run_windows(m.match, pipe.queries, truth, L, stride)
                    row = res.summary(truth, subsets)
                    curve_rows.append({"point": name, "settings": options, **row})
        ceiling = []
        if ceiling_queries:
            ceiling = exhaustive_ceiling(index, pipe, truth, subsets, ceiling_queries, quiet)
    gen = built.pop("generator")
    return {
        "route": route.name,
        "n_distractors": n_distractors,
        "places": built["places"],
        "real_places": len(route.database),
        "offset": offset,
        "descriptor_dims": pipe.database.shape[1],
        "code_size": code_size,
        "load_seconds": load_s,
        **{k: v for k, v in built.items() if k not in ("offset", "places")},
        "matcher": {**matcher.settings.__dict__, "velocities": list(matcher.settings.velocities)},
        "lengths": per_length,
        "curve": curve_rows,
        "ceiling": ceiling,
        "generator_stats": _short_stats(gen),
    }


def baseline_ratios(length: int, n_places: int, ops_mean: float) -> dict:
    """Brute-force SeqSLAM's work on the same map, ``L x N`` distance evaluations, and the
    ratio to ``ops_mean``; the ``L x N x V`` variant (velocities) is stated beside it."""
    brute = length * n_places
    v = len(DEFAULT_VELOCITIES)
    return {
        "baseline_ops": brute,
        "baseline_ops_ratio": brute / max(ops_mean, 1.0),
        "baseline_ops_x_velocities": brute * v,
        "baseline_ops_ratio_x_velocities": brute * v / max(ops_mean, 1.0),
    }


def _short_stats(gen) -> dict:
    stats = gen.stats()
    return {k: v for k, v in stats.items() if k != "variance_spectrum"}


def exhaustive_ceiling(index, pipe, truth, subsets, n_queries, quiet) -> list[dict]:
    """Exhaustive search on the same codes for a few test windows (the index's ceiling)."""
    from placeprint.evaluate.exhaustive import exhaustive_best

    db = index.reconstruct_int()
    q_all = codes_to_int(pipe.codec.encode(pipe.queries))
    test = np.flatnonzero(subsets["test"])
    rows = []
    for L in (25, 50, 100):
        ends = test[test >= L - 1]
        ends = ends[np.linspace(0, len(ends) - 1, min(n_queries, len(ends))).astype(int)]
        ok = []
        for q in ends:
            e, _ = exhaustive_best(db, q_all[q - L + 1 : q + 1], DEFAULT_VELOCITIES)
            ok.append(abs(e - truth[q]) <= 2)
        rows.append(
            {
                "length": L,
                "queries": len(ends),
                "r1_test": float(np.mean(ok)),
                "ops": L * len(db) * len(DEFAULT_VELOCITIES),
            }
        )
    return rows


def synthetic_experiment(
    route: RealRoute,
    n_places: int,
    lengths=(10, 25, 50, 100),
    n_queries: int = 200,
    seed: int = 0,
    code_size: int = 7,
    query_model: str = "additive",
    quiet: bool = False,
    workdir: str | Path | None = None,
) -> dict:
    """A synthetic route of ``n_places`` (fitted to ``route``) queried by its own synthetic
    queries (database + bias + change, correlated along the route): the scale test of
    the paper. Synthetic change is easier than real change; see the headline for real
    queries."""
    from rich.progress import Progress

    pipe = fit_pipeline(route, code_size=code_size)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = Path(tmp) / "synthetic.ppidx"
        with Progress(disable=quiet, transient=True) as bar:
            task = bar.add_task(f"indexing {n_places:,} synthetic places", total=n_places)
            built = build_haystack(
                pipe,
                n_places,
                seed,
                path,
                lambda n: bar.advance(task, n),
                insert_real=False,
                query_model=query_model,
            )
        index = OverloadedIndex.load(path)
        gen = built.pop("generator")
        matcher = SequenceMatcher(index)
        rng = np.random.default_rng(seed + 1)
        max_l = max(lengths)
        ends = np.sort(rng.integers(max_l, n_places, size=n_queries))
        agreement = _bit_agreement(pipe, gen, ends)
        per_length = []
        for L in lengths:
            correct, ops, secs = [], [], []
            for q in ends:
                Z = gen.queries(np.arange(q - L + 1, q + 1))  # generated in the projected space
                t0 = time.perf_counter()
                r = matcher.match_projected(Z)
                secs.append(time.perf_counter() - t0)
                correct.append(abs(r.best - q) <= 2)
                ops.append(r.ops)
            per_length.append(
                {
                    "length": L,
                    "queries": len(ends),
                    "r1": float(np.mean(correct)),
                    "ops_mean": float(np.mean(ops)),
                    "latency_ms_p50": float(np.median(secs) * 1000),
                    "latency_ms_p95": float(np.percentile(secs, 95) * 1000),
                    **baseline_ratios(L, index.ntotal, float(np.mean(ops))),
                }
            )
    return {
        "route": f"synthetic route fitted to {route.name}",
        "places": built["places"],
        **{k: v for k, v in built.items() if k not in ("offset", "places")},
        "query_model": query_model,
        "code_bit_agreement": agreement,
        "lengths": per_length,
        "generator_stats": _short_stats(gen),
    }


def _bit_agreement(pipe: Pipeline, gen, positions: np.ndarray) -> dict:
    """Share of code bits equal between query and database: synthetic vs real test frames."""

    def share(a, b):
        bits = lambda z: np.unpackbits(pipe.codec.quantize(z), axis=1, bitorder="little")  # noqa: E731
        return float((bits(a) == bits(b)).mean())

    real = np.arange(len(pipe.database))[-500:]
    return {
        "synthetic": share(gen.database_rows(positions), gen.queries(positions)),
        "real": share(pipe.projected(pipe.database[real]), pipe.projected(pipe.queries[real])),
    }

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

from placeprint.errors import PlaceprintError
from placeprint.evaluate.harness import run_windows
from placeprint.evaluate.key_hits import true_hit_share
from placeprint.evaluate.pipeline import Pipeline, RealRoute, fit_pipeline
from placeprint.evaluate.recall import window_mask
from placeprint.evaluate.report import peak_rss_mb
from placeprint.index import OverloadedIndex
from placeprint.index.bitpack import codes_to_int
from placeprint.sequence.matcher import DEFAULT_VELOCITIES, SequenceMatcher

CHUNK = 1 << 18

DISTRACTOR_MODELS = ("segments", "gaussian")


def fit_distractors(
    pipe: Pipeline,
    model: str,
    seed: int,
    source_rows: np.ndarray,
    query_model: str = "regression",
):
    """A distractor generator in the codec's projected space, fitted to the real route.

    ``segments`` (default): real segments of the database rows ``source_rows`` (tuning
    places only), re-timed, stepped within their neighbourhood and turned
    (:class:`~placeprint.datasets.distractors.SegmentRouteGenerator`): as confusable as
    real places. ``gaussian``: the older Gaussian route model fitted on mean, variance
    and correlation (far easier; kept for comparison and for synthetic queries).
    """
    Zdb = pipe.projected(pipe.database)
    if model == "segments":
        from placeprint.datasets.distractors import SegmentRouteGenerator

        return SegmentRouteGenerator(seed=seed).fit(Zdb[np.asarray(source_rows)])
    if model == "gaussian":
        from placeprint.datasets.synthetic import RouteGenerator

        Zq = pipe.projected(pipe.queries)
        return RouteGenerator(seed=seed, query_model=query_model).fit(Zdb, Zq)
    raise PlaceprintError(f"unknown distractor model {model!r}: use {', '.join(DISTRACTOR_MODELS)}")


def build_haystack(
    pipe: Pipeline,
    n_distractors: int,
    seed: int,
    path: Path,
    progress=None,
    insert_real: bool = True,
    gen=None,
    describer: dict | None = None,
    bucket_size: float | None = None,
) -> dict:
    """Generate ``n_distractors`` places around the real database and save the index.

    ``gen`` is a fitted generator (:func:`fit_distractors`; default: the Gaussian model).
    Returns timings, the insertion offset, sizes and peak memory. The distractor route
    is made and encoded one chunk at a time (never all floats in memory).
    """
    if gen is None:
        gen = fit_distractors(pipe, "gaussian", seed, np.arange(len(pipe.database)))
    rng = np.random.default_rng(seed)
    offset = int(rng.integers(0, n_distractors + 1)) if insert_real else -1
    index = OverloadedIndex(pipe.codec, bucket_size=bucket_size, describer=describer or {})
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
    distractors: str = "segments",
    quiet: bool = False,
    workdir: str | Path | None = None,
) -> dict:
    """Real queries against the real database hidden in ``n_distractors`` synthetic places.

    ``settings``: ``{"codec": {...}, "matcher": {...}}`` as chosen by
    :func:`~placeprint.evaluate.validate.validate` (defaults when ``None``). The codec
    learns from the pairs of the tuning frames and the distractors are made from the
    tuning places only; recall is reported on the test frames and on all frames.
    """
    from placeprint.evaluate.validate import fit_codec
    from placeprint.progress import progress_bar

    settings = settings or {}
    matcher_options = dict(settings.get("matcher", {}))
    tune_rows = np.arange(route.tune_rows)
    codec = fit_codec(route, tune_rows, code_size, **settings.get("codec", {}))
    pipe = Pipeline(codec, route.database, route.queries)
    gen = fit_distractors(pipe, distractors, seed, tune_rows)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = Path(tmp) / "haystack.ppidx"
        with progress_bar(quiet) as bar:
            task = bar.add_task(f"indexing {n_distractors:,} distractors", total=n_distractors)
            built = build_haystack(
                pipe,
                n_distractors,
                seed,
                path,
                lambda n: bar.advance(task, n),
                gen=gen,
                describer=route.describer,
            )
        t0 = time.perf_counter()
        index = OverloadedIndex.load(path)
        load_s = time.perf_counter() - t0
        offset = built["offset"]
        truth = offset + np.arange(len(route.queries))
        subsets = route.subsets()
        matcher = SequenceMatcher(index, **matcher_options)
        real_range = (offset, offset + len(route.queries))
        per_length = []
        with progress_bar(quiet) as bar:
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
                summary["true_hits_test"] = true_hit_share(
                    matcher, pipe.queries, truth, _test_ends(res, subsets), L
                )
                summary["wrong_answers"] = wrong_answer_landing(
                    res, truth, real_range, index.ntotal, subsets["test"]
                )
                summary["confidence_median"] = (
                    float(np.median(res.confidence[np.isfinite(res.confidence)]))
                    if np.isfinite(res.confidence).any()
                    else None
                )
                per_length.append(summary)
        curve_rows = []
        if curve:
            for name, options in curve_points(matcher_options).items():
                m = SequenceMatcher(index, **{**matcher_options, **options})
                for L in (25, 50, 100):
                    if L > len(route.queries):
                        continue
                    res = run_windows(m.match, pipe.queries, truth, L, stride)
                    row = res.summary(truth, subsets)
                    row["true_hits_test"] = true_hit_share(
                        m, pipe.queries, truth, _test_ends(res, subsets), L
                    )
                    curve_rows.append({"point": name, "settings": options, **row})
        ceiling = []
        if ceiling_queries:
            ceiling = exhaustive_ceiling(index, pipe, truth, subsets, ceiling_queries, quiet)
    built.pop("generator")
    return {
        "route": route.name,
        "describer": route.describer,
        "n_distractors": n_distractors,
        "distractor_model": distractors,
        "places": built["places"],
        "real_places": len(route.database),
        "offset": offset,
        "descriptor_dims": pipe.database.shape[1],
        "code_size": code_size,
        "codec": settings.get("codec", {}),
        "load_seconds": load_s,
        **{k: v for k, v in built.items() if k not in ("offset", "places")},
        "matcher": {**matcher.settings.__dict__, "velocities": list(matcher.settings.velocities)},
        "agreement": matcher.agreement,
        "lengths": per_length,
        "curve": curve_rows,
        "ceiling": ceiling,
        "distractor_realism": realism_report(pipe, gen, route, seed),
        "generator_stats": _short_stats(gen),
    }


def curve_points(matcher_options: dict) -> dict[str, dict]:
    """Operating points of the recall-vs-work curve around the chosen settings, and the
    chosen settings with crowded buckets skipped instead of narrowed (an ablation)."""
    from placeprint.sequence.matcher import MatcherSettings

    chosen = int(matcher_options.get("entry_budget", MatcherSettings.entry_budget))
    points = {"chosen (validate.py)": {}}
    for factor in (0.25, 0.5, 2.0, 4.0):
        budget = max(1, int(round(chosen * factor)))
        points[f"{budget} entries a query"] = {"entry_budget": budget}
    points["crowded buckets skipped (narrow_probes 0)"] = {"narrow_probes": 0}
    return points


def _test_ends(res, subsets: dict) -> np.ndarray:
    """End rows of the windows of ``res`` that lie wholly in the test frames."""
    return res.ends[window_mask(subsets["test"], res.ends, res.length)]


def wrong_answer_landing(
    res, truth: np.ndarray, real_range: tuple[int, int], n_places: int, mask, near: int = 50
) -> dict:
    """Where the wrong best answers of the ``mask`` windows land: real places or distractors.

    Answers within ``near`` places of the truth are near misses, not confusions, and are
    counted apart. Per place, a confusion should land on a wrong real place about as
    often as on a distractor if the distractors are as confusable as real places.
    """
    sel = window_mask(mask, res.ends, res.length)
    best = res.predicted[sel, 0]
    wrong = (best >= 0) & ~res.correct1[sel]
    miss = np.abs(best - truth[res.ends[sel]]) <= near
    confused = best[wrong & ~miss]
    lo, hi = real_range
    on_real = int(((confused >= lo) & (confused < hi)).sum())
    on_distractor = int(len(confused) - on_real)
    n_real, n_dis = hi - lo, n_places - (hi - lo)
    per_real = on_real / n_real
    per_dis = on_distractor / n_dis if n_dis else None
    return {
        "wrong": int(wrong.sum()),
        "near_misses": int((wrong & miss).sum()),
        "confusions_on_real": on_real,
        "confusions_on_distractors": on_distractor,
        "per_real_place": per_real,
        "per_distractor_place": per_dis,
        "real_over_distractor": (per_real / per_dis) if per_dis else None,
    }


def realism_report(pipe: Pipeline, gen, route: RealRoute, seed: int, sample: int = 100_000):
    """:func:`~placeprint.evaluate.realism.distractor_realism` of winter test queries."""
    from placeprint.evaluate.realism import distractor_realism

    rng = np.random.default_rng(seed + 7)
    positions = np.sort(rng.choice(10 * sample, size=sample, replace=False))
    dis_rows = gen.database_rows(positions)
    test = np.flatnonzero(route.subsets()["test"])
    tune = np.arange(route.tune_rows)
    return distractor_realism(
        pipe.codec.encode(route.queries[test]),
        test,
        pipe.codec.encode(route.database),
        pipe.codec.quantize(dis_rows),
        real_rows=pipe.projected(route.database[tune]),
        distractor_rows=dis_rows,
    )


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
        ends = test[test - L + 1 >= test.min()]  # windows wholly inside the test frames
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
    from placeprint.progress import progress_bar

    pipe = fit_pipeline(route, code_size=code_size)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = Path(tmp) / "synthetic.ppidx"
        with progress_bar(quiet) as bar:
            task = bar.add_task(f"indexing {n_places:,} synthetic places", total=n_places)
            gen = fit_distractors(
                pipe, "gaussian", seed, np.arange(len(pipe.database)), query_model
            )
            built = build_haystack(
                pipe, n_places, seed, path, lambda n: bar.advance(task, n), False, gen
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

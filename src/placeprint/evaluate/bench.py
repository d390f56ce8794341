"""The route benchmarks: headline, validation, scaling, Nordland, synthetic.

Each prints a table, writes JSON (command, commit, machine, date) when given ``--json``
and PNG plots when given ``--plots``; see :mod:`placeprint.evaluate.registry`.
"""

from __future__ import annotations

from pathlib import Path

from placeprint.errors import PlaceprintError
from placeprint.evaluate.benchargs import Parser as _Parser
from placeprint.evaluate.benchargs import describer_options as _describer_options
from placeprint.evaluate.benchargs import finish as _finish
from placeprint.evaluate.benchargs import load_route as _load_route
from placeprint.evaluate.benchargs import parse_lengths as _lengths
from placeprint.evaluate.report import print_table, run_metadata, save_figure

LENGTHS = (1, 10, 25, 50, 100)
DEFAULT_SETTINGS = Path("benchmarks/results/validation.json")
OPS_DEFINITION = (
    "one op = one key or key-bit reliability computed, one bit ranked or probe pushed/popped "
    "in probe generation, one bitmap test of a probed bucket, one bucket-offset read, one "
    "binary-search step inside a crowded bucket, one bucket entry read, one hit entered in "
    "the diagonal vote table, one element sorted/selected/de-duplicated, one comparison of "
    "two codes; the projection of the raw query descriptors (L x d x n_dims multiply-adds) "
    "is timed but reported separately as encode_multiply_adds (docs/accounting.md)"
)


def _route_for(settings, quiet: bool, describer=None, options=None):
    """Nordland described by ``describer`` (default: the one the settings were chosen for)."""
    name = describer or (settings or {}).get("describer_name", "seqslam")
    if options is None:
        options = (settings or {}).get("describer_options", {}) if not describer else {}
    return _load_route(quiet, name, options)


def _settings(text: str | None) -> dict | None:
    """Validation settings: a file from benchmarks/validate.py, or 'defaults'."""
    if text == "defaults":
        return None
    from placeprint.evaluate.validate import load_settings

    return load_settings(text or DEFAULT_SETTINGS)


# ------------------------------------------------------------------ headline
def headline_main(argv: list[str], prog: str = "benchmarks/headline.py") -> dict:
    """Nordland in N distractors: the headline table and JSON, settings from validate.py."""
    p = _Parser(prog=prog, description=headline_main.__doc__)
    p.add_argument("--distractors", type=int, default=10_000_000)
    p.add_argument(
        "--distractor-model",
        choices=("segments", "gaussian"),
        default="segments",
        help="segments: real tuning segments, as confusable as real places (default)",
    )
    p.add_argument(
        "--describer", default=None, help="describer of the frames (default: the settings')"
    )
    p.add_argument("--describer-options", type=_describer_options, default=None, help="JSON")
    p.add_argument(
        "--settings",
        default=None,
        help=f"validation settings (default {DEFAULT_SETTINGS}); 'defaults' for library defaults",
    )
    p.add_argument("--json", type=Path, default=None, help="output JSON (default: none)")
    p.add_argument("--plots", type=Path, default=None, help="folder for PNG plots (default: none)")
    p.add_argument("--lengths", type=_lengths, default=LENGTHS)
    p.add_argument("--stride", type=int, default=5, help="end frames every STRIDE frames")
    p.add_argument("--code-size", type=int, default=7)
    p.add_argument(
        "--ceiling-queries",
        type=int,
        default=0,
        help="windows per length for exhaustive search on the same codes",
    )
    p.add_argument("--no-curve", action="store_true", help="skip the recall-vs-work curve")
    p.add_argument(
        "--peer-distractors",
        type=int,
        default=1_000_000,
        help="map size of the peer table (faiss peers, same data, same run); 0 skips it",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    if a.distractors < 0 or a.stride < 1 or a.peer_distractors < 0:
        raise PlaceprintError(
            f"{prog}: --distractors and --peer-distractors must be >= 0, --stride >= 1"
        )
    settings = _settings(a.settings)
    from placeprint.evaluate.scale_bench import distractor_experiment

    route = _route_for(settings, a.quiet, a.describer, a.describer_options)
    res = distractor_experiment(
        route,
        a.distractors,
        a.lengths,
        a.stride,
        a.seed,
        a.code_size,
        curve=not a.no_curve,
        ceiling_queries=a.ceiling_queries,
        settings=settings,
        distractors=a.distractor_model,
        quiet=a.quiet,
    )
    res["settings_source"] = (
        "library defaults" if settings is None else str(a.settings or DEFAULT_SETTINGS)
    )
    res["validation"] = (
        None
        if settings is None
        else {
            k: settings.get(k)
            for k in ("validation_recall_at_1", "validation_ops", "n_distractors")
        }
    )
    res["describe_ms_per_image"] = route.describe_ms_per_image
    res["peers"] = None
    if a.peer_distractors:
        from placeprint.evaluate.peers import peer_table

        res["peers"] = peer_table(
            route,
            settings or {},
            a.peer_distractors,
            lengths=tuple(L for L in (50, 100) if L in a.lengths) or (max(a.lengths),),
            stride=a.stride,
            seed=a.seed,
            say=(lambda text: None) if a.quiet else print,
        )
    out = headline_json(res, run_metadata(prog, argv))
    print_headline(out)
    out["plots"] = [
        str(x)
        for x in (plot_headline(out, a.plots, f"headline_{a.distractors}") if a.plots else [])
    ]
    return _finish(out, a.json)


def validate_main(argv: list[str], prog: str = "benchmarks/validate.py") -> dict:
    """Choose codec and matcher settings on route-blocked folds of frames <= 20000."""
    from placeprint.evaluate.validate import CODEC_GRID, MATCHER_GRID, OPS_BUDGET, validate

    p = _Parser(prog=prog, description=validate_main.__doc__)
    p.add_argument("--distractors", type=int, default=1_000_000)
    p.add_argument("--distractor-model", choices=("segments", "gaussian"), default="segments")
    p.add_argument("--describer", default="seqslam", help="one or more, comma-separated")
    p.add_argument("--describer-options", type=_describer_options, default={}, help="JSON")
    p.add_argument(
        "--matcher-distractors",
        type=int,
        default=10_000_000,
        help="map size for the matcher stage (the headline's: budgets depend on it)",
    )
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--stride", type=int, default=5)
    p.add_argument("--ops-budget", type=float, default=OPS_BUDGET, help="ops at L=100, at most")
    p.add_argument("--quick", action="store_true", help="one codec and two matcher candidates")
    p.add_argument("--codec-grid", type=_describer_options, default=None, help="JSON grid")
    p.add_argument("--matcher-grid", type=_describer_options, default=None, help="JSON grid")
    p.add_argument("--json", type=Path, default=None, help="write the chosen settings here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    if a.distractors < 1 or a.folds < 2 or a.stride < 1:
        raise PlaceprintError(f"{prog}: need --distractors >= 1, --folds >= 2, --stride >= 1")
    codec_grid, matcher_grid = CODEC_GRID, MATCHER_GRID
    if a.quick:
        codec_grid = {"pca_dims": (128,), "regularisation": (0.1,)}
        matcher_grid = {"entry_budget": (6000, 10000)}
    codec_grid = a.codec_grid or codec_grid
    matcher_grid = a.matcher_grid or matcher_grid
    names = a.describer.split(",")
    if len(names) > 1 and a.describer_options:
        raise PlaceprintError(f"{prog}: --describer-options needs a single --describer")
    res, route = None, None
    for name in names:
        candidate = _load_route(a.quiet, name, a.describer_options)
        found = validate(
            candidate,
            a.distractors,
            a.folds,
            matcher_distractors=a.matcher_distractors,
            stride=a.stride,
            seed=a.seed,
            codec_grid=codec_grid,
            matcher_grid=matcher_grid,
            ops_budget=a.ops_budget,
            distractors=a.distractor_model,
            progress=None if a.quiet else print,
        )
        score = sum(found["validation_recall_at_1"].values())
        if not a.quiet:
            print(f"describer {name}: validation R@1 {found['validation_recall_at_1']}")
        if res is None or score > sum(res["validation_recall_at_1"].values()):
            res, route = found, candidate
            res["describer_name"], res["describer_options"] = name, a.describer_options
    out = {**run_metadata(prog, argv), "describer": route.describer, **res}
    print_table(
        "Validation (frames <= 20000, route-blocked folds): chosen settings",
        ["stage", "settings", *[f"R@1 L={L}" for L in res["validation_recall_at_1"]], "ops L=100"],
        [
            [
                c["stage"],
                str(c.get("codec") or c.get("matcher")),
                *[c["scores"][L]["r1"] for L in res["validation_recall_at_1"]],
                c["scores"][max(c["scores"], key=int)]["ops"],
            ]
            for c in res["candidates"]
        ],
    )
    print(f"chosen: codec {res['codec']}, matcher {res['matcher']}")
    return _finish(out, a.json)


def headline_json(res: dict, meta: dict) -> dict:
    """The headline JSON: required keys first (by L), then everything measured."""
    by_l = {str(r["length"]): r for r in res["lengths"]}
    pick = lambda key: {L: r.get(key) for L, r in by_l.items()}  # noqa: E731
    return {
        **meta,
        "route": res["route"],
        "places": res["places"],
        "bytes_per_place": res["bytes_per_place"],
        "recall_subset": "winter frames 20010-25000 (never used for tuning); *_all: all frames",
        "recall_at_1": pick("r1_test"),
        "recall_at_5": pick("r5_test"),
        "recall_at_1_test_nondark": pick("r1_test_nondark"),
        "recall_at_1_all": pick("r1_all"),
        "recall_at_1_all_nondark": pick("r1_all_nondark"),
        "recall_at_5_all": pick("r5_all"),
        "recall_at_full_precision": pick("recall_at_full_precision"),
        "answered_at_confidence_2": pick("answered_at_conf2"),
        "precision_at_confidence_2": pick("precision_at_conf2"),
        "ops_per_query": pick("ops_mean"),
        "latency_ms_p50": pick("latency_ms_p50"),
        "latency_ms_p95": pick("latency_ms_p95"),
        "baseline_ops_ratio": pick("baseline_ops_ratio"),
        "ops_definition": OPS_DEFINITION,
        "ops_breakdown": pick("work_mean"),
        "encode_multiply_adds": pick("encode_multiply_adds"),
        "baseline_ops_ratio_x_velocities": pick("baseline_ops_ratio_x_velocities"),
        "describer": res["describer"],
        "describe_ms_per_image": res.get("describe_ms_per_image"),
        "distractor_model": res["distractor_model"],
        "distractor_realism": res["distractor_realism"],
        "wrong_answers": pick("wrong_answers"),
        "settings_source": res.get("settings_source"),
        "validation_recall_at_1": (res.get("validation") or {}).get("validation_recall_at_1"),
        "build_seconds": res["build_seconds"],
        "generate_seconds": res["generate_seconds"],
        "peak_rss_mb": res["peak_rss_mb"],
        "index_file_bytes": res["index_file_bytes"],
        "peers": res.get("peers"),
        "details": {k: v for k, v in res.items() if k != "peers"},
    }


def print_headline(out: dict) -> None:
    rows = []
    for r in out["details"]["lengths"]:
        rows.append(
            [
                r["length"],
                r.get("r1_test"),
                r.get("r5_test"),
                r.get("r1_test_nondark"),
                r.get("r1_all"),
                r.get("recall_at_full_precision"),
                r.get("precision_at_conf2"),
                r["ops_mean"],
                r["baseline_ops_ratio"],
                r["latency_ms_p50"],
                r["latency_ms_p95"],
            ]
        )
    print_table(
        f"{out['route']} in {out['places']:,} places: {out['bytes_per_place']:.3f} B/place "
        f"all-in, file {out['index_file_bytes']:,} B, build {out['build_seconds']:.1f} s "
        f"(+{out['generate_seconds']:.1f} s generating), peak RSS {out['peak_rss_mb']:.0f} MiB",
        [
            "L",
            "R@1 test",
            "R@5 test",
            "R@1 test non-dark",
            "R@1 all",
            "R at 100% P",
            "P at conf>=2",
            "ops/query",
            "x fewer than SeqSLAM",
            "ms p50",
            "ms p95",
        ],
        rows,
    )
    print(
        "R at 100% P: the share of queries answered, most confident first, before the first "
        "wrong answer; P at conf>=2: how often an answer with confidence >= 2 is right."
    )
    real = out["distractor_realism"]
    print_table(
        f"Distractors ({out['distractor_model']}) against wrong real places, winter test queries",
        ["bits", "P real", "P distractor", "distractor / real"],
        [[r, v["p_real"], v["p_distractor"], v["ratio"]] for r, v in real["radii"].items()],
    )
    curve = out["details"]["curve"]
    if curve:
        print_table(
            "Recall against work (same index)",
            [
                "operating point",
                "L",
                "R@1 test",
                "R@1 all",
                "ops/query",
                "ms p50",
                "frames with a true hit",
                "windows with none",
            ],
            [
                [
                    c["point"],
                    c["length"],
                    c.get("r1_test"),
                    c.get("r1_all"),
                    c["ops_mean"],
                    c["latency_ms_p50"],
                    (c.get("true_hits_test") or {}).get("frames_with_true_hit"),
                    (c.get("true_hits_test") or {}).get("windows_without_true_hit"),
                ]
                for c in curve
            ],
        )
    peers = out.get("peers")
    if peers:
        lengths = sorted(
            {L for row in peers["peers"].values() for L in row if L.isdigit()}, key=int
        )
        print_table(
            f"Peers on one map of {peers['places']:,} places (same projected data, same run; "
            "latency from raw descriptors, one thread except exhaustive)",
            [
                "method",
                "B/place",
                *[f"R@1 L={L}" for L in lengths],
                *[f"ms p50 L={L}" for L in lengths],
            ],
            [
                [
                    name,
                    row["bytes_per_place"],
                    *[row.get(L, {}).get("r1") for L in lengths],
                    *[row.get(L, {}).get("latency_ms_p50") for L in lengths],
                ]
                for name, row in peers["peers"].items()
            ],
        )
    ceiling = out["details"]["ceiling"]
    if ceiling:
        print_table(
            "Exhaustive search on the same codes (ceiling of any index on them)",
            ["L", "queries", "R@1 test", "ops/query"],
            [[c["length"], c["queries"], c["r1_test"], c["ops"]] for c in ceiling],
        )


def plot_headline(out: dict, folder: Path, stem: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    rows = out["details"]["lengths"]
    Ls = [r["length"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in [
        ("r1_test", "R@1 test frames"),
        ("r1_all", "R@1 all frames"),
        ("r5_test", "R@5 test frames"),
    ]:
        ax.plot(Ls, [r.get(key) for r in rows], marker="o", label=label)
    ax.set_xlabel("sequence length L (frames)")
    ax.set_ylabel("recall")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{out['route']} in {out['places']:,} places")
    ax.grid(alpha=0.3)
    ax.legend()
    paths.append(save_figure(fig, folder / f"{stem}_recall_vs_L.png"))
    curve = out["details"]["curve"]
    if curve:
        fig, ax = plt.subplots(figsize=(6, 4))
        for L in sorted({c["length"] for c in curve}):
            pts = sorted(
                (c["ops_mean"], c.get("r1_test"), c["point"])
                for c in curve
                if c["length"] == L and "narrow_probes" not in c.get("settings", {})
            )
            line = ax.plot([x[0] for x in pts], [x[1] for x in pts], marker="o", label=f"L={L}")
            for x, y, name in pts:
                if name.startswith("chosen"):
                    ax.annotate("chosen", (x, y), textcoords="offset points", xytext=(4, -10))
            skipped = [
                c for c in curve if c["length"] == L and "narrow_probes" in c.get("settings", {})
            ]
            for c in skipped:
                ax.plot(
                    c["ops_mean"],
                    c.get("r1_test"),
                    marker="x",
                    ms=9,
                    color=line[0].get_color(),
                    ls="none",
                    label=f"L={L}, crowded buckets skipped",
                )
        ax.axvline(37_000, color="grey", ls="--", lw=1)
        ax.annotate(
            "37K ops (paper)",
            (37_000, 0.03),
            textcoords="offset points",
            xytext=(3, 0),
            color="grey",
        )
        ax.set_xscale("log")
        ax.set_xlabel("operations per query (every step counted)")
        ax.set_ylabel("R@1 (test frames)")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend()
        paths.append(save_figure(fig, folder / f"{stem}_recall_vs_ops.png"))
    return paths


# ------------------------------------------------------------------ scaling
def scaling_main(argv: list[str], prog: str = "benchmarks/scaling.py") -> dict:
    """Bytes/place, ops/query and recall as the map grows (10K to 10M distractors)."""
    p = _Parser(prog=prog, description=scaling_main.__doc__)
    p.add_argument("--sizes", type=_lengths, default=(10_000, 100_000, 1_000_000, 10_000_000))
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--plots", type=Path, default=None, help="folder for PNG plots (default: none)")
    p.add_argument("--stride", type=int, default=5)
    p.add_argument("--settings", default=None, help=f"validation settings ({DEFAULT_SETTINGS})")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    settings = _settings(a.settings)
    from placeprint.evaluate.scale_bench import distractor_experiment

    route = _route_for(settings, a.quiet)
    rows = []
    for n in a.sizes:
        res = distractor_experiment(
            route, n, (50, 100), a.stride, curve=False, settings=settings, quiet=a.quiet
        )
        by = {r["length"]: r for r in res["lengths"]}
        rows.append(
            {
                "distractors": n,
                "places": res["places"],
                "bytes_per_place": res["bytes_per_place"],
                "key_bits": res["info"]["key_bits"],
                "index_file_bytes": res["index_file_bytes"],
                "build_seconds": res["build_seconds"],
                "peak_rss_mb": res["peak_rss_mb"],
                **{
                    f"{k}_L{L}": by[L].get(k)
                    for L in (50, 100)
                    for k in (
                        "r1_test",
                        "r1_all",
                        "ops_mean",
                        "latency_ms_p50",
                        "baseline_ops_ratio",
                    )
                },
            }
        )
    out = {**run_metadata(prog, argv), "rows": rows}
    print_table(
        "Scaling: storage and work as the map grows",
        [
            "places",
            "B/place",
            "key bits",
            "ops L=50",
            "ops L=100",
            "R@1 L=50",
            "R@1 L=100",
            "ms p50 L=100",
            "x fewer L=100",
        ],
        [
            [
                r["places"],
                r["bytes_per_place"],
                r["key_bits"],
                r["ops_mean_L50"],
                r["ops_mean_L100"],
                r["r1_test_L50"],
                r["r1_test_L100"],
                r["latency_ms_p50_L100"],
                r["baseline_ops_ratio_L100"],
            ]
            for r in rows
        ],
    )
    out["plots"] = [str(plot_scaling(rows, a.plots))] if a.plots else []
    return _finish(out, a.json)


def plot_scaling(rows: list[dict], folder: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["places"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].plot(n, [r["bytes_per_place"] for r in rows], marker="o")
    axes[0].set_ylabel("bytes per place (all-in)")
    for L in (50, 100):
        axes[1].plot(n, [r[f"ops_mean_L{L}"] for r in rows], marker="o", label=f"ops, L={L}")
    axes[1].plot(n, [100 * x for x in n], ls="--", color="grey", label="brute force, L=100 (L x N)")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("operations per query")
    axes[1].legend()
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("places in the index")
        ax.grid(alpha=0.3)
    return save_figure(fig, folder / "scaling.png")


# ------------------------------------------------------------------ nordland
def nordland_main(argv: list[str], prog: str = "benchmarks/nordland.py") -> dict:
    """Real Nordland (2,500 places): the compact index beside every baseline."""
    p = _Parser(prog=prog, description=nordland_main.__doc__)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--plots", type=Path, default=None, help="folder for PNG plots (default: none)")
    p.add_argument("--lengths", type=_lengths, default=LENGTHS)
    p.add_argument("--stride", type=int, default=5)
    p.add_argument("--code-size", type=int, default=7)
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    from placeprint.evaluate.nordland_bench import nordland_experiment

    route = _load_route(a.quiet)
    res = nordland_experiment(route, a.lengths, a.stride, a.code_size, quiet=a.quiet)
    out = {**run_metadata(prog, argv), **res}
    rows = []
    for name, per_l in res["methods"].items():
        for r in per_l:
            rows.append(
                [
                    name,
                    r["length"],
                    r.get("r1_test"),
                    r.get("r5_test"),
                    r.get("r1_all"),
                    r.get("r1_all_nondark"),
                    r["ops_mean"],
                    r["latency_ms_p50"],
                    res["bytes_per_place"][name],
                ]
            )
    print_table(
        f"Nordland winter vs summer, {res['places']} places, no distractors",
        [
            "method",
            "L",
            "R@1 test",
            "R@5 test",
            "R@1 all",
            "R@1 all non-dark",
            "ops/query",
            "ms p50",
            "B/place",
        ],
        rows,
    )
    out["plots"] = [str(plot_methods(res, a.plots))] if a.plots else []
    return _finish(out, a.json)


def plot_methods(res: dict, folder: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, key, title in [
        (axes[0], "r1_test", "frames 20010-25000"),
        (axes[1], "r1_all", "all frames"),
    ]:
        for name, per_l in res["methods"].items():
            ax.plot(
                [r["length"] for r in per_l], [r.get(key) for r in per_l], marker="o", label=name
            )
        ax.set_title(f"R@1, {title}")
        ax.set_xlabel("sequence length L")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("recall@1")
    axes[0].set_ylim(0, 1.02)
    axes[1].legend()
    return save_figure(fig, folder / "nordland_recall_vs_L.png")


# ------------------------------------------------------------------ synthetic
def synthetic_main(argv: list[str], prog: str = "benchmarks/synthetic.py") -> dict:
    """A synthetic route of N places and its synthetic queries (the paper's scale test)."""
    p = _Parser(prog=prog, description=synthetic_main.__doc__)
    p.add_argument("--places", type=int, default=10_000_000)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--lengths", type=_lengths, default=(10, 25, 50, 100))
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--query-model",
        choices=("additive", "regression"),
        default="additive",
        help="additive: queries = database + bias + noise (the paper's set-up)",
    )
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    if a.places < max(a.lengths) + 1 or a.queries < 1:
        raise PlaceprintError(f"{prog}: --places must exceed the longest length, --queries >= 1")
    from placeprint.config import data_available
    from placeprint.evaluate.pipeline import synthetic_stand_in
    from placeprint.evaluate.scale_bench import synthetic_experiment

    route = _load_route(a.quiet) if data_available("nordland") else synthetic_stand_in()
    res = synthetic_experiment(
        route, a.places, a.lengths, a.queries, a.seed, query_model=a.query_model, quiet=a.quiet
    )
    out = {**run_metadata(prog, argv), **res}
    agree = res["code_bit_agreement"]
    print_table(
        f"{res['route']} ({a.query_model} queries; code bits agree {agree['synthetic']:.3f} "
        f"vs {agree['real']:.3f} on real test frames): {res['places']:,} places, "
        f"{res['bytes_per_place']:.3f} B/place, "
        f"build {res['build_seconds']:.1f} s, peak RSS {res['peak_rss_mb']:.0f} MiB",
        ["L", "queries", "R@1", "ops/query", "x fewer than SeqSLAM", "ms p50", "ms p95"],
        [
            [
                r["length"],
                r["queries"],
                r["r1"],
                r["ops_mean"],
                r["baseline_ops_ratio"],
                r["latency_ms_p50"],
                r["latency_ms_p95"],
            ]
            for r in res["lengths"]
        ],
    )
    return _finish(out, a.json)

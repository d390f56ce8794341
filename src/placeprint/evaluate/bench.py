"""Benchmark runners: ``placeprint bench NAME`` and ``python benchmarks/NAME.py`` share them.

Each prints a table, writes JSON (command, commit, machine, date) and PNG plots.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from placeprint.errors import PlaceprintError
from placeprint.evaluate.report import print_table, run_metadata, save_figure, write_json

FIGURES = Path("docs/figures")
LENGTHS = (1, 10, 25, 50, 100)


def _lengths(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"lengths must be integers like 10,50: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("lengths must be >= 1")
    return values


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like the CLI
        raise PlaceprintError(f"{self.prog}: {message}")


def _load_route(quiet: bool):
    from placeprint.config import data_available
    from placeprint.evaluate.pipeline import load_nordland_route

    if not data_available("nordland"):
        raise PlaceprintError(
            "real data not found: set PLACEPRINT_DATA to the folder holding nordland/ "
            "(default ../shared/data)"
        )
    return load_nordland_route(quiet)


def _finish(out: dict, json_path: Path | None) -> dict:
    """Write the JSON (when asked) and say where every output went."""
    if json_path:
        write_json(json_path, out)
        print(f"wrote {json_path}")
    for plot in out.get("plots", []):
        print(f"wrote {plot}")
    return out


# ------------------------------------------------------------------ headline
def headline_main(argv: list[str], prog: str = "benchmarks/headline.py") -> dict:
    """Nordland in N synthetic distractors: the headline table and JSON."""
    p = _Parser(prog=prog, description=headline_main.__doc__)
    p.add_argument("--distractors", type=int, default=10_000_000)
    p.add_argument("--json", type=Path, default=None, help="output JSON (default: none)")
    p.add_argument("--plots", type=Path, default=FIGURES, help="folder for PNG plots")
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
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    if a.distractors < 0 or a.stride < 1:
        raise PlaceprintError(f"{prog}: --distractors must be >= 0 and --stride >= 1")
    from placeprint.evaluate.scale_bench import distractor_experiment

    route = _load_route(a.quiet)
    res = distractor_experiment(
        route,
        a.distractors,
        a.lengths,
        a.stride,
        a.seed,
        a.code_size,
        curve=not a.no_curve,
        ceiling_queries=a.ceiling_queries,
        quiet=a.quiet,
    )
    out = headline_json(res, run_metadata(prog, argv))
    print_headline(out)
    plots = plot_headline(out, a.plots, f"headline_{a.distractors}")
    out["plots"] = [str(x) for x in plots]
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
        "build_seconds": res["build_seconds"],
        "generate_seconds": res["generate_seconds"],
        "peak_rss_mb": res["peak_rss_mb"],
        "index_file_bytes": res["index_file_bytes"],
        "details": res,
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
    curve = out["details"]["curve"]
    if curve:
        print_table(
            "Recall against work (same index)",
            ["operating point", "L", "R@1 test", "R@1 all", "ops/query", "ms p50"],
            [
                [
                    c["point"],
                    c["length"],
                    c.get("r1_test"),
                    c.get("r1_all"),
                    c["ops_mean"],
                    c["latency_ms_p50"],
                ]
                for c in curve
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
                (c["ops_mean"], c.get("r1_test"), c["point"]) for c in curve if c["length"] == L
            )
            ax.plot([x[0] for x in pts], [x[1] for x in pts], marker="o", label=f"L={L}")
            for x, y, name in pts:
                if name.startswith("default"):
                    ax.annotate("default", (x, y), textcoords="offset points", xytext=(4, -10))
        ax.axvline(37_000, color="grey", ls="--", lw=1)
        ax.annotate(
            "37K ops (paper)",
            (37_000, 0.03),
            textcoords="offset points",
            xytext=(3, 0),
            color="grey",
        )
        ax.set_xscale("log")
        ax.set_xlabel("operations per query (entries read + code comparisons)")
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
    p.add_argument("--plots", type=Path, default=FIGURES)
    p.add_argument("--stride", type=int, default=5)
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    from placeprint.evaluate.scale_bench import distractor_experiment

    route = _load_route(a.quiet)
    rows = []
    for n in a.sizes:
        res = distractor_experiment(route, n, (50, 100), a.stride, curve=False, quiet=a.quiet)
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
    out["plots"] = [str(plot_scaling(rows, a.plots))]
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
    axes[1].plot(n, [100 * x * 5 for x in n], ls="--", color="grey", label="SeqSLAM, L=100")
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
    p.add_argument("--plots", type=Path, default=FIGURES)
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
    out["plots"] = [str(plot_methods(res, a.plots))]
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


def describers_main(argv: list[str], prog: str = "benchmarks/describers.py") -> dict:
    """Every describer family on real data (see ``evaluate.describers_bench``)."""
    from placeprint.evaluate.describers_bench import describers_main as run

    return run(argv, prog)


def geolocation_main(argv: list[str], prog: str = "benchmarks/geolocation.py") -> dict:
    """Geolocation on Lund + Berlin and on simulated worlds (see geolocation_bench)."""
    from placeprint.evaluate.geolocation_bench import geolocation_main as run

    return run(argv, prog)


def serve_main(argv: list[str], prog: str = "benchmarks/serve.py") -> dict:
    """Load test of `placeprint serve` on loopback (see serve_bench)."""
    from placeprint.evaluate.serve_bench import main as run

    return run(argv, prog)


RUNNERS = {
    "headline": headline_main,
    "describers": describers_main,
    "scaling": scaling_main,
    "nordland": nordland_main,
    "synthetic": synthetic_main,
    "geolocation": geolocation_main,
    "serve": serve_main,
}


def script(name: str) -> None:
    """Entry point of ``benchmarks/<name>.py``: errors as one line, exit 2."""
    try:
        RUNNERS[name](sys.argv[1:], prog=f"benchmarks/{name}.py")
    except PlaceprintError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)

"""View synthesis for place recognition: ``python benchmarks/viewsynth.py --help``.

The Tokyo 24/7 experiment (Torii et al. 2015) on a synthetic city
(:mod:`placeprint.crossview.world`; no real panoramas with depth are at hand, so every
figure rests on synthetic data). Database: panoramas with depth every ``--spacing``
metres along ``--streets`` streets, summer noon. Queries: perspective photos taken
*off* the panorama path (``--lateral`` metres to the side, anywhere between two
panoramas, at a random heading), at night and, as a control, on a summer afternoon.

Two databases, each described by every describer of ``--describers`` (default
:data:`DESCRIBERS`: ``cnn_gem`` with the options chosen on the validation city, whose
figures are the target keys, and Torii et al.'s DenseVLAD: dense RootSIFT -> VLAD ->
PCA-whitening), fitted on that database:

- **cut-outs**: ``--headings`` perspective views at each panorama's own position;
- **+ synthesized**: those plus the warped views from the grid around each panorama
  (:mod:`placeprint.synth.views`).

A query is right when a returned view comes from a panorama within ``--radius`` metres
of where the query was taken. Reported per database and lighting: R@1, R@5, R@1 of
8-byte compact codes (Hamming ranking, :class:`placeprint.codec.CoarseCodec`), the
median milliseconds a night query takes (describing it and searching every view, from
the image; the two databases take turns on each photo, so a busy machine slows both
alike), and the storage per real place (panorama): float descriptors, compact codes,
and the describer state a query needs (learned arrays and any network it runs).
``--area val`` is for choosing settings; the default ``test`` city is only scored.
``--ceiling`` also scores the first describer with one ideal daytime view per query added
to the cut-outs (:mod:`placeprint.evaluate.viewsynth_ceiling`): what the describer allows
at the query's own pose, and what the heading and grid steps cost.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from placeprint.errors import PlaceprintError

CONDITIONS = {"night": ("summer", 22.0), "day": ("summer", 16.0)}  # the queries'
DATABASE_CONDITION = ("summer", 12.0)  # the panoramas': summer noon

#: describers run by default; the first gives the target figures. ``cnn_gem`` and its
#: options were chosen on the validation city (``--area val``, 2026-12-07; night R@1 gain
#: from synthesized views: densevlad -0.027, crn 0.087, cnn_gem with its Nordland defaults
#: 0.087, these options 0.127); see the README's view synthesis section
DESCRIBERS = ("cnn_gem", "densevlad")
DESCRIBER_OPTIONS = {"cnn_gem": {"layer": 10, "image_size": [256, 192], "grid": [16, 12]}}


def _cached_panoramas(work: Path, world, points: np.ndarray, width: int, quiet: bool):
    """Daytime database panoramas and depths, rendered once per setting."""
    from placeprint.crossview.render import panorama
    from placeprint.crossview.world import Condition

    key = hashlib.sha1(json.dumps([world.seed, points.round(3).tolist(), width]).encode())
    path = work / f"panoramas_{key.hexdigest()[:12]}.npz"
    if path.exists():
        z = np.load(path)
        return z["images"], z["depths"]
    images, depths = [], []
    for i, (x, y) in enumerate(points):
        im, d = panorama(world, x, y, Condition(*DATABASE_CONDITION), width=width)
        images.append(im)
        depths.append(d)
        if not quiet and (i + 1) % 20 == 0:
            print(f"rendered {i + 1}/{len(points)} database panoramas", flush=True)
    images, depths = np.stack(images), np.stack(depths)
    np.savez(path, images=images, depths=depths)
    return images, depths


def street_queries(points: np.ndarray, count: int, lateral: tuple[float, float], rng):
    """``(count, 3)`` query poses ``(x, y, heading)``: between two consecutive panoramas of
    one street, ``lateral`` metres (either side) off its centre line, any heading."""
    same_street = np.nonzero(
        (np.abs(points[1:, 0] - points[:-1, 0]) < 1e-6)
        | (np.abs(points[1:, 1] - points[:-1, 1]) < 1e-6)
    )[0]
    pick = rng.choice(same_street, size=count)
    t = rng.uniform(0, 1, size=count)
    start, end = points[pick], points[pick + 1]
    along = start + t[:, None] * (end - start)
    direction = (end - start) / np.linalg.norm(end - start, axis=1, keepdims=True)
    normal = np.stack([direction[:, 1], -direction[:, 0]], axis=1)
    side = rng.choice([-1.0, 1.0], size=count) * rng.uniform(*lateral, size=count)
    xy = along + side[:, None] * normal
    return np.column_stack([xy, rng.uniform(0, 360, size=count)])


def render_queries(world, poses: np.ndarray, condition, settings, width: int) -> np.ndarray:
    """The perspective photo at every pose under ``condition``."""
    from placeprint.crossview.render import panorama
    from placeprint.synth.cutout import perspective_cutout

    out = []
    for x, y, heading in poses:
        pano, _ = panorama(world, x, y, condition, width=width)
        out.append(
            perspective_cutout(
                pano, heading, settings.pitch_deg, settings.fov_deg, tuple(settings.size)
            )
        )
    return np.stack(out)


def database_views(images, depths, settings, workers: int | None = None):
    """Every view of every panorama: ``(views, source panorama, synthesized)``; ``workers``
    threads warp panoramas side by side (default: every core, at most 8)."""
    from placeprint.synth.views import panorama_views
    from placeprint.threads import ordered_map

    views, source, synthesized = [], [], []
    each = ordered_map(lambda pair: list(panorama_views(*pair, settings)),
                       zip(images, depths, strict=True), workers)  # fmt: skip
    for i, pano_views in enumerate(each):
        for view, meta in pano_views:
            views.append(view)
            source.append(i)
            synthesized.append(meta.synthesized)
    return np.stack(views), np.array(source), np.array(synthesized)


def hamming_rank(db_codes: np.ndarray, query_codes: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` database codes nearest each query code in Hamming distance."""
    db = np.unpackbits(db_codes, axis=1).astype(np.int16)
    q = np.unpackbits(query_codes, axis=1).astype(np.int16)
    dist = q.sum(1)[:, None] + db.sum(1)[None, :] - 2 * (q @ db.T)
    return np.argsort(dist, axis=1, kind="stable")[:, :k]


def _hits(ranked_sources: np.ndarray, correct: np.ndarray, n: int) -> np.ndarray:
    """``(queries,) bool``: a right panorama among each query's first ``n`` answers."""
    return np.take_along_axis(correct, ranked_sources[:, :n], axis=1).any(axis=1)


def _recall(ranked_sources: np.ndarray, correct: np.ndarray, n: int) -> float:
    return float(_hits(ranked_sources, correct, n).mean())


def _search(d, X: np.ndarray, image: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """What a query costs: describe the photo, score every view, keep the ``k`` best."""
    q = d([image])[0]
    scores = X @ q
    top = np.argpartition(-scores, k)[:k]
    return top[np.argsort(-scores[top], kind="stable")], q


def fit_database(
    name: str, views, source, describer: str = "densevlad", describer_options: dict | None = None
) -> dict:
    """``describer`` fitted on ``views`` and their descriptors, 8-byte codes and storage."""
    from placeprint import describe
    from placeprint.codec import CoarseCodec
    from placeprint.index import OverloadedIndex

    t0 = time.perf_counter()
    d = describe.get(describer, **(describer_options or {}))
    d.fit(list(views))
    X = d(list(views))
    fit_seconds = time.perf_counter() - t0
    codec = CoarseCodec(code_size=8, bits_per_dim=1).fit(X)
    codes = codec.encode(X)
    index = OverloadedIndex(codec, describer=d.config())
    index.add_codes(codes)
    n_places = len(np.unique(source))
    state_bytes = d.state_bytes()
    row = {
        "database": name,
        "describer": describer,
        "views": len(views),
        "places": n_places,
        "views_per_place": len(views) / n_places,
        "fit_seconds": fit_seconds,
        "bytes_per_place": {
            "float_descriptors": X.nbytes / n_places,
            "compact_index": index.bytes_per_place() * len(views) / n_places,
            "describer_state": state_bytes / n_places,
        },
        "lighting": {},
    }
    return {"row": row, "describer": d, "X": X, "codec": codec, "codes": codes,
            "source": np.asarray(source)}  # fmt: skip


def score_database(db: dict, queries: dict, correct: dict, quiet: bool) -> None:
    """R@1, R@5 (float descriptors) and R@1, R@5 of the 8-byte codes, per lighting; each
    query's R@1 hit is kept in ``db["hits"]`` for the gains' intervals."""
    row, source = db["row"], db["source"]
    db["hits"] = {}
    for lighting, images in queries.items():
        found = [_search(db["describer"], db["X"], im) for im in images]
        ranked = source[np.array([top for top, _ in found])]
        Q = np.stack([q for _, q in found])
        compact = source[hamming_rank(db["codes"], db["codec"].encode(Q), 10)]
        ok = correct[lighting]
        db["hits"][lighting] = _hits(ranked, ok, 1)
        row["lighting"][lighting] = {
            "r1": _recall(ranked, ok, 1),
            "r5": _recall(ranked, ok, 5),
            "recall_at": [_recall(ranked, ok, n) for n in range(1, 11)],
            "r1_compact": _recall(compact, ok, 1),
            "r5_compact": _recall(compact, ok, 5),
        }
        if not quiet:
            r = row["lighting"][lighting]
            print(f"{row['database']:>14} {lighting:>5}: R@1 {r['r1']:.3f} R@5 {r['r5']:.3f}")


def time_queries(databases: list[dict], images: np.ndarray) -> None:
    """Median milliseconds a query takes against each database, the databases taking turns
    on every photo (so a busy machine slows them alike)."""
    times: list[list[float]] = [[] for _ in databases]
    for i, image in enumerate(images):
        order = range(len(databases)) if i % 2 == 0 else reversed(range(len(databases)))
        for j in order:
            t = time.perf_counter()
            _search(databases[j]["describer"], databases[j]["X"], image)
            times[j].append(time.perf_counter() - t)
    for db, t in zip(databases, times, strict=True):
        db["row"]["query_ms_median"] = 1000 * float(np.median(t))


def gains(databases: list[dict]) -> dict:
    """What synthesized views add to one describer's cut-out database (target keys), with
    95 % paired-bootstrap intervals of the R@1 gains over the queries."""
    from placeprint.evaluate.uncertainty import paired_gain_interval

    cut, more = databases
    base, synth = cut["row"]["lighting"], more["row"]["lighting"]
    out = {
        "r1_gain_night_offpath": synth["night"]["r1"] - base["night"]["r1"],
        "r1_gain_day_offpath": synth["day"]["r1"] - base["day"]["r1"],
        "r1_gain_night_offpath_compact": synth["night"]["r1_compact"] - base["night"]["r1_compact"],
        "query_time_ratio": more["row"]["query_ms_median"] / cut["row"]["query_ms_median"],
    }
    for lighting in ("night", "day"):
        low, high = paired_gain_interval(more["hits"][lighting], cut["hits"][lighting])
        out[f"r1_gain_{lighting}_offpath_ci95"] = [low, high]
    return out


def viewsynth_main(argv: list[str], prog: str = "benchmarks/viewsynth.py") -> dict:
    """Synthesized views vs cut-outs only, for off-path night queries: table, JSON, plots."""
    from placeprint import describe
    from placeprint.crossview.pairs import AREAS, area_seed
    from placeprint.crossview.world import Condition, World
    from placeprint.evaluate.benchargs import Parser, describer_options, finish
    from placeprint.evaluate.report import print_table, run_metadata
    from placeprint.synth.views import ViewSettings
    from placeprint.synth.world_route import route_points

    p = Parser(prog=prog, description=viewsynth_main.__doc__)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--plots", type=Path, default=None, help="folder for the figures")
    p.add_argument("--work", type=Path, default=None, help="cache of rendered panoramas")
    p.add_argument("--area", default="test", help="test (scored) or val (for choosing)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--streets", type=int, default=2)
    p.add_argument("--spacing", type=float, default=16.0, help="metres between panoramas")
    p.add_argument("--width", type=int, default=1024, help="panorama width (pixels)")
    p.add_argument("--queries", type=int, default=150, help="queries per lighting")
    p.add_argument("--lateral", default="2,5", help="query offset from the path (metres)")
    p.add_argument("--radius", type=float, default=12.0, help="metres for a right answer")
    defaults = ViewSettings()
    p.add_argument("--headings", type=int, default=defaults.headings)
    p.add_argument("--grid-step", type=float, default=defaults.grid_step_m)
    p.add_argument("--grid-radius", type=int, default=defaults.grid_radius)
    p.add_argument(
        "--describers",
        default=",".join(DESCRIBERS),
        help="comma-separated; the first gives the target figures, the rest are compared",
    )
    p.add_argument(
        "--describer-options",
        type=describer_options,
        default=None,
        help='JSON object of options by describer, e.g. \'{"densevlad": {"k": 32}}\' '
        "(default: the options chosen on the validation city)",
    )
    p.add_argument(
        "--ceiling",
        action="store_true",
        help="also score the first describer with ideal daytime views at or near each "
        "query's pose (placeprint.evaluate.viewsynth_ceiling)",
    )
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    if a.area not in AREAS:
        raise PlaceprintError(f"{prog}: --area must be one of {', '.join(AREAS)}")
    try:
        lateral = tuple(float(v) for v in a.lateral.split(","))
    except ValueError:
        raise PlaceprintError(f"{prog}: --lateral must be MIN,MAX metres") from None
    if len(lateral) != 2 or not 0 <= lateral[0] <= lateral[1] <= 10:
        raise PlaceprintError(f"{prog}: --lateral must be MIN,MAX with 0 <= MIN <= MAX <= 10")
    if a.queries < 5 or a.streets < 1 or a.radius <= 0 or a.width < 64 or a.width % 2:
        raise PlaceprintError(
            f"{prog}: need --queries >= 5, --streets >= 1, --radius > 0, an even --width >= 64"
        )
    names = [n.strip() for n in a.describers.split(",") if n.strip()]
    unknown = sorted(set(names) - set(describe.available()))
    if not names or unknown or len(set(names)) < len(names):
        raise PlaceprintError(
            f"{prog}: --describers must name distinct describers from "
            f"{', '.join(describe.available())}"
        )
    chosen = DESCRIBER_OPTIONS if a.describer_options is None else a.describer_options
    if set(chosen) - set(describe.available()) or not all(
        isinstance(v, dict) for v in chosen.values()
    ):
        raise PlaceprintError(f"{prog}: --describer-options must map describers to option objects")
    for name in names:  # a bad option fails here, not after the rendering
        try:
            describe.get(name, **chosen.get(name, {}))
        except PlaceprintError as exc:
            raise PlaceprintError(f"{prog}: describer {name}: {exc}") from None
    settings = ViewSettings(headings=a.headings, grid_step_m=a.grid_step, grid_radius=a.grid_radius)
    settings.check()
    work = a.work or Path(tempfile.gettempdir()) / "placeprint-viewsynth"
    work.mkdir(parents=True, exist_ok=True)

    world = World.generate(area_seed(a.seed, a.area))
    points = route_points(world, a.streets, a.spacing, margin_m=20.0)
    images, depths = _cached_panoramas(work, world, points, a.width, a.quiet)
    views, source, synthesized = database_views(images, depths, settings)
    rng = np.random.default_rng([a.seed, 0x5E7])
    poses = street_queries(points, a.queries, lateral, rng)
    t0 = time.perf_counter()
    queries = {
        name: render_queries(world, poses, Condition(*cond), settings, a.width)
        for name, cond in CONDITIONS.items()
    }
    if not a.quiet:
        print(f"rendered {2 * len(poses)} queries in {time.perf_counter() - t0:.0f} s")
    dist = np.hypot(*(poses[:, None, :2] - points[None, :, :]).transpose(2, 0, 1))
    within = dist <= a.radius
    correct = {name: within for name in queries}
    by_describer, rows = {}, []
    for name in names:
        options = chosen.get(name, {})
        databases = [
            fit_database("cut-outs", views[~synthesized], source[~synthesized], name, options),
            fit_database("+ synthesized", views, source, name, options),
        ]
        for db in databases:
            score_database(db, queries, correct, a.quiet)
        time_queries(databases, queries["night"])
        by_describer[name] = gains(databases)
        rows.extend(db["row"] for db in databases)
    ceiling = None
    if a.ceiling:
        ceiling = _ceiling(world, points, images, depths, poses, dist.argmin(axis=1), settings,
                           a.width, (views[~synthesized], source[~synthesized]), names[0],
                           chosen.get(names[0], {}), queries, correct, a.quiet)  # fmt: skip
    table = []
    for r in rows:
        for lighting, s in r["lighting"].items():
            b = r["bytes_per_place"]
            table.append(
                [r["describer"], r["database"], lighting, r["views"], s["r1"], s["r5"],
                 s["r1_compact"], r["query_ms_median"], b["float_descriptors"],
                 b["compact_index"], b["describer_state"]]
            )  # fmt: skip
    print_table(
        f"View synthesis, synthetic {a.area} city: {len(points)} panoramas, "
        f"{a.queries} off-path queries per lighting",
        ["describer", "database", "light", "views", "R@1", "R@5", "R@1 8B", "ms/query",
         "B/place float", "B/place 8B", "B/place state"],
        table,
    )  # fmt: skip
    for name, g in by_describer.items():
        lo, hi = g["r1_gain_night_offpath_ci95"]
        print(f"{name}: night R@1 gain {g['r1_gain_night_offpath']:+.3f} (95 % interval "
              f"{lo:+.3f} to {hi:+.3f} over {a.queries} queries)")  # fmt: skip
    out = {
        **run_metadata(prog, argv),
        "data": "synthetic city (placeprint.crossview.world): no real panoramas with depth "
        "exist offline",
        "area": a.area,
        "panoramas": len(points),
        "queries_per_lighting": a.queries,
        "settings": settings.as_dict(),
        "radius_m": a.radius,
        "lateral_m": list(lateral),
        "describer": names[0],
        **by_describer[names[0]],
        "by_describer": by_describer,
        "rows": rows,
    }
    if ceiling is not None:
        out["ceiling_r1"] = ceiling
    if a.plots:
        out["plots"] = [str(p) for p in plot(rows, queries, a.plots)]
    return finish(out, a.json)


def _ceiling(world, points, images, depths, poses, near, settings, width, cut_outs, describer,
             options, queries, correct, quiet) -> dict:  # fmt: skip
    """``--ceiling``: R@1 by lighting of the cut-outs plus each ideal view per query."""
    from placeprint.evaluate.report import print_table
    from placeprint.evaluate.viewsynth_ceiling import ceiling_views, score_ceilings

    t0 = time.perf_counter()
    extra = ceiling_views(world, points, images, depths, poses, near, settings, width)
    found = score_ceilings(extra, near, *cut_outs, describer, options, queries, correct)
    if not quiet:
        print(f"ceilings made and scored in {time.perf_counter() - t0:.0f} s")
    print_table(
        f"{describer}: cut-outs plus one ideal daytime view per query (synthetic renderer)",
        ["added view", "night R@1", "day R@1"],
        [[name, r["night"], r["day"]] for name, r in found.items()],
    )
    return {"describer": describer, **found}


def plot(rows: list[dict], queries: dict, folder: Path) -> list[Path]:
    """Recall@N of both databases of every describer under both lightings (dashed:
    cut-outs only; one colour a describer); a few night and day queries."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from placeprint.atomic import atomic_open

    folder.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, lighting in zip(axes, ("night", "day"), strict=True):
        colours = {}
        for r in rows:
            colour = colours.setdefault(r["describer"], f"C{len(colours)}")
            style = "--" if r["database"] == "cut-outs" else "-"
            rec = r["lighting"][lighting]["recall_at"]
            label = f"{r['describer']}, {r['database']}"
            ax.plot(range(1, len(rec) + 1), rec, style, color=colour, marker="o", label=label)
        ax.set_title(f"off-path queries, {lighting}")
        ax.set_xlabel("N")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("recall@N")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    curve = folder / "viewsynth_recall.png"
    with atomic_open(curve, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)
    sheet = folder / "viewsynth_queries.png"
    strip = np.vstack([np.hstack(list(queries[k][:6])) for k in ("day", "night")])
    from PIL import Image

    with atomic_open(sheet, "wb") as fh:
        Image.fromarray(strip).save(fh, format="PNG")
    return [curve, sheet]

"""Retrieval of real photos without a trained place network: ``python benchmarks/retrieval.py``.

Each option of issue 12's list, on the real images this project has, against the same
describer without it:

- **Nordland** (2,500 places, winter queries -> summer database, single frames; a match
  is within 2 frames): options learned on frames <= 20000, scored on frames 20010-25000.
  The learned whitening takes the two seasons' frames of the same places <= 20000 as
  positives (GPS-synchronised footage: the ``--paired`` build).
- **Lund + Berlin** (32 street photos, leave-one-out, and again with nothing within 30 m
  of the query): error of the nearest photo by descriptor. Learned whitening takes
  positives *mined* from the database photos themselves: pairs taken within
  ``--radius`` metres whose photos verify (RootSIFT + RANSAC), weak supervision the way
  NetVLAD and CRN find theirs.

Options: PCA-whitening, learned whitening from positives, multi-scale description
(the describer's ``scales``), αQE and αDBA (``placeprint.describe.expansion``), diffusion
over the database graph (``placeprint.describe.diffusion``, the paper's defaults), and
fusion with a second describer family. A table, JSON (``--json``), a figure (``--plots``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from placeprint.errors import PlaceprintError

MATCH_FRAMES = 2
EXCLUDE_M = 30.0
MULTI_SCALES = (1.0, 0.707)
#: diffusion settings scored on the tuning frames by ``--diffusion-grid`` (graph k,
#: alpha, query k; the paper's defaults are 50, 0.99, 10)
DIFFUSION_GRID = [(k, a, q) for k in (3, 5, 10, 50) for a in (0.3, 0.6, 0.9, 0.99)
                  for q in (1, 3, 10)]  # fmt: skip


def _raw_options(name: str, **options) -> dict:
    """``options`` plus ``whiten_dims=None`` where the describer whitens (the options
    under test whiten themselves)."""
    import inspect

    from placeprint import describe

    takes = "whiten_dims" in inspect.signature(describe.describer_class(name)).parameters
    return {**options, "whiten_dims": None} if takes else options


def _cosine_top1(database: np.ndarray, queries: np.ndarray) -> np.ndarray:
    from placeprint.describe.whitening import l2_normalise

    return np.argmax(l2_normalise(queries) @ l2_normalise(database).T, axis=1)


def _expanded_top1(database, queries, variant: str) -> np.ndarray:
    """Top-1 rows after the variant's expansion (``plain``, ``qe``, ``dba``, ``dba+qe``,
    ``diffusion``)."""
    from placeprint.describe.expansion import alpha_query_expansion, database_augmentation

    if variant == "diffusion":
        from placeprint.describe.diffusion import Diffusion

        return Diffusion().fit(database).search(queries, k=1)[1][:, 0]
    X = database_augmentation(database) if "dba" in variant else database
    Q = alpha_query_expansion(queries, X) if "qe" in variant else queries
    return _cosine_top1(X, Q)


def diffusion_tuning(S: np.ndarray, W: np.ndarray, frames: np.ndarray) -> dict:
    """Single-frame R@1 of every :data:`DIFFUSION_GRID` setting on the tuning frames
    (every 4th winter frame before the test stretch against every summer frame)."""
    from placeprint.describe.diffusion import Diffusion
    from placeprint.evaluate.pipeline import TEST_FIRST_FRAME

    tune = np.flatnonzero(frames < TEST_FIRST_FRAME)[::4]

    def r1(top: np.ndarray) -> float:
        return float((np.abs(top - tune) <= MATCH_FRAMES).mean())

    grid = []
    for k, alpha, query_k in DIFFUSION_GRID:
        d = Diffusion(k=k, alpha=alpha, query_k=query_k).fit(S)
        top = d.search(W[tune], k=1)[1][:, 0]
        grid.append({"k": k, "alpha": alpha, "query_k": query_k, "r1": r1(top)})
    return {"frames": len(tune), "raw": r1(_cosine_top1(S, W[tune])), "grid": grid}


def nordland_variants(describer: str, second: str, quiet: bool, grid: bool = False) -> dict:
    """Single-frame R@1 on the test frames of every option (learned on frames <= 20000);
    ``grid``: also diffusion's settings on the tuning frames (:func:`diffusion_tuning`)."""
    from placeprint.describe.expansion import fuse
    from placeprint.describe.whitening import LearnedWhitening, PCAWhitening
    from placeprint.evaluate.pipeline import TEST_FIRST_FRAME, load_nordland_route

    def route(name, **options):
        r = load_nordland_route(quiet=quiet, describer=name, **_raw_options(name, **options))
        return r.database.astype(np.float32), r.queries.astype(np.float32), r

    S, W, r = route(describer)
    m, test = r.tune_rows, np.flatnonzero(r.frames >= TEST_FIRST_FRAME)

    def r1(database, queries, variant="plain"):
        top = _expanded_top1(database, queries[test], variant)
        return float((np.abs(top - test) <= MATCH_FRAMES).mean())

    out = {"queries": len(test), "describer": describer, "r1": {}}
    if grid:
        out["diffusion_tuning"] = diffusion_tuning(S, W, r.frames)
    out["r1"]["raw"] = r1(S, W)
    for variant in ("qe", "dba", "dba+qe", "diffusion"):
        out["r1"][f"raw + {variant}"] = r1(S, W, variant)
    pw = PCAWhitening(256, 0.1).fit(S[:m])
    out["r1"]["PCA-whitening 256"] = r1(pw.transform(S), pw.transform(W))
    lw = LearnedWhitening(256, 0.1).fit(S[:m], positives=W[:m])
    Sl, Wl = lw.transform(S), lw.transform(W)
    out["r1"]["learned whitening 256 (pairs <= 20000)"] = r1(Sl, Wl)
    out["r1"]["learned whitening + qe"] = r1(Sl, Wl, "qe")
    out["r1"]["learned whitening + diffusion"] = r1(Sl, Wl, "diffusion")
    Sm, Wm, _ = route(describer, scales=list(MULTI_SCALES))
    out["r1"][f"multi-scale {MULTI_SCALES}"] = r1(Sm, Wm)
    S2, W2, _ = route(second)
    out["r1"][f"{second} alone"] = r1(S2, W2)
    out["r1"][f"fused with {second}"] = r1(fuse([S, S2]), fuse([W, W2]))
    return out


def lund_variants(describer: str, second: str, radius_m: float) -> dict:
    """Nearest-photo error on Lund + Berlin of every option, leave-one-out (and with
    nothing within 30 m)."""
    from placeprint.describe.expansion import fuse
    from placeprint.describe.whitening import PCAWhitening
    from placeprint.evaluate.benchargs import lund_berlin_photos
    from placeprint.evaluate.describers_bench import fit_describer
    from placeprint.geo.distance import haversine_km
    from placeprint.geo.positives import mine_positive_pairs, whitening_from_pairs
    from placeprint.verify import GeometricReranker

    paths, lat, lon = lund_berlin_photos()
    n = len(paths)
    D = 1000.0 * haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])

    def describe(name, **options):
        d = fit_describer(name, list(paths), **_raw_options(name, **options))
        return np.asarray(d(list(paths)), np.float32)

    t0 = time.perf_counter()
    X = describe(describer)
    raw = {
        "raw": X,
        f"multi-scale {MULTI_SCALES}": describe(describer, scales=list(MULTI_SCALES)),
    }
    X2 = describe(second)
    raw[f"{second} alone"] = X2
    raw[f"fused with {second}"] = fuse([X, X2])
    describe_s = time.perf_counter() - t0
    rr = GeometricReranker(min_inliers=15, confident_inliers=15)
    feats = [rr.features(p) for p in paths]
    memo: dict = {}

    def inliers(i, j):
        if (i, j) not in memo:
            memo[i, j] = rr.verify(feats[i], feats[j]).inliers
        return memo[i, j]

    blocks, pairs_used = {}, []
    for exclude in (0.0, EXCLUDE_M):
        errors: dict[str, list] = {}
        for i in range(n):
            others = np.flatnonzero((D[i] > exclude) & (np.arange(n) != i))
            if exclude and not (D[i, others] <= 1000.0).any():
                continue
            q = slice(i, i + 1)
            tops: dict[str, np.ndarray] = {}
            add = tops.__setitem__
            for name, V in raw.items():
                add(name, _cosine_top1(V[others], V[q]))
            for variant in ("qe", "dba", "dba+qe", "diffusion"):
                add(f"raw + {variant}", _expanded_top1(X[others], X[q], variant))
            pw = PCAWhitening(None, 0.1).fit(X[others])
            add("PCA-whitening", _cosine_top1(pw.transform(X[others]), pw.transform(X[q])))
            local = mine_positive_pairs(
                lat[others],
                lon[others],
                lambda a, b, o=others: inliers(*sorted((int(o[a]), int(o[b])))),
                radius_m,
            )
            pairs_used.append(len(local))
            lw = whitening_from_pairs(X[others], local)
            add(
                "learned whitening (mined pairs)",
                _cosine_top1(lw.transform(X[others]), lw.transform(X[q])),
            )
            for name, top in tops.items():
                errors.setdefault(name, []).append(float(D[i, others[top[0]]]))
        label = "leave-one-out" + (f", none within {EXCLUDE_M:g} m" if exclude else "")
        blocks[label] = {
            name: {
                "queries": len(e),
                "median_m": float(np.median(e)),
                "within_25m": float(np.mean(np.array(e) <= 25)),
                "within_100m": float(np.mean(np.array(e) <= 100)),
            }
            for name, e in errors.items()
        }
    return {
        "photos": n,
        "describer": describer,
        "radius_m": radius_m,
        "mined_pairs_mean": float(np.mean(pairs_used)),
        "describe_seconds": describe_s,
        "blocks": blocks,
    }


def plot(out: dict, folder: Path) -> Path:
    """Bars: Nordland test R@1 and Lund+Berlin within-100 m (none within 30 m) by option."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from placeprint.evaluate.report import save_figure

    panels = []
    if "nordland" in out:
        panels.append(("Nordland test, single-frame R@1", out["nordland"]["r1"]))
    if "lund_berlin" in out:
        for label, block in out["lund_berlin"]["blocks"].items():
            panels.append(
                (
                    f"Lund+Berlin {label}: within 100 m",
                    {k: v["within_100m"] for k, v in block.items()},
                )
            )
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    for ax, (title, values) in zip(axes[0], panels, strict=True):
        names = list(values)
        ax.barh(range(len(names)), [values[k] for k in names], color="tab:blue")
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_title(title, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, folder / "retrieval_options.png")


def retrieval_main(argv: list[str], prog: str = "benchmarks/retrieval.py") -> dict:
    """Retrieval options (whitening, positives, multi-scale, αQE/αDBA, diffusion, fusion) on
    real photos."""
    from placeprint.evaluate.benchargs import Parser, finish
    from placeprint.evaluate.report import print_table, run_metadata

    p = Parser(prog=prog, description=retrieval_main.__doc__)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--plots", type=Path, default=None, help="folder for the figure")
    p.add_argument("--describer", default="cnn_gem", help="Nordland describer")
    p.add_argument("--photo-describer", default="cnn_netvlad", help="Lund + Berlin describer")
    p.add_argument("--second", default="gist", help="the family fused with the describer")
    p.add_argument("--radius", type=float, default=15.0, help="metres: mined positive pairs")
    p.add_argument("--no-nordland", action="store_true")
    p.add_argument("--diffusion-grid", action="store_true",
                   help="score diffusion's settings on the Nordland tuning frames too")  # fmt: skip
    p.add_argument("--no-lund-berlin", action="store_true")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    if not a.radius > 0:
        raise PlaceprintError(f"{prog}: --radius must be > 0")
    from placeprint import describe

    for name in (a.describer, a.photo_describer, a.second):
        describe.describer_class(name)  # unknown names fail before any work
    out = {**run_metadata(prog, argv)}
    if not a.no_nordland:
        out["nordland"] = nordland_variants(a.describer, a.second, a.quiet, a.diffusion_grid)
        nd = out["nordland"]
        if "diffusion_tuning" in nd:
            dt = nd["diffusion_tuning"]
            best = sorted(dt["grid"], key=lambda g: -g["r1"])[:5]
            print_table(
                f"Diffusion on {dt['frames']} Nordland tuning frames (raw {dt['raw']:.3f}): best 5",
                ["k", "alpha", "query k", "single-frame R@1"],
                [[g["k"], g["alpha"], g["query_k"], g["r1"]] for g in best],
            )
        print_table(
            f"Nordland winter -> summer, {nd['queries']} test frames, {a.describer}",
            ["option", "single-frame R@1"],
            [[k, v] for k, v in nd["r1"].items()],
        )
    if not a.no_lund_berlin:
        out["lund_berlin"] = lund_variants(a.photo_describer, a.second, a.radius)
        for label, block in out["lund_berlin"]["blocks"].items():
            print_table(
                f"Lund+Berlin {label}, {a.photo_describer}: the nearest photo by descriptor",
                ["option", "queries", "median m", "<= 25 m", "<= 100 m"],
                [
                    [k, v["queries"], v["median_m"], v["within_25m"], v["within_100m"]]
                    for k, v in block.items()
                ],
            )
    if len(out) == len(run_metadata(prog, argv)):
        raise PlaceprintError(f"{prog}: nothing to measure (both sets turned off)")
    if a.plots:
        out["plots"] = [str(plot(out, a.plots))]
    return finish(out, a.json)

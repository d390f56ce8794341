"""Where was this photo taken, on real photos: ``python benchmarks/photos.py --help``.

Every photo set is answered the way ``placeprint locate`` answers (describer, kNN
density, calibration, geometric verification) and scored against its EXIF or manifest
position:

- **Lund + Berlin** (``PLACEPRINT_DATA/geotagged``, 32 photos): leave-one-out, each photo
  located against the other 31; and again with every photo within 30 m of the query
  removed (no near-duplicate to lean on; queries with nothing left within 1 km skipped);
- every ``--photos FOLDER_OR_MANIFEST``: a fixed split, every 4th photo (in path order)
  a query, the rest the database (the describer learns from the database only);
- ``--timing-set N``: the same split of N photos made for it
  (:mod:`placeprint.evaluate.timing_set`): costs at a city collection's scale.

Estimators: ``placeprint`` (verified answers), ``retrieval`` (``--no-verify``), the
nearest database photo by descriptor, and the collection's centre. Reported: median
error, share within 25 / 100 / 250 / 1000 m, the share of truths inside the 50 % and 90 %
credible regions, the best mode's stated probability against how often the truth lies
in its disc, the share of verified answers, the regions' coverage for verified answers
and for those whose verification failed (each calibrated on its own), and seconds a
photo (describing included).
A table, JSON (``--json``) and error CDFs (``--plots``).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from placeprint.errors import PlaceprintError

WITHIN_M = (25, 100, 250, 1000)
EXCLUDE_M = 30.0
QUERY_EVERY = 4


@dataclass
class PhotoSet:
    """Photos with their true positions (degrees)."""

    name: str
    paths: list[Path]
    lat: np.ndarray
    lon: np.ndarray


def read_photo_set(source: str | Path) -> PhotoSet:
    """A folder of geotagged photos (EXIF GPS) or a manifest (CSV/Parquet) as a set.

    A manifest row without a usable position and a photo that cannot be read are left
    out, each with one warning line on stderr; the rest are measured."""
    from placeprint.describe.images import open_photo
    from placeprint.geo.collection import collect, read_manifest_rows

    source = Path(source)
    if source.is_dir():
        coll, skipped = collect(source)
    elif source.is_file():
        rows = read_manifest_rows(source)
        coll, skipped = rows.collection, list(rows.skipped)
    else:
        raise PlaceprintError(f"not found: {source}")
    paths = [Path(p) for p in coll.paths]
    readable = []
    for i, path in enumerate(paths):
        try:
            open_photo(path)
        except PlaceprintError as exc:
            skipped.append((str(path), str(exc)))
            continue
        readable.append(i)
    for label, reason in skipped:
        print(f"warning: {source.name}: skipped {label}: {reason}", file=sys.stderr)
    order = sorted(readable, key=lambda i: str(paths[i]))
    if len(order) < 2 * QUERY_EVERY:
        raise PlaceprintError(f"{source}: {len(order)} geotagged photos are too few to split")
    return PhotoSet(
        source.name,
        [paths[i] for i in order],
        np.asarray(coll.lat, float)[order],
        np.asarray(coll.lon, float)[order],
    )


def lund_berlin() -> PhotoSet:
    """The 32 real street photos of ``PLACEPRINT_DATA/geotagged`` with their EXIF GPS."""
    from placeprint.evaluate.benchargs import lund_berlin_photos

    return PhotoSet("Lund+Berlin", *lund_berlin_photos())


#: scikit-image's sample photos (those shipped in its wheel), none of a street: pairs of
#: one of them with a street photo should never verify
UNRELATED = ("astronaut", "brick", "camera", "cat", "chelsea", "clock", "coffee", "coins",
             "grass", "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "moon",
             "page", "retina", "rocket", "text")  # fmt: skip
PAIR_BINS_M = ((0, 30), (30, 100), (100, 300), (1000, float("inf")))


def view_offsets(dist_m: list[float]) -> dict:
    """How far apart the cameras of photo pairs that verify stand (``dist_m``, metres).

    The spread :data:`placeprint.geo.verified.VIEW_KM` stands for: a verified match sees
    the same facade, not necessarily from the same spot.
    """
    q = np.quantile(dist_m, [0.5, 0.9]) if len(dist_m) else [float("nan")] * 2
    return {
        "pairs": len(dist_m),
        "median_m": float(q[0]),
        "p90_m": float(q[1]),
        # per-axis spread of a 2-D Gaussian with that median / 90 % distance
        "sigma_m_from_median": float(q[0] / 1.1774),
        "sigma_m_from_p90": float(q[1] / 2.1460),
    }


def pair_verification(ps: PhotoSet, min_inliers: int = 15) -> dict:
    """Every pair of the set verified with upright and with rotation-invariant RootSIFT:
    how many verify, by how far apart the photos were taken, and how many of the pairs of
    a set photo with an unrelated photo (:data:`UNRELATED`) do (none should); with the
    camera offsets of the pairs that verify (:func:`view_offsets`)."""
    import skimage.data

    from placeprint.geo.distance import haversine_km
    from placeprint.verify import GeometricReranker

    n = len(ps.paths)
    D = 1000.0 * haversine_km(ps.lat[:, None], ps.lon[:, None], ps.lat[None], ps.lon[None])
    iu = np.triu_indices(n, 1)
    others = [getattr(skimage.data, name)() for name in UNRELATED]
    out = {}
    for upright in (True, False):
        r = GeometricReranker(min_inliers=min_inliers, confident_inliers=min_inliers,
                              upright=upright)  # fmt: skip
        feats = [r.features(p) for p in ps.paths]
        inliers = np.array([r.verify(feats[i], feats[j]).inliers for i, j in zip(*iu, strict=True)])
        ok = inliers >= min_inliers
        bins = {}
        for lo, hi in PAIR_BINS_M:
            m = (D[iu] >= lo) & (D[iu] < hi)
            bins[f"{lo:g}-{hi:g} m"] = {"pairs": int(m.sum()), "verified": int(ok[m].sum())}
        unrelated = [r.features(np.asarray(img)) for img in others]
        wrong = sum(r.verify(f, u).inliers >= min_inliers for f in feats for u in unrelated)
        out["upright" if upright else "rotation-invariant"] = {
            "by_distance": bins,
            "unrelated": {"pairs": len(feats) * len(unrelated), "verified": int(wrong)},
            "view_offsets": view_offsets(list(D[iu][ok])),
        }
    return out


def _describe(describer: str, paths) -> tuple[np.ndarray, float]:
    """Descriptors of ``paths`` (describer fitted on them, no labels) and seconds a photo."""
    from placeprint.evaluate.describers_bench import fit_describer

    d = fit_describer(describer, list(paths))
    t0 = time.perf_counter()
    X = d(list(paths))
    return np.asarray(X, np.float32), (time.perf_counter() - t0) / max(len(paths), 1)


@dataclass
class Answers:
    """Per query: the two density answers, the baselines' points, timings."""

    verified: list
    retrieval: list
    nearest: list[tuple[float, float]]
    centre: list[tuple[float, float]]
    seconds: list[float]


def _fit_geolocator(X, lat, lon, db_paths, cache, memo, verify_top: int, progress=False):
    """The geolocator ``index build`` makes, verified answers calibrated the same way,
    and its verifier (``progress``: bars on a terminal)."""
    from placeprint.geo.geolocator import Geolocator
    from placeprint.geo.verified import AnswerVerifier
    from placeprint.progress import progress_bar

    geo = Geolocator(k=min(25, len(X)), holdout=0.25, shortlist=verify_top).fit(X, lat, lon)
    verifier = AnswerVerifier(geo, lambda r: db_paths[r], top=verify_top, cache=cache, memo=memo)
    with progress_bar(not progress) as bar:  # as index build stores them: no answer
        for path in bar.track(db_paths, description="local features of the photos"):
            cache(path)  # extracts a database photo
    geo.calibrate_verified(verifier, progress=progress)
    return geo, verifier


def _answer(geo, verifier, X_q, image):
    """Retrieval and verified answers of one query photo, and the seconds they took.

    The photo is decoded and its local features extracted inside the timing, as for a new
    photo: no cache of features (on disk or of pairs checked before) answers for it. The
    database photos' features come from the warm cache, as in a running service."""
    from placeprint.describe.images import load_gray

    t0 = time.perf_counter()
    plain = geo.predict_proba(X_q)[0]
    checked = verifier.apply(load_gray(image), plain)
    return plain, checked, time.perf_counter() - t0


def _new_answers() -> Answers:
    return Answers([], [], [], [], [])


def leave_one_out(ps: PhotoSet, X, describe_s, exclude_m, verify_top, cache, memo) -> tuple:
    """Every photo against the others (none within ``exclude_m`` metres of it)."""
    from placeprint.geo.distance import haversine_km
    from placeprint.progress import progress_bar

    n = len(X)
    out, rows = _new_answers(), []
    with progress_bar() as bar:
        for i in bar.track(range(n), description=f"{ps.name}: leave-one-out"):
            d_km = haversine_km(ps.lat, ps.lon, ps.lat[i], ps.lon[i])
            others = np.flatnonzero((d_km * 1000.0 > exclude_m) & (np.arange(n) != i))
            if len(others) < 5 or (exclude_m > 0 and not (d_km[others] <= 1.0).any()):
                continue
            rows.append(i)
            db_paths = [str(ps.paths[j]) for j in others]
            geo, verifier = _fit_geolocator(
                X[others], ps.lat[others], ps.lon[others], db_paths, cache, memo, verify_top
            )
            plain, checked, s = _answer(geo, verifier, X[i : i + 1], ps.paths[i])
            _record(out, plain, checked, s + describe_s, X[i], X[others], ps, others)
    return out, np.array(rows)


def split(ps: PhotoSet, describer: str, verify_top: int, cache, memo) -> tuple:
    """Every ``QUERY_EVERY``-th photo (path order) against the others."""
    from placeprint.evaluate.describers_bench import fit_describer
    from placeprint.progress import progress_bar

    idx = np.arange(len(ps.paths))
    q, db = idx[::QUERY_EVERY], np.setdiff1d(idx, idx[::QUERY_EVERY])
    d = fit_describer(describer, [ps.paths[j] for j in db])  # learns from the database only
    X_db = np.asarray(d([ps.paths[j] for j in db]), np.float32)
    db_paths = [str(ps.paths[j]) for j in db]
    geo, verifier = _fit_geolocator(
        X_db, ps.lat[db], ps.lon[db], db_paths, cache, memo, verify_top, progress=True
    )
    out = _new_answers()
    with progress_bar() as bar:
        for i in bar.track(q, description=f"{ps.name}: queries"):
            t0 = time.perf_counter()
            X_q = np.asarray(d([ps.paths[i]]), np.float32)
            describe_s = time.perf_counter() - t0
            plain, checked, s = _answer(geo, verifier, X_q, ps.paths[i])
            _record(out, plain, checked, s + describe_s, X_q[0], X_db, ps, db)
    return out, q


def _record(out: Answers, plain, checked, seconds, x, X_db, ps, db_rows) -> None:
    out.retrieval.append(plain)
    out.verified.append(checked)
    j = db_rows[int(np.argmin(((X_db - x) ** 2).sum(1)))]
    out.nearest.append((float(ps.lat[j]), float(ps.lon[j])))
    from placeprint.geo.sphere import to_unit

    v = to_unit(ps.lat[db_rows], ps.lon[db_rows]).mean(axis=0)
    v = v / np.linalg.norm(v)  # the centre of the database's positions on the sphere
    out.centre.append(
        (float(np.degrees(np.arcsin(v[2]))), float(np.degrees(np.arctan2(v[1], v[0]))))
    )
    out.seconds.append(seconds)


def score(out: Answers, lat: np.ndarray, lon: np.ndarray) -> dict:
    """Errors and calibration of every estimator against the true positions."""
    from placeprint.geo.distance import haversine_km

    def errors(points):
        a = np.array([p[0] for p in points])
        b = np.array([p[1] for p in points])
        return haversine_km(a, b, lat, lon) * 1000.0

    def summary(err_m):
        return {
            "median_m": float(np.median(err_m)),
            **{f"within_{m}m": float((err_m <= m).mean()) for m in WITHIN_M},
            "errors_m": [float(e) for e in err_m],
        }

    result = {}
    for name, preds in (("placeprint", out.verified), ("retrieval", out.retrieval)):
        best = [(p.best.lat, p.best.lon) for p in preds]
        err = errors(best)
        levels = np.array(
            [p.credible_level(a, b, samples=2000) for p, a, b in zip(preds, lat, lon, strict=True)]
        )
        stated = np.array([p.best.probability for p in preds])
        inside = err <= np.array([p.best.radius_km for p in preds]) * 1000.0
        result[name] = {
            **summary(err),
            "in_50_region": float((levels <= 0.5).mean()),
            "in_90_region": float((levels <= 0.9).mean()),
            "stated_probability": float(stated.mean()),
            "truth_in_stated_disc": float(inside.mean()),
            "verified_share": float(np.mean([p.best.verified for p in preds])),
        }
        if name == "placeprint":  # database photos each answer checked (--verify-top)
            checked = [p.verification.checked for p in preds if p.verification is not None]
            result[name]["checked_mean"] = float(np.mean(checked)) if checked else 0.0
            ok = np.array([p.verification is not None and p.verification.verified for p in preds])
            result[name]["by_verification"] = {  # each kind of answer has its own calibration
                kind: {
                    "queries": int(m.sum()),
                    "median_m": float(np.median(err[m])) if m.any() else float("nan"),
                    "in_50_region": float((levels[m] <= 0.5).mean()) if m.any() else float("nan"),
                    "in_90_region": float((levels[m] <= 0.9).mean()) if m.any() else float("nan"),
                }
                for kind, m in (("verified", ok), ("failed", ~ok))
            }
    result["nearest_neighbour"] = summary(errors(out.nearest))
    result["collection_centre"] = summary(errors(out.centre))
    return result


def _block(name: str, out: Answers, rows: np.ndarray, ps: PhotoSet) -> dict:
    res = score(out, ps.lat[rows], ps.lon[rows])
    s = np.array(out.seconds)
    return {
        "name": name,
        "queries": len(rows),
        "estimators": res,
        "seconds_p50": float(np.median(s)),
        "seconds_p95": float(np.quantile(s, 0.95)),
    }


def plot_cdfs(blocks: list[dict], folder: Path) -> Path:
    """Error CDFs (log metres) of every estimator, one panel a photo set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from placeprint.evaluate.report import save_figure

    fig, axes = plt.subplots(1, len(blocks), figsize=(5.2 * len(blocks), 4.0), squeeze=False)
    for ax, b in zip(axes[0], blocks, strict=True):
        for name, r in b["estimators"].items():
            e = np.sort(np.maximum(r["errors_m"], 0.1))
            ax.step(e, np.arange(1, len(e) + 1) / len(e), where="post", label=name)
        ax.set_xscale("log")
        ax.set_xlim(1, 1e4)
        ax.set_xlabel("error (m)")
        ax.set_ylabel("share of photos")
        ax.set_title(f"{b['name']} ({b['queries']} queries)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, folder / "photos_error_cdf.png")


def photos_main(argv: list[str], prog: str = "benchmarks/photos.py") -> dict:
    """Real photos located as `placeprint locate` does: table, JSON and error CDFs."""
    from placeprint.evaluate.benchargs import Parser, finish
    from placeprint.evaluate.report import print_table, run_metadata
    from placeprint.geo.verified import DEFAULT_VERIFY_TOP
    from placeprint.locate import DEFAULT_PHOTO_DESCRIBER
    from placeprint.verify import FeatureCache, GeometricReranker

    p = Parser(prog=prog, description=photos_main.__doc__)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--plots", type=Path, default=None, help="folder for the figure")
    p.add_argument(
        "--photos",
        action="append",
        default=[],
        metavar="FOLDER_OR_MANIFEST",
        help="a geotagged photo folder or manifest: every 4th photo a query (repeatable)",
    )
    p.add_argument("--describer", default=DEFAULT_PHOTO_DESCRIBER)
    p.add_argument("--verify-top", type=int, default=DEFAULT_VERIFY_TOP,
                   help="neighbours verified a query (index build --verify-top)")  # fmt: skip
    p.add_argument("--no-lund-berlin", action="store_true", help="skip the shipped photos")
    p.add_argument(
        "--timing-set",
        type=int,
        default=0,
        metavar="N",
        help="also time N made 640x480 photos (crops of the shipped photos and drawn scenes, "
        "in a temporary folder): the costs at a city collection's scale, not its accuracy",
    )
    a = p.parse_args(argv)
    if a.verify_top < 1:
        raise PlaceprintError(f"{prog}: --verify-top must be >= 1")
    if a.timing_set and a.timing_set < 8:
        raise PlaceprintError(f"{prog}: --timing-set needs at least 8 photos")
    sets = [read_photo_set(s) for s in a.photos]  # every source checked before any work
    # database photos' local features, extracted once for every query of the run
    cache = FeatureCache(lambda path: path, GeometricReranker().features, max_items=4096)
    memo: dict = {}  # inliers of each (query photo, database photo) pair, checked once

    out = {**run_metadata(prog, argv), "describer": a.describer, "blocks": []}
    if not a.no_lund_berlin:
        ps = lund_berlin()
        out["pair_verification"] = pair_verification(ps)
        out["view_offsets"] = out["pair_verification"]["upright"]["view_offsets"]
        X, describe_s = _describe(a.describer, ps.paths)
        for exclude in (0.0, EXCLUDE_M):
            answers, rows = leave_one_out(ps, X, describe_s, exclude, a.verify_top, cache, memo)
            label = "Lund+Berlin, leave-one-out" + (
                f", none within {exclude:g} m" if exclude else ""
            )
            out["blocks"].append(_block(label, answers, rows, ps))
    for ps in sets:
        answers, rows = split(ps, a.describer, a.verify_top, cache, memo)
        out["blocks"].append(_block(f"{ps.name}, every {QUERY_EVERY}th a query", answers, rows, ps))
    if a.timing_set:
        import tempfile

        from placeprint.evaluate.timing_set import make_timing_set

        with tempfile.TemporaryDirectory(prefix="placeprint-timing-") as tmp:
            ps = read_photo_set(make_timing_set(tmp, a.timing_set))
            answers, rows = split(ps, a.describer, a.verify_top, cache, memo)
            name = f"timing set of {a.timing_set} made photos (not an accuracy set)"
            out["blocks"].append(_block(name, answers, rows, ps))
    if not out["blocks"]:
        raise PlaceprintError(
            f"{prog}: nothing to measure (give --photos or drop --no-lund-berlin)"
        )
    for b in out["blocks"]:
        rows = []
        for name, r in b["estimators"].items():
            rows.append(
                [
                    name,
                    r["median_m"],
                    *[r[f"within_{m}m"] for m in WITHIN_M],
                    r.get("in_50_region", float("nan")),
                    r.get("in_90_region", float("nan")),
                    r.get("stated_probability", float("nan")),
                    r.get("truth_in_stated_disc", float("nan")),
                    r.get("verified_share", float("nan")),
                    r.get("checked_mean", float("nan")),
                ]
            )
        print_table(
            f"{b['name']}: {b['queries']} queries, {b['seconds_p50']:.2f} s a photo (p50)",
            [
                "estimator",
                "median m",
                *[f"<= {m} m" for m in WITHIN_M],
                "in 50 %",
                "in 90 %",
                "stated p",
                "in disc",
                "verified",
                "checked",
            ],
            rows,
        )
        groups = b["estimators"]["placeprint"]["by_verification"]
        print(
            "  regions by answer: "
            + "; ".join(
                f"{kind} {g['queries']}: in 50 % {g['in_50_region']:.2f}, "
                f"in 90 % {g['in_90_region']:.2f}"
                for kind, g in groups.items()
            )
        )
    if "pair_verification" in out:
        pv = out["pair_verification"]
        bins = list(pv["upright"]["by_distance"])
        print_table(
            "Lund+Berlin photo pairs that verify (unrelated: scikit-image samples)",
            ["features", *[f"{b} apart" for b in bins], "unrelated"],
            [
                [name, *[f"{v['by_distance'][b]['verified']} / {v['by_distance'][b]['pairs']}"
                         for b in bins],
                 f"{v['unrelated']['verified']} / {v['unrelated']['pairs']}"]
                for name, v in pv.items()
            ],
        )  # fmt: skip
    if a.plots:
        out["plots"] = [str(plot_cdfs(out["blocks"], a.plots))]
    return finish(out, a.json)

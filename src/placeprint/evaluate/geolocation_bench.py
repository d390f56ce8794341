"""Where on Earth, measured: real street photos (Lund, Berlin) and a simulated world.

Estimators (each a :class:`~placeprint.geo.geolocator.Geolocator` configuration or a
baseline):

- ``density_mode`` (baseline): always the densest place of the database photos;
- ``nearest_neighbour`` (baseline): the position of the most similar database photo;
- ``knn``: kNN kernel density (IM2GPS / Revisiting IM2GPS), modes by mean-shift;
- ``classifier``: softmax over adaptive S2 cells with the photo-density prior (PlaNet);
- ``combined``: both, mixed with weights learned on held-out database photos;
- ``album``: ``combined`` smoothed along each album by the HMM over cells.

Metrics: share within 1 / 25 / 200 / 750 / 2500 km, median km, and calibration (the
observed share of truths inside the 50 % and 90 % credible regions).

No real worldwide image benchmark is available offline, so the global scale is
simulated: positions are the real photo locations (100K file), descriptors a smooth
random field of the position plus noise (:mod:`placeprint.geo.world`).
"""

from __future__ import annotations

import time

import numpy as np

from placeprint.errors import PlaceprintError

REAL_THRESHOLDS_KM = {"25m": 0.025, "100m": 0.1}


def _evaluate(preds, true_lat, true_lon, calibrate: bool = True, extra=None) -> dict:
    """Errors, accuracy and calibration of a list of GeoPredictions."""
    from placeprint.geo.metrics import THRESHOLDS_KM, accuracy_at, summarise

    lat = np.array([p.best.lat for p in preds])
    lon = np.array([p.best.lon for p in preds])
    from placeprint.geo.metrics import geolocation_errors_km

    err = geolocation_errors_km(lat, lon, true_lat, true_lon)
    levels = None
    if calibrate:
        levels = np.array(
            [
                p.credible_level(a, b, samples=2000)
                for p, a, b in zip(preds, true_lat, true_lon, strict=True)
            ]
        )
    out = summarise(err, levels)
    if extra:
        out.update({f"within_{k}": v for k, v in accuracy_at(err, extra).items()})
    out["thresholds_km"] = dict(THRESHOLDS_KM)
    return out


def _point_predictions(lat, lon):
    """Errors-only predictions (baselines without a density) as light objects."""
    from placeprint.geo.prediction import GeoGuess

    class _Point:
        def __init__(self, a, b):
            self.best = GeoGuess(float(a), float(b), 1.0, 0.0)

    return [_Point(a, b) for a, b in zip(lat, lon, strict=True)]


def _density_mode(db_lat, db_lon, bandwidth_km: float) -> tuple[float, float]:
    """Densest mode of the database positions (mean-shift on at most 2,000 of them)."""
    from placeprint.geo.sphere import mean_shift_modes

    rng = np.random.default_rng(0)
    rows = np.arange(len(db_lat))
    if len(rows) > 2000:
        rows = rng.choice(rows, 2000, replace=False)
    modes = mean_shift_modes(db_lat[rows], db_lon[rows], None, bandwidth_km=bandwidth_km)
    return modes[0].lat, modes[0].lon


# ---------------------------------------------------------------- real photos
def real_photos(describer: str):
    """Lund + Berlin photos: descriptors, EXIF positions, seconds spent describing."""
    from placeprint.evaluate.benchargs import lund_berlin_photos
    from placeprint.evaluate.describers_bench import fit_describer

    files, lat, lon = lund_berlin_photos()
    t0 = time.perf_counter()
    d = fit_describer(describer, files)  # unsupervised learners see every photo (no labels)
    X = d(files)
    return X, lat, lon, (time.perf_counter() - t0)


def real_experiment(X, lat, lon, exclude_m: float = 0.0) -> dict:
    """Leave-one-out: every photo queries the others (and none within ``exclude_m`` of it).

    ``exclude_m > 0`` removes the query's near neighbours along the walk from the
    database, so the answer must come from photos of the street further away (queries
    left with no photo within 1 km are skipped).
    """
    from placeprint.geo.distance import haversine_km
    from placeprint.geo.geolocator import Geolocator

    n = len(X)
    nn_lat, nn_lon, knn_preds, mode_preds, seconds, rows = [], [], [], [], [], []
    for i in range(n):
        far = haversine_km(lat, lon, lat[i], lon[i]) * 1000.0 > exclude_m
        others = np.flatnonzero(far & (np.arange(n) != i))
        near_km = haversine_km(lat[others], lon[others], lat[i], lon[i])
        if len(others) < 5 or (exclude_m > 0 and not (near_km <= 1.0).any()):
            continue  # with an exclusion zone, only queries still answerable within 1 km
        rows.append(i)
        d2 = ((X[others] - X[i]) ** 2).sum(1)
        j = others[int(np.argmin(d2))]
        nn_lat.append(lat[j])
        nn_lon.append(lon[j])
        geo = Geolocator(k=min(10, len(others)), holdout=0.25).fit(
            X[others], lat[others], lon[others]
        )
        t1 = time.perf_counter()
        knn_preds.append(geo.predict_proba(X[i : i + 1])[0])
        seconds.append(time.perf_counter() - t1)
        mode_preds.append(_density_mode(lat[others], lon[others], 1.0))
    rows = np.array(rows)
    tl, tn = lat[rows], lon[rows]
    mode_lat, mode_lon = (np.array(v) for v in zip(*mode_preds, strict=True))
    return {
        "queries": len(rows),
        "exclude_m": exclude_m,
        "estimators": {
            "density_mode": _evaluate(
                _point_predictions(mode_lat, mode_lon), tl, tn, False, REAL_THRESHOLDS_KM
            ),
            "nearest_neighbour": _evaluate(
                _point_predictions(nn_lat, nn_lon), tl, tn, False, REAL_THRESHOLDS_KM
            ),
            "knn": _evaluate(knn_preds, tl, tn, True, REAL_THRESHOLDS_KM),
        },
        "ms_per_query_knn_p50": float(np.median(seconds) * 1000),
    }


# ---------------------------------------------------------------- simulated world
def make_albums(field, centres_lat, centres_lon, size, signal, noise, spread_km, seed):
    """Albums of ``size`` photos around each centre, ``spread_km`` apart, 10 min between."""
    from placeprint.geo.world import _jitter

    rng = np.random.default_rng(seed)
    lat = np.repeat(centres_lat, size)
    lon = np.repeat(centres_lon, size)
    lat, lon = _jitter(lat, lon, spread_km, rng)
    X = field.describe(lat, lon, signal, noise, rng)
    album = np.repeat(np.arange(len(centres_lat)), size)
    stamps = np.tile(np.arange(size) * 600.0, len(centres_lat))
    return lat, lon, X, album, stamps


def world_experiment(
    n_db: int = 20000,
    n_albums: int = 200,
    album_size: int = 5,
    signal: float = 1.0,
    noise: float = 1.0,
    dim: int = 64,
    seed: int = 0,
    quiet: bool = False,
    calibration_rows: int = 300,
) -> dict:
    """Every estimator on one simulated world (database and query albums); each
    geolocator is calibrated on up to ``calibration_rows`` held-out database photos."""
    from placeprint.geo.geolocator import Geolocator
    from placeprint.geo.world import (
        DEFAULT_SCALES_KM,
        WorldField,
        read_photo_locations,
        split_world,
    )
    from placeprint.locate import default_cells

    db, q = split_world(
        n_db, n_albums, dim=dim, signal=signal, noise=noise, seed=seed, replace=False
    )
    field = WorldField(dim, DEFAULT_SCALES_KM, seed)
    # an album: photos taken around one place (jittered like the database photos), 10 min apart
    pool_lat, pool_lon = read_photo_locations()
    lat, lon, X, album, stamps = make_albums(
        field,
        pool_lat[q.source_rows],
        pool_lon[q.source_rows],
        album_size,
        signal,
        noise,
        q.jitter_km,
        seed + 7,
    )
    out = {
        "database": n_db,
        "queries": len(lat),
        "albums": n_albums,
        "album_size": album_size,
        "signal": signal,
        "noise": noise,
        "dim": dim,
        "estimators": {},
        "seconds": {},
    }
    ests = out["estimators"]
    # baselines
    ml, mn = _density_mode(db.lat, db.lon, 25.0)
    ests["density_mode"] = _evaluate(
        _point_predictions(np.full(len(lat), ml), np.full(len(lat), mn)), lat, lon, False
    )
    d2 = (X**2).sum(1)[:, None] + (db.descriptors**2).sum(1)[None] - 2 * X @ db.descriptors.T
    j = d2.argmin(axis=1)
    ests["nearest_neighbour"] = _evaluate(_point_predictions(db.lat[j], db.lon[j]), lat, lon, False)
    configs = {
        "prior_only": dict(knn=False, classifier=False),
        "knn": dict(cells_off=True),
        "classifier": dict(knn=False),
        "combined": {},
    }
    for name, options in configs.items():
        t0 = time.perf_counter()
        cells = None if options.pop("cells_off", False) else default_cells(max(n_db, 2000))
        geo = Geolocator(cells=cells, calibration_rows=calibration_rows, **options).fit(
            db.descriptors, db.lat, db.lon
        )
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        preds = geo.predict_proba(X)
        out["seconds"][name] = {
            "fit": fit_s,
            "predict_per_query": (time.perf_counter() - t0) / len(X),
        }
        ests[name] = _evaluate(preds, lat, lon)
        ests[name]["components"] = preds[0].components
        if not quiet:
            print(f"  {name}: {ests[name]['accuracy']}", flush=True)
        if name == "combined":
            t0 = time.perf_counter()
            album_preds = [None] * len(X)
            for a in np.unique(album):
                rows = np.flatnonzero(album == a)
                for r, p in zip(rows, geo.predict_album(X[rows], stamps[rows]), strict=True):
                    album_preds[r] = p
            out["seconds"]["album"] = {"predict_per_query": (time.perf_counter() - t0) / len(X)}
            ests["album"] = _evaluate(album_preds, lat, lon)
    return out


def partition_experiment(folder=None, max_photos: int = 1000, min_photos: int = 20) -> dict:
    """PlaNet cells of the 100K real photo locations: counts per level and a map."""
    from placeprint.geo.cells import AdaptiveCells, read_photo_locations
    from placeprint.geo.maps import plot_cells

    lat, lon = read_photo_locations()
    t0 = time.perf_counter()
    cells = AdaptiveCells(max_photos, min_photos).fit(lat, lon)
    seconds = time.perf_counter() - t0
    title = (
        f"{cells.n_cells} adaptive S2 cells of 100K photo locations "
        f"(t1={max_photos}, t2={min_photos})"
    )
    png = plot_cells(folder / "s2_cells.png", cells, title=title) if folder else None
    return {
        "photos": len(lat),
        "kept": int(cells.kept_.sum()),
        "cells": cells.n_cells,
        "max_photos": max_photos,
        "min_photos": min_photos,
        "cells_per_level": {str(k): v for k, v in cells.counts_per_level().items()},
        "fit_seconds": seconds,
        "plot": str(png) if png else None,
    }


# ---------------------------------------------------------------- runner
def print_geolocation(out: dict) -> None:
    """One table per dataset: accuracy at each threshold, median km, calibration."""
    from placeprint.evaluate.report import print_table

    for title, block in out["datasets"].items():
        rows = []
        for name, r in block["estimators"].items():
            acc, cal = r["accuracy"], r.get("calibration", {})
            extra = [r.get("within_25m"), r.get("within_100m")] if "real" in title else []
            rows.append(
                [name, *extra, *acc.values(), r["median_km"], cal.get("0.5"), cal.get("0.9")]
            )
        thresholds = list(next(iter(block["estimators"].values()))["accuracy"])
        extra_cols = ["25 m", "100 m"] if "real" in title else []
        print_table(
            f"Geolocation: {title} ({block.get('queries', block.get('photos'))} queries)",
            ["estimator", *extra_cols, *thresholds, "median km", "in 50% CR", "in 90% CR"],
            rows,
        )


def plot_geolocation(out: dict, folder) -> object:
    """Accuracy-vs-threshold curves, one panel per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from placeprint.evaluate.report import save_figure

    blocks = out["datasets"]
    fig, axes = plt.subplots(1, len(blocks), figsize=(5.2 * len(blocks), 4.2), squeeze=False)
    for ax, (title, block) in zip(axes[0], blocks.items(), strict=True):
        for name, r in block["estimators"].items():
            km = list(r["thresholds_km"].values())
            ax.plot(km, list(r["accuracy"].values()), marker="o", label=name)
        ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("error threshold (km)")
        ax.set_ylabel("share of queries")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, folder / "geolocation.png")


def geolocation_main(argv: list[str], prog: str = "benchmarks/geolocation.py") -> dict:
    """Geolocation on Lund + Berlin (leave-one-out) and on simulated worlds: table, JSON, plot."""
    from pathlib import Path

    from placeprint.evaluate.benchargs import Parser, finish
    from placeprint.evaluate.report import run_metadata

    p = Parser(prog=prog, description=geolocation_main.__doc__)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--plots", type=Path, default=None, help="folder for the figures")
    p.add_argument("--describer", default="cnn_netvlad", help="describer for the real photos")
    p.add_argument("--database", type=int, default=20000, help="simulated database photos")
    p.add_argument("--albums", type=int, default=200, help="simulated query albums")
    p.add_argument("--album-size", type=int, default=5)
    p.add_argument(
        "--signals",
        type=lambda s: tuple(float(x) for x in s.split(",") if x),
        default=(0.5, 1.0, 2.0),
        help="geographic signal (noise 1) of each simulated world",
    )
    p.add_argument("--no-real", action="store_true", help="skip Lund + Berlin")
    p.add_argument(
        "--calibration-rows",
        type=int,
        default=300,
        help="held-out photos each simulated geolocator is calibrated on (default 300)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    if a.database < 100 or a.albums < 1 or a.album_size < 1 or not a.signals:
        raise PlaceprintError(f"{prog}: need --database >= 100, --albums/--album-size >= 1")
    if a.calibration_rows < 1:
        raise PlaceprintError(f"{prog}: --calibration-rows must be >= 1")
    out = {**run_metadata(prog, argv), "datasets": {}}
    out["partition"] = partition_experiment(a.plots)
    if not a.quiet:
        part = out["partition"]
        print(f"[partition] {part['cells']} cells, per level {part['cells_per_level']}")
    if not a.no_real:
        if not a.quiet:
            print("[real: Lund + Berlin, leave-one-out]", flush=True)
        X, lat, lon, seconds = real_photos(a.describer)
        for exclude in (0.0, 30.0):
            block = real_experiment(X, lat, lon, exclude)
            block.update(describer=a.describer, describe_seconds=seconds)
            name = "real Lund+Berlin, leave-one-out"
            out["datasets"][name + (f", none within {exclude:g} m" if exclude else "")] = block
    for s in a.signals:
        if not a.quiet:
            print(f"[simulated world, signal {s:g}]", flush=True)
        out["datasets"][f"simulated world, signal {s:g}"] = world_experiment(
            a.database,
            a.albums,
            a.album_size,
            signal=s,
            seed=a.seed,
            quiet=a.quiet,
            calibration_rows=a.calibration_rows,
        )
    print_geolocation(out)
    if a.plots:
        out["plots"] = [str(plot_geolocation(out, a.plots)), out["partition"]["plot"]]
    return finish(out, a.json)

"""Geometric context: ``python benchmarks/geocontext.py --help``.

1. **Pixel accuracy** of the geometric-context model (the shipped one unless ``--model``)
   on ``--renders`` labelled photos of the synthetic *test* cities (never seen in
   training): overall, per class, confusion matrix (synthetic data: labels are exact).
2. **The IM2GPS combination, equal against learned block weights**, with the
   geometric-context block:

   - Nordland: textons, block scales and the learned weights are fitted on frames
     <= 20000 (summer; winter frames of the same places as positives); single-frame
     R@1 (right within 2 frames) of winter queries against the summer database,
     scored on frames 20010-25000 only, and on all frames.
   - Lund + Berlin (32 real street photos): each photo's nearest other photo by
     descriptor (leave-one-out); median error and the share within 50 m. Textons and
     scales are fitted on the photos; the learned weights are Nordland's (no positives
     exist among 32 photos).

   Also the combination without the geometric-context block (equal weights), to show
   what the block adds. Learned and equal weights differ only in per-block factors, so
   each image is described once and the blocks are re-weighted (exactly what the
   describer computes).
3. A figure of real Lund/Berlin photos with their class maps.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from placeprint.errors import PlaceprintError

TEST_FIRST_FRAME = 20010


def _blocks_of(describer, images, quiet: bool, what: str) -> list[np.ndarray]:
    """Scaled, unweighted blocks of ``images`` (one array per block)."""
    t0 = time.perf_counter()
    raw = describer._raw_blocks(images)
    if not quiet:
        print(f"described {len(images)} {what} in {time.perf_counter() - t0:.0f} s", flush=True)
    return [X * s for X, s in zip(raw, describer.scales_, strict=True)]


def _combine(blocks: list[np.ndarray], weights, keep=None) -> np.ndarray:
    keep = range(len(blocks)) if keep is None else keep
    return np.hstack([blocks[i] * np.sqrt(weights[i]) for i in keep])


def _nordland_r1(db: np.ndarray, queries: np.ndarray, frames: np.ndarray, scored) -> float:
    sq = (queries**2).sum(1)[:, None] + (db**2).sum(1)[None, :] - 2 * queries @ db.T
    best = np.argmin(sq, axis=1)
    return float(np.mean(np.abs(best - np.arange(len(queries)))[scored] <= 2))


def nordland_rows(quiet: bool) -> dict:
    from placeprint.datasets.nordland import load_nordland
    from placeprint.describe.im2gps import BLOCKS, Im2gpsDescriber

    nordland = load_nordland()
    frames = np.asarray(nordland.frames)
    m = int(np.searchsorted(frames, 20000, side="right"))
    d = Im2gpsDescriber(blocks=BLOCKS)
    d.fit(nordland.summer[:m], positives=nordland.winter[:m])
    learned = d.weights_.astype(float)
    summer = _blocks_of(d, nordland.summer, quiet, "summer frames")
    winter = _blocks_of(d, nordland.winter, quiet, "winter frames")
    equal = np.ones(len(d.blocks))
    test = frames >= TEST_FIRST_FRAME
    every = np.ones(len(frames), bool)
    without = [i for i, b in enumerate(d.blocks) if b != "geocontext"]
    geo = d.blocks.index("geocontext")
    out = {"blocks": list(d.blocks), "weights": learned.tolist(), "rows": {}}
    for name, w, keep in (
        ("equal, without geocontext", equal, without),
        ("equal", equal, None),
        ("learned", learned, None),
    ):
        db, q = _combine(summer, w, keep), _combine(winter, w, keep)
        out["rows"][name] = {
            "r1_test": _nordland_r1(db, q, frames, test),
            "r1_all": _nordland_r1(db, q, frames, every),
        }
    out["geocontext_alone_r1_test"] = _nordland_r1(summer[geo], winter[geo], frames, test)
    return out


def photo_rows(weights: list[float], quiet: bool) -> dict:
    from placeprint.describe.im2gps import BLOCKS, Im2gpsDescriber
    from placeprint.evaluate.benchargs import lund_berlin_photos
    from placeprint.geo.distance import pairwise_km

    files, lat, lon = lund_berlin_photos()
    d = Im2gpsDescriber(blocks=BLOCKS).fit(files)
    blocks = _blocks_of(d, files, quiet, "street photos")
    metres = 1000 * pairwise_km(lat, lon)
    without = [i for i, b in enumerate(d.blocks) if b != "geocontext"]
    out = {"photos": len(files), "rows": {}}
    equal = np.ones(len(d.blocks))
    for name, w, keep in (
        ("equal, without geocontext", equal, without),
        ("equal", equal, None),
        ("learned (Nordland's weights)", np.asarray(weights), None),
    ):
        X = _combine(blocks, w, keep)
        sq = (X**2).sum(1)[:, None] + (X**2).sum(1)[None, :] - 2 * X @ X.T
        np.fill_diagonal(sq, np.inf)
        error = metres[np.arange(len(X)), np.argmin(sq, axis=1)]
        out["rows"][name] = {
            "median_error_m": float(np.median(error)),
            "within_50m": float(np.mean(error <= 50)),
        }
    return out


def geocontext_main(argv: list[str], prog: str = "benchmarks/geocontext.py") -> dict:
    """Geometric context: pixel accuracy, IM2GPS equal vs learned weights: table, JSON, plots."""
    from placeprint.evaluate.benchargs import Parser, finish
    from placeprint.evaluate.report import print_table, run_metadata
    from placeprint.geocontext.model import GeometricContext, pixel_accuracy
    from placeprint.geocontext.renders import labelled_views

    p = Parser(prog=prog, description=geocontext_main.__doc__)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--plots", type=Path, default=None, help="folder for the figures")
    p.add_argument("--model", type=Path, default=None, help="model file (default: shipped)")
    p.add_argument("--renders", type=int, default=300, help="held-out labelled renders")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-real", action="store_true", help="synthetic pixel accuracy only")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    if a.renders < 1:
        raise PlaceprintError(f"{prog}: --renders must be >= 1")
    model = GeometricContext.load(a.model)
    images, labels = labelled_views(a.renders, "test", a.seed)
    t0 = time.perf_counter()
    score = pixel_accuracy(model, images, labels)
    ms = 1000 * (time.perf_counter() - t0) / len(images)
    print_table(
        f"Geometric context on {a.renders} renders of held-out synthetic cities",
        ["pixel accuracy", "ground", "vertical", "sky", "ms / 160x120 photo"],
        [[score["pixel_accuracy"], *score["per_class"].values(), ms]],
    )
    out = {
        **run_metadata(prog, argv),
        "data": "pixel accuracy: synthetic test cities (exact labels); IM2GPS: real "
        "Nordland frames and Lund/Berlin photos",
        "renders": a.renders,
        "pixel_accuracy": score["pixel_accuracy"],
        "per_class": score["per_class"],
        "confusion": score["confusion"],
        "ms_per_photo": ms,
    }
    if not a.skip_real:
        nordland = nordland_rows(a.quiet)
        photos = photo_rows(nordland["weights"], a.quiet)
        rows = nordland["rows"]
        names = list(rows)
        table = []
        for n, photo_name in zip(names, photos["rows"], strict=True):
            ph = photos["rows"][photo_name]
            table.append([n, rows[n]["r1_test"], rows[n]["r1_all"], ph["median_error_m"],
                          ph["within_50m"]])  # fmt: skip
        print_table(
            "IM2GPS combination: Nordland single-frame R@1 (test frames / all), Lund+Berlin "
            "leave-one-out",
            ["weights", "R@1 test", "R@1 all", "photos median m", "photos <= 50 m"],
            table,
        )
        print("learned weights: " + ", ".join(
            f"{b} {w:.2f}" for b, w in zip(nordland["blocks"], nordland["weights"], strict=True)
        ))  # fmt: skip
        out["nordland"] = nordland
        out["photos"] = photos
        out["learned_vs_equal"] = {
            "nordland_r1_test": rows["learned"]["r1_test"] - rows["equal"]["r1_test"],
            "photos_median_error_m": photos["rows"]["learned (Nordland's weights)"][
                "median_error_m"
            ]
            - photos["rows"]["equal"]["median_error_m"],
        }
    if a.plots:
        out["plots"] = [str(plot_real_photos(model, a.plots))]
    return finish(out, a.json)


def plot_real_photos(model, folder: Path) -> Path:
    """Lund and Berlin photos beside their class maps, in one PNG."""
    from PIL import Image

    from placeprint.atomic import atomic_open
    from placeprint.describe.color import ImageViews
    from placeprint.describe.geocontext import GeoContextDescriber
    from placeprint.evaluate.benchargs import lund_berlin_photos
    from placeprint.geocontext.figures import class_map_colours

    files, _, _ = lund_berlin_photos()
    pick = [files[i] for i in (0, 10, 20, 28)] + files[-2:]
    describer = GeoContextDescriber()
    describer._model = model
    tiles = []
    for f in pick:
        views = ImageViews.load(f, 640)
        proba = describer.class_maps(views)
        h, w = proba.shape[:2]
        photo = Image.fromarray(np.clip(views.rgb, 0, 255).astype(np.uint8)).resize((w, h))
        tiles.append(np.hstack([np.asarray(photo), np.full((h, 4, 3), 255, np.uint8),
                                class_map_colours(proba)]))  # fmt: skip
    height = min(t.shape[0] for t in tiles)
    tiles = [t[:height] for t in tiles]
    rows = [np.hstack([tiles[i], np.full((height, 8, 3), 255, np.uint8), tiles[i + 1]])
            for i in range(0, len(tiles) - 1, 2)]  # fmt: skip
    width = min(r.shape[1] for r in rows)
    sheet = np.vstack([r[:, :width] for r in rows])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "geocontext_real_photos.png"
    with atomic_open(path, "wb") as fh:
        Image.fromarray(sheet).save(fh, format="PNG")
    return path

"""Style-aware mid-level elements against whole-image regression: ``python
benchmarks/midlevel.py --help``.

Three labels, each learned on one part and scored on another:

- ``season`` (Nordland, real): summer 0 / winter 1, both seasons' frames <= 20000 to
  learn, frames >= 20010 to test; error = share of test frames in the wrong season.
- ``position`` (Nordland, real): the frame number along the line, same split; error =
  mean absolute error in frames. The test stretch lies beyond every learned position, so
  both methods are held to the learned range (a prediction is clipped to it) and the
  error is mostly the distance from frame 20000: a weak test of either.
- ``style`` (synthetic city whose windows change shape from west to east): the window
  style (0-1) where a street photo was taken; learned on one city, scored on another;
  error = mean absolute error.

Both methods see the same HOG: the mid-level elements its patches
(:mod:`placeprint.midlevel.elements`), the baseline the whole image's HOG blocks
(ridge regression, penalty by cross-validation), clipped to the learned range alike.

``--tune`` is the validation run that chose each label's way of combining the elements'
readings (:data:`COMBINE`): it never sees the test part. Nordland learns frames <= 15000
and checks 15010-20000; style learns the training city and checks the validation city;
every combiner is scored.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from placeprint.errors import PlaceprintError

LABELS = ("season", "position", "style")
METRICS = {
    "season": "share of test images in the wrong season",
    "position": "mean absolute error (frames)",
    "style": "mean absolute error (style units, 0-1)",
}


#: how each label's element readings are combined, chosen by ``--tune`` (2026-12-06, 2-core
#: sandbox; mid-level error mean / stacked, whole image): season 0.083 / 0.129 (0.117),
#: position 9,787 / 8,993 frames (8,698), style 0.233 / 0.177 (0.207)
COMBINE = {"season": "mean", "position": "stacked", "style": "stacked"}


def label_error(label: str, predicted: np.ndarray, truth: np.ndarray) -> float:
    """The error of ``label``'s metric (:data:`METRICS`)."""
    if label == "season":
        return float(np.mean((predicted > 0.5) != (truth > 0.5)))
    return float(np.mean(np.abs(predicted - truth)))


def run_label(label, train_images, y_train, test_images, y_test, layout, settings, quiet,
              combiners=None):  # fmt: skip
    """Fit both methods on one label; their test errors and the fitted elements.

    ``combiners``: the ways of combining readings to score (default: the label's own,
    :data:`COMBINE`); the first is the one reported as ``midlevel_error``."""
    from dataclasses import replace

    from placeprint.midlevel.elements import StyleAwareElements, whole_image_regression
    from placeprint.midlevel.hog import describe_images

    t0 = time.perf_counter()
    P_tr, W_tr = describe_images(train_images, layout)
    P_te, W_te = describe_images(test_images, layout)
    by_combiner, fitted = {}, None
    for combine in combiners or [COMBINE[label]]:
        elements = StyleAwareElements(replace(settings, combine=combine)).fit(P_tr, y_train)
        by_combiner[combine] = label_error(label, elements.predict(P_te), y_test)
        fitted = fitted or elements
    whole = whole_image_regression(W_tr, y_train).predict(W_te)
    whole = np.clip(whole, y_train.min(), y_train.max())
    out = {
        "metric": METRICS[label],
        "train_images": len(train_images),
        "test_images": len(test_images),
        "combine": fitted.settings.combine,
        "midlevel_error": by_combiner[fitted.settings.combine],
        "midlevel_error_by_combiner": by_combiner,
        "whole_image_error": label_error(label, whole, y_test),
        "elements": int(fitted.detectors_.shape[0]),
        "bins": int(fitted.detectors_.shape[1]),
        "seconds": time.perf_counter() - t0,
    }
    if not quiet:
        mid = ", ".join(f"{k} {v:.3f}" for k, v in by_combiner.items())
        print(f"{label}: mid-level {mid}; whole image {out['whole_image_error']:.3f} "
              f"({out['seconds']:.0f} s)", flush=True)  # fmt: skip
    return out, fitted


def midlevel_main(argv: list[str], prog: str = "benchmarks/midlevel.py") -> dict:
    """Mid-level elements vs whole-image regression on every label: table, JSON, plots."""
    from placeprint.evaluate.benchargs import Parser, finish
    from placeprint.evaluate.report import print_table, run_metadata
    from placeprint.midlevel.data import nordland_sets, style_views
    from placeprint.midlevel.elements import COMBINERS, ElementSettings
    from placeprint.midlevel.hog import HogLayout

    p = Parser(prog=prog, description=midlevel_main.__doc__)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--plots", type=Path, default=None, help="folder for the figures")
    p.add_argument("--labels", default=",".join(LABELS), help="any of season,position,style")
    p.add_argument("--style-train", type=int, default=600, help="synthetic photos to learn")
    p.add_argument("--style-test", type=int, default=200, help="synthetic photos to test")
    p.add_argument("--seeds", type=int, default=400, help="candidate elements mined")
    p.add_argument("--keep", type=int, default=40, help="style-sensitive elements kept")
    p.add_argument("--per-bin", type=int, default=25, help="correspondences a label bin")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tune", action="store_true",
                   help="score every combiner on tuning data only (Nordland frames <= 20000, "
                   "the validation city)")  # fmt: skip
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    labels = [x.strip() for x in a.labels.split(",") if x.strip()]
    unknown = [x for x in labels if x not in LABELS]
    if unknown or not labels:
        raise PlaceprintError(f"{prog}: --labels takes {', '.join(LABELS)}; got {a.labels!r}")
    if min(a.style_train, a.style_test, a.seeds, a.keep, a.per_bin) < 1:
        raise PlaceprintError(f"{prog}: counts must be >= 1")
    settings = ElementSettings(seeds=a.seeds, keep=a.keep, per_bin=a.per_bin, seed=a.seed)
    settings.check()
    rows, fitted = {}, {}
    nordland = None
    for label in labels:
        if label == "style":
            layout = HogLayout(size=(160, 120), cell=10, window=4)
            train = style_views(a.style_train, "train", a.seed)
            test = style_views(a.style_test, "val" if a.tune else "test", a.seed)
            sets = (list(train[0]), train[1], list(test[0]), test[1])
        else:
            from placeprint.config import data_available

            if not data_available("nordland"):
                raise PlaceprintError(
                    "real data not found: set PLACEPRINT_DATA to the folder holding nordland/ "
                    "(default ../shared/data)"
                )
            nordland = nordland or nordland_sets(a.tune)
            layout = HogLayout()
            sets = nordland[label]
        combiners = list(COMBINERS) if a.tune else None
        rows[label], elements = run_label(label, *sets, layout, settings, a.quiet, combiners)
        fitted[label] = (elements, sets[0], layout)
    combiners = list(next(iter(rows.values()))["midlevel_error_by_combiner"])
    print_table(
        "Style-aware mid-level elements vs whole-image regression (same HOG)"
        + (", tuning data" if a.tune else ""),
        ["label", "metric", "combine"]
        + ([f"mid-level {c}" for c in combiners] if a.tune else ["mid-level"])
        + ["whole image", "elements", "train", "test"],
        [[k, r["metric"], r["combine"], *r["midlevel_error_by_combiner"].values(),
          r["whole_image_error"], r["elements"], r["train_images"], r["test_images"]]
         for k, r in rows.items()],
    )  # fmt: skip
    out = {
        **run_metadata(prog, argv),
        "data": "season, position: real Nordland frames; style: synthetic cities",
        "split": "tuning (Nordland <= 15000 learn, 15010-20000 check; style: validation city)"
        if a.tune
        else "test (Nordland <= 20000 learn, 20010-25000 test; style: test city)",
        "settings": settings.__dict__,
        "midlevel_error": {k: r["midlevel_error"] for k, r in rows.items()},
        "whole_image_error": {k: r["whole_image_error"] for k, r in rows.items()},
        "midlevel_beats_whole_image": {
            k: r["midlevel_error"] < r["whole_image_error"] for k, r in rows.items()
        },
        "labels": rows,
    }
    if a.plots:
        out["plots"] = [str(plot_elements(k, *v, a.plots)) for k, v in fitted.items()]
    return finish(out, a.json)


def element_crop(image, layout, window: int, size: int = 48) -> np.ndarray:
    """The pixels of patch ``window`` of ``image`` at the working size, ``(size, size)``."""
    from PIL import Image

    from placeprint.describe.images import load_gray

    grey = load_gray(image, layout.size)
    r, c = layout.positions()[window]
    span = (layout.window + 1) * layout.cell
    y0, x0 = r * layout.cell, c * layout.cell
    crop = grey[y0 : y0 + span, x0 : x0 + span]
    return np.asarray(Image.fromarray(crop.astype(np.uint8)).resize((size, size)))


def plot_elements(label: str, elements, images, layout, folder: Path, rows: int = 6) -> Path:
    """The paper's signature figure: the best elements (rows), each shown by its best
    detection in every label bin (columns, low to high label)."""
    from PIL import Image

    from placeprint.atomic import atomic_open

    best = np.argsort(elements.training_error_)[:rows]
    strips = []
    for e in best:
        tiles = [element_crop(images[i], layout, w) for i, w in elements.examples_[e]]
        gaps = [np.full((48, 4), 255, np.uint8)] * len(tiles)
        strips.append(np.hstack([t for pair in zip(tiles, gaps, strict=True) for t in pair]))
        strips.append(np.full((4, strips[-1].shape[1]), 255, np.uint8))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"midlevel_{label}.png"
    with atomic_open(path, "wb") as fh:
        Image.fromarray(np.vstack(strips)).save(fh, format="PNG")
    return path

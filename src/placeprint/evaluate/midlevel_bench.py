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
readings (:data:`COMBINE`) and how many sets of elements, each mined from its own seeds,
the reading averages (:data:`MEMBERS`, :mod:`placeprint.midlevel.ensemble`): it never
sees the test part. The combiners are compared with one set each; the label's combiner is
then scored with 2 to :data:`MAX_MEMBERS` sets. Nordland is scored on folds of
the learning frames shaped like the test split (:func:`placeprint.midlevel.data.tuning_folds`:
season holds out each block of 5,000 frames in turn, position learns a stretch and checks
the next); style learns the training city and checks the validation city. Every combiner
is scored with its own element counts (:data:`ELEMENTS`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from placeprint.errors import PlaceprintError
from placeprint.midlevel.elements import COMBINERS, element_settings
from placeprint.midlevel.elements import ELEMENT_COUNTS as ELEMENTS

LABELS = ("season", "position", "style")
METRICS = {
    "season": "share of test images in the wrong season",
    "position": "mean absolute error (frames)",
    "style": "mean absolute error (style units, 0-1)",
}

#: how each label's element readings are combined, chosen by ``--tune`` (2026-12-07, 2-core
#: sandbox, ``benchmarks/results/midlevel_tuning.json``; mean over the folds, mid-level
#: mean / stacked / pooled against the whole image): season 0.145 / 0.121 / 0.070 (0.083),
#: position 7,263 / 6,718 / 6,632 frames (6,667), style 0.233 / 0.177 / 0.189 (0.207)
COMBINE = {"season": "pooled", "position": "pooled", "style": "stacked"}

#: how many sets of elements, each mined from its own seeds, each label's reading averages
#: (:mod:`placeprint.midlevel.ensemble`), chosen by ``--tune`` among 1 to MAX_MEMBERS for
#: the label's combiner (same run; mean over the folds, 1 / 2 / 3 / 4 / 5 sets): season
#: 0.070 / 0.056 / 0.054 / 0.056 / 0.057, position 6,632 / 6,581 / 6,617 / 6,621 / 6,625
#: frames, style 0.177 / 0.171 / 0.169 / 0.170 / 0.167
MEMBERS = {"season": 3, "position": 2, "style": 5}
MAX_MEMBERS = 5


#: Nordland's frames without the near-black ones (mean intensity < 25 in either season):
#: the dataset's protocol reports results with and without them
LIT = "without near-black frames"

#: Nordland images in a stretch of 100 frame numbers (10 frames, both seasons) are alike:
#: the interval of a difference resamples whole stretches
STRETCH_FRAMES = 100


def image_errors(label: str, predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Each image's error under ``label``'s metric (:data:`METRICS`)."""
    if label == "season":
        return ((predicted > 0.5) != (truth > 0.5)).astype(np.float64)
    return np.abs(predicted - truth).astype(np.float64)


def label_error(label: str, predicted: np.ndarray, truth: np.ndarray) -> float:
    """The error of ``label``'s metric (:data:`METRICS`)."""
    return float(np.mean(image_errors(label, predicted, truth)))


def variant_name(combine: str, members: int) -> str:
    """``"pooled"`` for one set of elements, ``"pooled x3"`` for the mean of three."""
    return combine if members == 1 else f"{combine} x{members}"


def label_variants(label: str, tune: bool) -> list[tuple[str, int]]:
    """``(combine, members)`` to score: the label's own (:data:`COMBINE`, :data:`MEMBERS`);
    with ``tune`` every combiner with one set of elements, then the label's combiner with
    2 to :data:`MAX_MEMBERS` sets."""
    if not tune:
        return [(COMBINE[label], MEMBERS[label])]
    return [(c, 1) for c in COMBINERS] + [(COMBINE[label], k) for k in range(2, MAX_MEMBERS + 1)]


def run_label(label, y, P, W, splits, settings, quiet, variants=None, counts=(None, None),
              groups=None, subsets=None):  # fmt: skip
    """Fit both methods on every ``(learn, check)`` split of one label (index arrays or masks
    into ``y``, the HOG patches ``P`` and whole-image HOG ``W``): their mean errors over the
    splits, the 95 % interval of each variant's error less the whole image's (images
    resampled in pairs, or whole ``groups`` of alike images), and the first set of elements
    fitted on the first split for the first variant.

    ``variants``: ``(combine, members)`` to score (default: the label's own,
    :func:`label_variants`); the first is the one reported as ``midlevel_error``. The sets
    of one combiner are fitted once: ``x2`` is the mean of ``x1``'s set and the next.
    ``counts``: ``(seeds, keep)`` for every combiner instead of :data:`ELEMENTS`.
    ``subsets``: named masks over the images (Nordland's frames without the near-black
    ones); each gets the first variant's and the whole image's error over the checked
    images in it, and the interval of their difference."""
    from placeprint.evaluate.uncertainty import paired_gain_interval
    from placeprint.midlevel.elements import whole_image_regression
    from placeprint.midlevel.ensemble import ElementEnsemble

    t0 = time.perf_counter()
    variants = variants or label_variants(label, False)
    most = {}  # combine -> the most sets any of its variants asks for
    for combine, members in variants:
        most[combine] = max(most.get(combine, 0), members)
    names = [variant_name(*v) for v in variants]
    fitted = None
    mid_errors: dict[str, list[np.ndarray]] = {v: [] for v in names}  # per fold, image
    whole_errors, checked = [], []
    for learn, check in splits:
        for combine, members in most.items():
            model = ElementEnsemble(element_settings(settings, combine, *counts), members)
            each = model.fit(P[learn], y[learn]).member_predictions(P[check])
            for c, k in variants:
                if c == combine:
                    predicted = each[:k].mean(axis=0)
                    mid_errors[variant_name(c, k)].append(image_errors(label, predicted, y[check]))
            fitted = fitted or (model.members_[0], learn)
        whole = whole_image_regression(W[learn], y[learn]).predict(W[check])
        whole_errors.append(image_errors(label, np.clip(whole, y[learn].min(), y[learn].max()),
                                         y[check]))  # fmt: skip
        checked.append(np.arange(len(y))[check])
    by_fold = {v: [float(e.mean()) for e in errs] for v, errs in mid_errors.items()}
    whole_by_fold = [float(e.mean()) for e in whole_errors]
    by_variant = {v: float(np.mean(errs)) for v, errs in by_fold.items()}
    checked = np.concatenate(checked)  # each image in one fold's check at most
    whole_errors = np.concatenate(whole_errors)
    resample = None if groups is None else np.asarray(groups)[checked]
    difference = {v: float(np.concatenate(errs).mean() - whole_errors.mean())
                  for v, errs in mid_errors.items()}  # fmt: skip
    interval = {v: list(paired_gain_interval(np.concatenate(errs), whole_errors, groups=resample))
                for v, errs in mid_errors.items()}  # fmt: skip
    element, learn = fitted
    reported = names[0]
    within = {}
    for name, mask in (subsets or {}).items():
        keep = np.asarray(mask, bool)[checked]
        mid, whole = np.concatenate(mid_errors[reported])[keep], whole_errors[keep]
        within[name] = {
            "checked": int(keep.sum()),
            "midlevel_error": float(mid.mean()),
            "whole_image_error": float(whole.mean()),
            "difference_interval": list(paired_gain_interval(
                mid, whole, groups=None if resample is None else resample[keep])),
        }  # fmt: skip
    out = {
        "metric": METRICS[label],
        "train_images": len(y[learn]),
        "test_images": sum(len(y[check]) for _, check in splits),
        "folds": len(splits),
        "combine": variants[0][0],
        "members": variants[0][1],
        "midlevel_error": by_variant[reported],
        "midlevel_error_by_variant": by_variant,
        "midlevel_error_by_fold": by_fold,
        "whole_image_error": float(np.mean(whole_by_fold)),
        "whole_image_error_by_fold": whole_by_fold,
        "difference": difference[reported],
        "difference_interval": interval[reported],
        "difference_by_variant": difference,
        "difference_interval_by_variant": interval,
        "difference_resampled": "images"
        if groups is None
        else f"stretches of {STRETCH_FRAMES} frames",
        "elements": int(element.detectors_.shape[0]),
        "seeds": element.settings.seeds,
        "bins": int(element.detectors_.shape[1]),
        "subsets": within,
        "seconds": time.perf_counter() - t0,
    }
    if not quiet:
        mid = ", ".join(f"{k} {v:.3f}" for k, v in by_variant.items())
        print(f"{label}: mid-level {mid}; whole image {out['whole_image_error']:.3f} "
              f"({out['seconds']:.0f} s)", flush=True)  # fmt: skip
        for name, r in within.items():
            print(f"  {name} ({r['checked']} images): mid-level {r['midlevel_error']:.3f}; "
                  f"whole image {r['whole_image_error']:.3f}", flush=True)  # fmt: skip
    return out, fitted


def _difference(row: dict) -> str:
    """``-0.003 (-0.010 to +0.004)``: the error difference of a label's variant and its
    interval; when several were scored (``--tune``), of the one with the lowest error
    (fewer sets of elements on a tie), named first (``pooled x3 -0.014 (...)``)."""
    errors = row["midlevel_error_by_variant"]
    best = best_variant(errors) if len(errors) > 1 else next(iter(errors))
    difference = row["difference_by_variant"][best]
    low, high = row["difference_interval_by_variant"][best]
    fmt = "{:+.3f}" if abs(difference) < 10 else "{:+,.0f}"
    text = f"{fmt.format(difference)} ({fmt.format(low)} to {fmt.format(high)})"
    return f"{best} {text}" if len(errors) > 1 else text


def best_variant(errors: dict[str, float]) -> str:
    """The variant with the lowest error; on a tie, the one scored first (fewer sets)."""
    return min(errors, key=errors.get)  # min keeps the first of equals


def label_data(label: str, a, cache: dict):
    """``(images, y, P, W, splits, layout, groups, subsets)`` of one label for this run
    (test or tuning); ``groups``: Nordland's stretches (:data:`STRETCH_FRAMES`), None for
    style; ``subsets``: Nordland's frames without the near-black ones (:data:`LIT`)."""
    from placeprint.midlevel.data import (
        nordland_labelled,
        nordland_test_split,
        style_views,
        tuning_folds,
    )
    from placeprint.midlevel.hog import HogLayout, describe_images

    if label == "style":
        layout = HogLayout(size=(160, 120), cell=10, window=4)
        train = style_views(a.style_train, "train", a.seed)
        check = style_views(a.style_test, "val" if a.tune else "test", a.seed)
        images = list(train[0]) + list(check[0])
        n = len(train[1])
        splits = [(np.arange(n), np.arange(n, len(images)))]
        return (images, np.concatenate([train[1], check[1]]), *describe_images(images, layout),
                splits, layout, None, {})  # fmt: skip
    from placeprint.config import data_available

    if not data_available("nordland"):
        raise PlaceprintError(
            "real data not found: set PLACEPRINT_DATA to the folder holding nordland/ "
            "(default ../shared/data)"
        )
    if "nordland" not in cache:  # both Nordland labels share the frames and their HOG
        images, frames, season, dark = nordland_labelled()
        layout = HogLayout()
        cache["nordland"] = (images, frames, season, dark, *describe_images(images, layout),
                             layout)  # fmt: skip
    images, frames, season, dark, P, W, layout = cache["nordland"]
    splits = tuning_folds(label, frames) if a.tune else [nordland_test_split(frames)]
    groups = np.ceil(frames / STRETCH_FRAMES).astype(int)
    y = season if label == "season" else frames
    return images, y, P, W, splits, layout, groups, {LIT: ~dark}


def midlevel_main(argv: list[str], prog: str = "benchmarks/midlevel.py") -> dict:
    """Mid-level elements vs whole-image regression on every label: table, JSON, plots."""
    from placeprint.evaluate.benchargs import Parser, finish
    from placeprint.evaluate.report import print_table, run_metadata
    from placeprint.midlevel.elements import ElementSettings

    p = Parser(prog=prog, description=midlevel_main.__doc__)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--plots", type=Path, default=None, help="folder for the figures")
    p.add_argument("--labels", default=",".join(LABELS), help="any of season,position,style")
    p.add_argument("--style-train", type=int, default=600, help="synthetic photos to learn")
    p.add_argument("--style-test", type=int, default=200, help="synthetic photos to test")
    p.add_argument("--seeds", type=int, default=None,
                   help="candidate elements mined (default: the combiner's own)")  # fmt: skip
    p.add_argument("--keep", type=int, default=None,
                   help="style-sensitive elements kept (default: the combiner's own)")  # fmt: skip
    p.add_argument("--members", type=int, default=None,
                   help="sets of elements a reading averages (default: the label's)")  # fmt: skip
    p.add_argument("--per-bin", type=int, default=25, help="correspondences a label bin")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tune", action="store_true",
                   help="score every combiner, and the label's with 2 to 5 sets of elements, "
                   "on tuning data only (folds of Nordland frames <= 20000, the validation "
                   "city)")  # fmt: skip
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    labels = [x.strip() for x in a.labels.split(",") if x.strip()]
    unknown = [x for x in labels if x not in LABELS]
    if unknown or not labels:
        raise PlaceprintError(f"{prog}: --labels takes {', '.join(LABELS)}; got {a.labels!r}")
    counts = (a.style_train, a.style_test, a.per_bin, a.seeds, a.keep, a.members)
    if min(x for x in counts if x is not None) < 1:
        raise PlaceprintError(f"{prog}: counts must be >= 1")
    if a.tune and a.members is not None:
        raise PlaceprintError(f"{prog}: --tune scores 1 to {MAX_MEMBERS} sets; drop --members")
    settings = ElementSettings(per_bin=a.per_bin, seed=a.seed)
    settings.check()
    rows, fitted, cache = {}, {}, {}
    for label in labels:
        images, y, P, W, splits, layout, groups, subsets = label_data(label, a, cache)
        variants = label_variants(label, a.tune)
        if a.members is not None:
            variants = [(variants[0][0], a.members)]
        rows[label], (model, learn) = run_label(label, y, P, W, splits, settings, a.quiet,
                                                variants, (a.seeds, a.keep), groups,
                                                subsets)  # fmt: skip
        fitted[label] = (model, [images[i] for i in np.arange(len(y))[learn]], layout)
    # --tune: every label scores mean, stacked, pooled, then its own combiner x2 ... x5
    scored = [v.split(" ")[-1] for v in next(iter(rows.values()))["midlevel_error_by_variant"]]
    print_table(
        "Style-aware mid-level elements vs whole-image regression (same HOG)"
        + (", tuning folds (mean); xK: the label's combiner, mean of K sets" if a.tune else ""),
        ["label", "metric"]
        + ([f"mid-level {c}" for c in scored] if a.tune else ["combine", "sets", "mid-level"])
        + ["whole image", ("best, " if a.tune else "") + "mid-level less whole (95 %)",
           "elements", "folds", "checked"],
        [[k, r["metric"], *([] if a.tune else [r["combine"], r["members"]]),
          *r["midlevel_error_by_variant"].values(), r["whole_image_error"], _difference(r),
          r["elements"], r["folds"], r["test_images"]] for k, r in rows.items()],
    )  # fmt: skip
    out = {
        **run_metadata(prog, argv),
        "data": "season, position: real Nordland frames; style: synthetic cities",
        "split": "tuning (Nordland folds of frames <= 20000: season each block of 5,000 held "
        "out, position forward; style: validation city)"
        if a.tune
        else "test (Nordland <= 20000 learn, 20010-25000 test; style: test city)",
        "settings": {  # shared by every combiner; each label's own combine and counts below
            **{k: v for k, v in settings.__dict__.items() if k not in ("combine", "seeds", "keep")},
            "elements": {k: list(v) for k, v in ELEMENTS.items()},
            "seeds": a.seeds,
            "keep": a.keep,
            "members": a.members,
        },
        "midlevel_error": {k: r["midlevel_error"] for k, r in rows.items()},
        "whole_image_error": {k: r["whole_image_error"] for k, r in rows.items()},
        "midlevel_beats_whole_image": {
            k: r["midlevel_error"] < r["whole_image_error"] for k, r in rows.items()
        },
        "difference_interval": {k: r["difference_interval"] for k, r in rows.items()},
        "without_near_black_frames": {
            k: r["subsets"][LIT] for k, r in rows.items() if LIT in r["subsets"]
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

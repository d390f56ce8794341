"""Every describer family on real data: Nordland winter -> summer and Lund street photos.

Per family: descriptor dimension, ms per image, Nordland single-frame R@1/R@5,
sequence R@1 at L = 10 and 50 with full descriptors (brute-force SeqSLAM) and with
8-byte codes (the compact index), the share of code bits that agree between seasons,
the probability that the true key is among the probed buckets, and Lund
leave-one-out R@1 within 25 m. Learners are fitted on summer frames <= 20000
(positives for CRN: the winter frames of the same places <= 20000); results are
reported on frames 20010-25000 ("test") and on all frames.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass

import numpy as np

from placeprint.errors import PlaceprintError
from placeprint.evaluate.pipeline import RealRoute
from placeprint.evaluate.recall import distinct_top

DEFAULT_FAMILIES = (
    "seqslam",
    "tiny",
    "lab_hist",
    "gist",
    "texton",
    "lines",
    "im2gps",
    "bow",
    "vlad",
    "cnn_gem",
    "cnn_netvlad",
    "crn",
)
LUND_RADIUS_M = 25.0


@dataclass
class Lund:
    """The Lund walk: files and EXIF positions (degrees)."""

    files: list
    lat: np.ndarray
    lon: np.ndarray


def load_lund() -> Lund:
    """Lund photos and their EXIF GPS positions."""
    from placeprint.config import data_path
    from placeprint.describe.images import list_images
    from placeprint.geo.exif import read_gps

    files = list_images(data_path("geotagged", "lund"))
    fixes = [read_gps(f) for f in files]
    return Lund(files, np.array([f.lat for f in fixes]), np.array([f.lon for f in fixes]))


def fit_describer(name: str, database: list, positives: list | None = None, **options):
    """Describer ``name`` fitted on ``database`` images (and ``positives`` if it takes them)."""
    from placeprint import describe

    d = describe.get(name, **options)
    if d.learns:
        if positives is not None and "positives" in inspect.signature(d.fit).parameters:
            d.fit(database, positives=positives)
        else:
            d.fit(database)
    return d


def native_metric(name: str) -> str:
    """How a family's vectors are compared: SAD for SeqSLAM (its own), L2 for the rest."""
    return "sad" if name == "seqslam" else "euclidean"


def ms_per_image(describer, images: list, warmup: int = 2) -> float:
    """Median-free simple timing: ms per image over ``images`` in one process, after warm-up."""
    describer(images[:warmup])
    t0 = time.perf_counter()
    describer(images)
    return (time.perf_counter() - t0) * 1000.0 / len(images)


def single_frame_recall(route: RealRoute, ks=(1, 5), metric: str = "euclidean") -> dict:
    """Nearest summer frame of each winter frame: R@k per subset (correct: |diff| <= 2).

    ``metric``: ``"euclidean"`` or ``"sad"`` (SeqSLAM's mean absolute difference).
    """
    from placeprint.evaluate.recall import recall_at
    from placeprint.sequence.seqslam import difference_matrix

    db, q = route.database.astype(np.float32), route.queries.astype(np.float32)
    d2 = difference_matrix(db, q, metric)
    n = len(q)
    predicted = np.full((n, max(ks)), -1, np.int64)
    positions = np.arange(len(db))
    for i in range(n):
        top = distinct_top(positions, d2[i], max(ks))
        predicted[i, : len(top)] = positions[top]
    truth = np.arange(n)
    out = {}
    for name, mask in route.subsets().items():
        r = recall_at(predicted[mask], truth[mask], ks=ks)
        for k in ks:
            out[f"r{k}_{name}"] = r[k]
    return out


def sequence_recall(route: RealRoute, lengths=(10, 50), stride: int = 5, quiet: bool = True):
    """Sequence R@1 with full descriptors (SeqSLAM) and 8-byte codes (compact index)."""
    from placeprint.evaluate.harness import evaluate
    from placeprint.evaluate.pipeline import fit_pipeline
    from placeprint.index import OverloadedIndex
    from placeprint.sequence.matcher import SequenceMatcher
    from placeprint.sequence.seqslam import SeqSLAM

    pipe = fit_pipeline(route, code_size=7)
    index = OverloadedIndex(pipe.codec, describer=route.describer)
    index.add(pipe.database)
    index.build()
    metric = native_metric(route.describer.get("name"))
    searches = {
        "codes": (SequenceMatcher(index).match, pipe.queries),
        "full": (SeqSLAM(metric=metric).fit(route.database).search, route.queries),
    }
    truth = np.arange(len(route.queries))
    res = evaluate(searches, truth, lengths, route.subsets(), stride, quiet)
    stats = code_statistics(pipe, index, route)
    return res, stats, index.bytes_per_place()


def code_statistics(pipe, index, route: RealRoute, length: int = 50) -> dict:
    """Bit agreement summer/winter and P(true key among the probed buckets), test frames."""
    from placeprint.sequence.matcher import SequenceMatcher

    test = route.subsets()["test"]
    bits = lambda x: np.unpackbits(pipe.codec.encode(x), axis=1, bitorder="little")  # noqa: E731
    agree = float((bits(pipe.database[test]) == bits(pipe.queries[test])).mean())
    true_keys = index.keys_in_route_order().astype(np.int64)
    matcher = SequenceMatcher(index)
    probes = matcher.probed_keys(pipe.queries[test], length=length)
    hit = (probes == true_keys[np.flatnonzero(test)][:, None]).any(axis=1)
    return {
        "bit_agreement_test": agree,
        "key_hit_rate_test": float(hit.mean()),
        "probes_per_frame": int(probes.shape[1]),
        "key_bits": int(index.key_bits),
    }


def lund_recall(describer_name: str, lund: Lund, radius_m: float = LUND_RADIUS_M, **options):
    """Leave-one-out on Lund: is the nearest other photo (L2) within ``radius_m`` metres?"""
    from placeprint.geo.distance import pairwise_km

    d = fit_describer(describer_name, lund.files, **options)
    X = d(lund.files)
    d2 = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    nearest = d2.argmin(1)
    metres = pairwise_km(lund.lat, lund.lon) * 1000.0
    ok = metres[np.arange(len(X)), nearest] <= radius_m
    return float(ok.mean()), ms_per_image(d, lund.files[:4], warmup=1), X


def describe_nordland(name: str, quiet: bool = True, cache=True, **options):
    """Fit ``name`` on summer frames <= 20000 and describe both seasons (cached)."""
    from placeprint.datasets.nordland import load_nordland
    from placeprint.evaluate.pipeline import TUNE_LAST_FRAME
    from placeprint.sources import describe_files

    nordland = load_nordland()
    m = int(np.searchsorted(nordland.frames, TUNE_LAST_FRAME, side="right"))
    d = fit_describer(name, nordland.summer[:m], positives=nordland.winter[:m], **options)
    summer, kept_s = describe_files(d, nordland.summer, progress=not quiet, cache=cache)
    winter, kept_w = describe_files(d, nordland.winter, progress=not quiet, cache=cache)
    if len(kept_s) != len(nordland) or len(kept_w) != len(nordland):
        raise PlaceprintError("some Nordland frames could not be read")
    route = RealRoute(summer, winter, nordland.dark_mask(), nordland.frames, d.config())
    return route, d


def family_experiment(
    name: str, lund: Lund | None, quiet: bool = True, rerank: bool = True, **options
) -> dict:
    """All measurements of one describer family."""
    from placeprint.datasets.nordland import load_nordland

    t0 = time.perf_counter()
    route, d = describe_nordland(name, quiet=quiet, **options)
    seconds_describe = time.perf_counter() - t0
    nordland = load_nordland()
    frames = nordland.summer[:64]
    out = {
        "name": name,
        "config": d.config(),
        "dim": int(d.dim),
        "ms_per_image": ms_per_image(d, frames),
        "seconds_fit_and_describe": seconds_describe,
        "nordland_single": single_frame_recall(route, metric=native_metric(name)),
        "nordland_single_metric": native_metric(name),
    }
    seq, stats, bpp = sequence_recall(route)
    out["nordland_sequence"] = {
        kind: {f"L{r['length']}": r for r in rows} for kind, rows in seq.items()
    }
    out["codes"] = {**stats, "bytes_per_place_2500": bpp, "code_size": 7}
    if rerank:
        test = np.flatnonzero(route.subsets()["test"])
        out["rerank_nordland"] = rerank_gain(
            route.database,
            route.queries,
            nordland.summer,
            nordland.winter,
            lambda i, j: abs(i - j) <= 2,
            queries=test[::5],
        )
    if lund is not None:
        r1, ms, X = lund_recall(name, lund, **options)
        out["lund_r1_25m"] = r1
        out["lund_ms_per_image"] = ms
        if rerank:
            from placeprint.geo.distance import pairwise_km

            metres = pairwise_km(lund.lat, lund.lon) * 1000.0
            out["rerank_lund"] = rerank_gain(
                X, X, lund.files, lund.files, lambda i, j: metres[i, j] <= 25.0, exclude_self=True
            )
    return out


def throughput(n: int = 32, seed: int = 0) -> dict:
    """Images per second of the deep describers on random images, 224x224 and 640x480.

    ``cnn_gem`` as configured by default, and the whole MobileNetV2 (last layer, global
    GeM, as used for photos) at each input size; ``native_threads`` onnxruntime threads.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for w, h in ((224, 224), (640, 480)):
        images = [rng.uniform(0, 255, (h, w, 3)).astype(np.float32) for _ in range(n)]
        for label, options in (
            ("cnn_gem default", {}),
            (
                "MobileNetV2 full + GeM",
                {
                    "layer": "last",
                    "image_size": (w, h),
                    "grid": (1, 1),
                    "p": 3.0,
                    "whiten_dims": None,
                },
            ),
        ):
            d = fit_describer("cnn_gem", images[:8], **options)
            d(images[:4])
            t0 = time.perf_counter()
            d(images)
            out[f"{label} @ {w}x{h}"] = n / (time.perf_counter() - t0)
    return out


def describers_main(argv: list[str], prog: str = "benchmarks/describers.py") -> dict:
    """Every describer family on Nordland and Lund: table, JSON and plots."""
    from pathlib import Path

    from placeprint.evaluate.benchargs import Parser, finish
    from placeprint.evaluate.report import portable_argument, run_metadata

    p = Parser(prog=prog, description=describers_main.__doc__)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--plots", type=Path, default=None, help="folder for the figures")
    p.add_argument(
        "--families",
        type=lambda s: tuple(x for x in s.split(",") if x),
        default=DEFAULT_FAMILIES,
        help="comma-separated describer names",
    )
    p.add_argument("--no-lund", action="store_true", help="skip the Lund photos")
    p.add_argument("--no-rerank", action="store_true", help="skip geometric re-ranking")
    p.add_argument(
        "--reuse",
        type=Path,
        default=None,
        help="earlier JSON of this benchmark: families measured there (same commit's "
        "describers) are copied instead of measured again",
    )
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    import json

    from placeprint import describe
    from placeprint.config import data_available

    unknown = [f for f in a.families if f not in describe.available()]
    if unknown:
        raise PlaceprintError(f"unknown describer(s) {', '.join(unknown)}")
    if not data_available("nordland"):
        raise PlaceprintError(
            "real data not found: set PLACEPRINT_DATA to the folder holding nordland/ "
            "(default ../shared/data)"
        )
    lund = None if a.no_lund else load_lund()
    earlier = {}
    if a.reuse is not None:
        try:
            earlier = {
                f["name"]: f
                for f in json.loads(a.reuse.read_text())["families"]
                if "error" not in f
            }
        except (OSError, ValueError, KeyError) as exc:
            raise PlaceprintError(f"cannot reuse {a.reuse}: {exc}") from None
    families = []
    for name in a.families:
        if name in earlier:
            families.append({**earlier[name], "reused_from": portable_argument(str(a.reuse))})
            continue
        if not a.quiet:
            print(f"[{name}]", flush=True)
        try:
            families.append(family_experiment(name, lund, quiet=a.quiet, rerank=not a.no_rerank))
        except PlaceprintError as exc:  # one family failing must not lose the others
            print(f"[{name}] failed: {exc}", flush=True)
            families.append({"name": name, "error": str(exc)})
        if a.json:  # keep what is done so far (usable with --reuse after an interruption)
            from placeprint.evaluate.report import write_json

            write_json(a.json, {**run_metadata(prog, argv), "families": families, "partial": True})
    out = {**run_metadata(prog, argv), "families": families}
    if any(f.startswith("cnn") for f in a.families):
        out["deep_images_per_second"] = throughput()
        for key, value in out["deep_images_per_second"].items():
            print(f"throughput {key}: {value:.0f} images/s")
    done = [f for f in families if "error" not in f]
    out["summary"] = summarise(done)
    print_describers({**out, "families": done})
    if a.plots:
        out["plots"] = [str(plot_describers(done, a.plots))]
    return finish(out, a.json)


def summarise(families: list[dict]) -> dict:
    """The issue's targets: best single-frame R@1 vs SeqSLAM, and codes vs full at L=50.

    The best family is chosen on the held-out test frames (learners saw frames <= 20000,
    so "all" flatters them); both splits are reported.
    """
    by = {f["name"]: f for f in families}
    out: dict = {}
    if "seqslam" not in by:
        return out
    best = max(families, key=lambda f: f["nordland_single"]["r1_test"])
    out["best_family"] = best["name"]
    for split in ("test", "all"):
        anchor = by["seqslam"]["nordland_single"][f"r1_{split}"]
        value = best["nordland_single"][f"r1_{split}"]
        out[f"seqslam_single_r1_{split}"] = anchor
        out[f"best_single_r1_{split}"] = value
        out[f"best_over_seqslam_{split}"] = value / max(anchor, 1e-9)
        seq = best["nordland_sequence"]
        full = seq["full"]["L50"][f"r1_{split}"]
        codes = seq["codes"]["L50"][f"r1_{split}"]
        out[f"best_codes_over_full_L50_{split}"] = codes / max(full, 1e-9)
    return out


def print_describers(out: dict) -> None:
    """The per-family table."""
    from placeprint.evaluate.report import print_table

    rows = []
    for f in out["families"]:
        s, q = f["nordland_single"], f["nordland_sequence"]
        rows.append(
            [
                f["name"],
                f["dim"],
                f["ms_per_image"],
                s["r1_test"],
                s["r1_all"],
                s["r5_all"],
                q["full"]["L10"]["r1_all"],
                q["full"]["L50"]["r1_all"],
                q["codes"]["L10"]["r1_all"],
                q["codes"]["L50"]["r1_all"],
                q["codes"]["L50"]["r1_test"],
                f["codes"]["bit_agreement_test"],
                f["codes"]["key_hit_rate_test"],
                f.get("lund_r1_25m", float("nan")),
            ]
        )
    print_table(
        "Describers: Nordland winter -> summer (2,500 places) and Lund (29 photos)",
        [
            "family",
            "dim",
            "ms/img",
            "R@1 test",
            "R@1 all",
            "R@5 all",
            "full L10",
            "full L50",
            "8B L10",
            "8B L50",
            "8B L50 test",
            "bits agree",
            "key hit",
            "Lund R@1 25m",
        ],
        rows,
    )
    rr = [f for f in out["families"] if "rerank_nordland" in f or "rerank_lund" in f]
    if rr:
        rows = []
        for f in rr:
            n, lu = f.get("rerank_nordland", {}), f.get("rerank_lund", {})
            rows.append(
                [
                    f["name"],
                    n.get("r1_before"),
                    n.get("r1_after"),
                    n.get("ms_per_query_p50"),
                    lu.get("r1_before"),
                    lu.get("r1_after"),
                    lu.get("verified_share"),
                    lu.get("ms_per_query_p50"),
                ]
            )
        print_table(
            "Geometric re-ranking of the top 10 (Nordland: every 5th test query; Lund: all)",
            [
                "family",
                "Nordland R@1",
                "after",
                "ms/query",
                "Lund R@1 25m",
                "after",
                "verified",
                "ms/query",
            ],
            rows,
        )
    s = out.get("summary", {})
    if s:
        for split in ("test", "all"):
            print(
                f"[{split} frames] best single-frame family {s['best_family']}: R@1 "
                f"{s[f'best_single_r1_{split}']:.3f} = {s[f'best_over_seqslam_{split}']:.2f}x "
                f"SeqSLAM ({s[f'seqslam_single_r1_{split}']:.3f}); its 8-byte codes keep "
                f"{s[f'best_codes_over_full_L50_{split}']:.0%} of full-descriptor R@1 at L=50"
            )


def plot_describers(families: list[dict], folder) -> object:
    """Bar chart: single-frame R@1 and sequence R@1 (full vs 8-byte codes) per family."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from placeprint.evaluate.report import save_figure

    names = [f["name"] for f in families]
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    axes[0].bar(x - 0.2, [f["nordland_single"]["r1_all"] for f in families], 0.4, label="R@1")
    axes[0].bar(x + 0.2, [f["nordland_single"]["r5_all"] for f in families], 0.4, label="R@5")
    axes[0].set_title("Nordland single frame, all frames")
    for i, (kind, L) in enumerate([("full", 10), ("codes", 10), ("full", 50), ("codes", 50)]):
        vals = [f["nordland_sequence"][kind][f"L{L}"]["r1_all"] for f in families]
        axes[1].bar(x - 0.3 + 0.2 * i, vals, 0.2, label=f"{kind} L={L}")
    axes[1].set_title("Nordland sequence R@1, all frames (codes: 7-byte index)")
    for ax in axes:
        ax.set_xticks(x, names, rotation=45, ha="right")
        ax.set_ylim(0, 1.02)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    return save_figure(fig, folder / "describers.png")


def rerank_gain(
    X_db: np.ndarray,
    X_q: np.ndarray,
    db_images: list,
    q_images: list,
    correct,
    exclude_self: bool = False,
    top_k: int = 10,
    queries: np.ndarray | None = None,
) -> dict:
    """R@1 before and after geometric re-ranking of the top ``top_k`` (L2) candidates.

    ``correct(i, j)`` says whether database item ``j`` is a right answer for query ``i``.
    Database features are extracted before timing (as an offline system would);
    ``ms_per_query`` covers query extraction plus verification of ``top_k`` candidates.
    """
    from placeprint.verify import GeometricReranker

    reranker = GeometricReranker(top_k=top_k)
    cache = reranker.cache(dict(enumerate(db_images)))
    queries = np.arange(len(X_q)) if queries is None else np.asarray(queries)
    d2 = (X_q[queries] ** 2).sum(1)[:, None] + (X_db**2).sum(1)[None] - 2 * X_q[queries] @ X_db.T
    if exclude_self:
        d2[np.arange(len(queries)), queries] = np.inf
    top = np.argsort(d2, axis=1, kind="stable")[:, :top_k]
    for j in np.unique(top):
        cache(int(j))
    before = after = verified = 0
    seconds = []
    for row, i in enumerate(queries):
        cand = [int(j) for j in top[row]]
        result = reranker.rerank(q_images[i], cand, -d2[row, top[row]], fetch=cache)
        seconds.append(result.seconds)
        before += bool(correct(i, cand[0]))
        after += bool(correct(i, cand[int(result.order[0])]))
        verified += bool(result.verified)
    n = len(queries)
    return {
        "queries": int(n),
        "top_k": top_k,
        "r1_before": before / n,
        "r1_after": after / n,
        "verified_share": verified / n,
        "ms_per_query_p50": float(np.median(seconds) * 1000),
    }

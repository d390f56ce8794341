"""Cross-view retrieval on synthetic test areas: ``python benchmarks/crossview.py --help``.

The CVUSA protocol on the synthetic city (:mod:`placeprint.crossview`): every ground view
of the test area against all its aerial tiles (``--test`` of them, 1,000 by default);
R@1, R@5, R@10, R@top-1 %, the heading error (DSM) and the milliseconds a query takes
(describing it and scoring every tile). Each row of the table is one model trained on
the train area, its epochs' validation recall drawn as a curve; the best model is the
one with the best *validation* R@1 at 360 degrees (the test area is only scored).

Rows: SAFA with and without the polar transform; CVM-Net-I and -II (NetVLAD); every loss
on SAFA; SAFA with FCAM, U-V channels, orientation regression; DSM at 360 degrees
(scored at 360, 180 and 90 degrees) and DSM trained for 90-degree views. Pair sets are
made once in ``--work`` (default: a folder under the system's temporary folder) and
reused; trained models are kept there as checkpoints, and a row whose checkpoint is
complete is not trained again (``--retrain`` forces it).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from placeprint.errors import PlaceprintError

BASE = {"aggregation": "safa"}
ROWS: dict[str, tuple[dict, dict, tuple[float, ...]]] = {
    # name: (model options, training options, fields of view scored); "epoch_scale" in
    # the training options multiplies --epochs for that row
    "SAFA, polar, weighted soft-margin": (BASE, {}, (360.0,)),
    "SAFA, no polar": (
        {**BASE, "polar": False, "aerial_size": (128, 128)},
        {},
        (360.0,),
    ),
    "DSM, 360-degree training": (
        {"aggregation": "dsm"},
        {"random_heading": True},
        (360.0, 180.0, 90.0),
    ),
    "DSM, 90-degree training": (
        # its validation recall was still rising after 12 epochs: 6x the epochs (about
        # 18 minutes on 2 cores, inside the 30-minute training budget)
        {"aggregation": "dsm"},
        {"random_heading": True, "fov_deg": 90.0, "epoch_scale": 6},
        (90.0,),
    ),
    "CVM-Net-I (NetVLAD each), polar": ({"aggregation": "netvlad"}, {}, (360.0,)),
    "CVM-Net-II (shared NetVLAD), polar": ({"aggregation": "netvlad_shared"}, {}, (360.0,)),
    "SAFA, triplet (margin 0.2)": (BASE, {"loss": "triplet"}, (360.0,)),
    "SAFA, soft-margin": (BASE, {"loss": "soft_margin"}, (360.0,)),
    "SAFA, quadruplet": (BASE, {"loss": "quadruplet"}, (360.0,)),
    "SAFA, weighted soft-margin quadruplet": (
        BASE,
        {"loss": "weighted_soft_margin_quadruplet"},
        (360.0,),
    ),
    "SAFA, HER": (BASE, {"loss": "her"}, (360.0,)),
    "SAFA + FCAM": ({**BASE, "fcam": True}, {}, (360.0,)),
    "SAFA + U-V channels": ({**BASE, "uv": True}, {}, (360.0,)),
    "SAFA + orientation regression (random headings)": (
        {**BASE, "orientation": True},
        {"random_heading": True},
        (360.0,),
    ),
}
QUICK = ("SAFA, polar, weighted soft-margin", "SAFA, no polar", "DSM, 360-degree training")


def _pairs(work: Path, area: str, count: int, seed: int):
    from placeprint.crossview.pairs import PairSet, make_pairs

    path = work / f"{area}_{count}_seed{seed}.npz"
    if path.exists():
        return PairSet.load(path)
    t0 = time.perf_counter()
    pairs = make_pairs(count, area, seed)
    pairs.save(path)
    print(f"[made {count} {area} pairs in {time.perf_counter() - t0:.0f} s: {path}]")
    return pairs


def _head(pairs, n: int):
    from placeprint.crossview.pairs import PairSet

    return PairSet(
        pairs.aerial[:n],
        pairs.ground[:n],
        pairs.xy[:n],
        pairs.seasons[:n],
        pairs.hours[:n],
        pairs.meta,
    )


def run_row(name, work, train_pairs, val_pairs, test_pairs, epochs, retrain, quiet) -> dict:
    """Train (or reuse) one row's model and score it on the test area."""
    import torch

    from placeprint.crossview.data import pair_inputs
    from placeprint.crossview.evaluate import encode, random_shifts, score
    from placeprint.crossview.models import ModelConfig, count_parameters
    from placeprint.crossview.train import TrainSettings, load_checkpoint, load_model, train

    model_opts, train_opts, fovs = ROWS[name]
    train_opts = dict(train_opts)
    epochs *= int(train_opts.pop("epoch_scale", 1))  # a row may train longer than --epochs
    config = ModelConfig(**model_opts)
    settings = TrainSettings(epochs=epochs, **train_opts)
    slug = "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_")
    ck = work / f"{slug}.pt"
    done = False
    if ck.exists() and not retrain:
        try:
            c = load_checkpoint(ck)
            done = c["config"] == config and c["settings"] == settings and c["epoch"] >= epochs
        except PlaceprintError:
            done = False
    if not done:
        train(
            train_pairs,
            val_pairs,
            config,
            settings,
            ck,
            resume=not retrain,
            progress=None if quiet else (lambda m: print(f"  {name}: {m}", flush=True)),
        )
    history = load_checkpoint(ck)["history"]
    model = load_model(ck)
    torch.set_num_threads(settings.threads)
    G, A = pair_inputs(test_pairs, config)
    aerial = encode(model, A, ground=False)
    rng = np.random.default_rng(2024)
    scores = {}
    for fov in fovs:
        shift = random_shifts(rng, len(G), G.shape[-1]) if settings.random_heading else None
        scores[f"{fov:g}"] = score(model, G, aerial, fov, shift)
    return {
        "name": name,
        "model": config.to_dict(),
        "training": asdict(settings),
        "parameters": count_parameters(model),
        "train_seconds": float(sum(history.seconds)),
        "val_r1_by_epoch": history.val_r1,
        "loss_by_epoch": history.loss,
        "val_r1": history.val_r1[-1],
        "test": scores,
    }


def plot(rows: list[dict], folder: Path) -> list[Path]:
    """Validation R@1 by epoch for every row, and test R@1 / R@top-1 % bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from placeprint.evaluate.report import save_figure

    fig, ax = plt.subplots(figsize=(8, 5))
    colours = plt.get_cmap("tab20").colors
    for i, r in enumerate(rows):  # a colour and a line style a row: no two lines alike
        ax.plot(
            np.arange(1, len(r["val_r1_by_epoch"]) + 1),
            r["val_r1_by_epoch"],
            label=r["name"],
            color=colours[i % len(colours)],
            linestyle=("-", "--", ":")[i % 3],
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation R@1 (train fov)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    curves = save_figure(fig, folder / "crossview_recall_by_epoch.png")
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(rows) + 1.5))
    labels, r1, top = [], [], []
    for r in rows:
        for fov, s in r["test"].items():
            labels.append(f"{r['name']} @ {fov} deg")
            r1.append(s["r1"])
            top.append(s["r_top1pct"])
    y = np.arange(len(labels))
    ax.barh(y - 0.2, r1, 0.4, label="R@1")
    ax.barh(y + 0.2, top, 0.4, label="R@top-1 %")
    ax.set_yticks(y, labels, fontsize=6)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.legend(fontsize=7)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    bars = save_figure(fig, folder / "crossview_ablations.png")
    return [curves, bars]


def crossview_main(argv: list[str], prog: str = "benchmarks/crossview.py") -> dict:
    """Cross-view retrieval (CVUSA protocol) on synthetic test areas: table, JSON, plots."""
    from placeprint.evaluate.benchargs import Parser, finish
    from placeprint.evaluate.report import print_table, run_metadata

    p = Parser(prog=prog, description=crossview_main.__doc__)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--plots", type=Path, default=None, help="folder for the figures")
    p.add_argument("--work", type=Path, default=None, help="pair sets and checkpoints")
    p.add_argument("--train", type=int, default=6000, help="training pairs")
    p.add_argument("--val", type=int, default=300, help="validation pairs")
    p.add_argument("--test", type=int, default=1000, help="test pairs (candidate tiles)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rows", default="all", help="all, quick, or names joined by ';'")
    p.add_argument("--retrain", action="store_true", help="ignore finished checkpoints")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    if min(a.train, a.val, a.test) < 10 or a.epochs < 1:
        raise PlaceprintError(f"{prog}: need --train/--val/--test >= 10 and --epochs >= 1")
    if a.rows == "all":
        names = list(ROWS)
    elif a.rows == "quick":
        names = list(QUICK)
    else:
        names = [n.strip() for n in a.rows.split(";") if n.strip()]
        unknown = [n for n in names if n not in ROWS]
        if unknown:
            raise PlaceprintError(f"{prog}: unknown row(s) {unknown}; rows: {list(ROWS)}")
    try:
        import torch  # noqa: F401
    except ImportError:
        raise PlaceprintError(f"{prog}: needs torch (make installs torch==2.13.0)") from None
    work = a.work or Path(tempfile.gettempdir()) / "placeprint-crossview"
    work.mkdir(parents=True, exist_ok=True)
    train_pairs = _pairs(work, "train", a.train, a.seed)
    val_pairs = _head(_pairs(work, "val", max(a.val, 300), a.seed), a.val)
    test_pairs = _pairs(work, "test", a.test, a.seed)
    rows = [
        run_row(n, work, train_pairs, val_pairs, test_pairs, a.epochs, a.retrain, a.quiet)
        for n in names
    ]
    table = []
    for r in rows:
        for fov, s in r["test"].items():
            table.append(
                [
                    r["name"],
                    fov,
                    s["r1"],
                    s["r5"],
                    s["r10"],
                    s["r_top1pct"],
                    s["heading_error_median_deg"],
                    s["query_ms"],
                    r["train_seconds"],
                ]
            )
    print_table(
        f"Cross-view, synthetic test area: {len(test_pairs)} views x {len(test_pairs)} tiles",
        ["model", "fov", "R@1", "R@5", "R@10", "R@1%", "heading err", "ms/query", "train s"],
        table,
    )
    full = [r for r in rows if "360" in r["test"]]
    best = max(full, key=lambda r: r["val_r1"]) if full else rows[0]
    dsm = [r for r in rows if r["model"]["aggregation"] == "dsm"]
    fov90 = [r["test"]["90"] for r in dsm if "90" in r["test"]]
    dsm360 = [r["test"]["360"] for r in dsm if "360" in r["test"]]
    b = best["test"].get("360", next(iter(best["test"].values())))
    out = {
        **run_metadata(prog, argv),
        "data": "synthetic cities (placeprint.crossview.world): no real pairs exist offline",
        "pairs": {"train": len(train_pairs), "val": len(val_pairs), "test": len(test_pairs)},
        "best_model": best["name"],
        "selection": "best validation R@1 (360 degrees) after the last epoch",
        "r1": b["r1"],
        "r5": b["r5"],
        "r10": b["r10"],
        "r_top1pct": b["r_top1pct"],
        "r1_fov90": max((s["r1"] for s in fov90), default=None),
        "heading_error_median_deg": min(
            (s["heading_error_median_deg"] for s in dsm360), default=None
        ),
        "heading_error_median_deg_fov90": min(
            (s["heading_error_median_deg"] for s in fov90), default=None
        ),
        "train_seconds": best["train_seconds"],
        "query_ms": b["query_ms"],
        "ablations": rows,
    }
    if a.plots:
        out["plots"] = [str(p) for p in plot(rows, a.plots)]
    return finish(out, a.json)

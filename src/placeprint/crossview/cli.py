"""``placeprint crossview ...``: synthetic ground/aerial pairs (and, later, training)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

crossview_app = typer.Typer(
    help="Cross-view localisation: ground views against aerial tiles.", no_args_is_help=True
)


def _require_torch(what: str) -> None:
    from placeprint.errors import PlaceprintError

    try:
        import torch  # noqa: F401
    except ImportError:
        raise PlaceprintError(f"{what} needs torch (make installs it)") from None


@crossview_app.command("world")
def world_cmd(
    output: Annotated[Path, typer.Option("-o", "--output", help="Pair set to write (.npz).")],
    count: Annotated[int, typer.Option(help="Pairs to draw.")] = 1000,
    area: Annotated[str, typer.Option(help="train, val or test: each is its own city.")] = "train",
    seed: Annotated[int, typer.Option(help="Experiment seed (the same seed, the same bytes).")] = 0,
    size_m: Annotated[float, typer.Option(help="City size (metres a side).")] = 512.0,
    tile_px: Annotated[int, typer.Option(help="Aerial tile size (pixels).")] = 128,
    tile_res_m: Annotated[float, typer.Option(help="Aerial metres a pixel.")] = 0.5,
    pano_width: Annotated[int, typer.Option(help="Panorama width (height is half).")] = 256,
    samples: Annotated[
        Path | None, typer.Option(help="Also draw the first pairs into this PNG.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Generate a synthetic city and draw ground/aerial pairs from its streets."""
    from placeprint.crossview.pairs import AREAS, PairSettings, make_pairs
    from placeprint.crossview.world import WorldConfig
    from placeprint.errors import PlaceprintError

    if area not in AREAS:
        raise PlaceprintError(f"--area must be one of {', '.join(AREAS)}, got {area!r}")
    if output.suffix != ".npz":
        raise PlaceprintError(f"the pair set is written as .npz; give -o NAME.npz, not {output}")
    if not output.parent.is_dir():
        raise PlaceprintError(f"folder does not exist: {output.parent}")
    config = WorldConfig(size_m=size_m)
    settings = PairSettings(tile_px=tile_px, tile_res_m=tile_res_m, pano_width=pano_width)
    config.check()
    settings.check(config)

    def progress(done: int, total: int) -> None:
        if not quiet:
            print(f"rendered {done}/{total} pairs", file=sys.stderr)

    pairs = make_pairs(count, area, seed, config, settings, progress=progress)
    pairs.save(output)
    if samples is not None:
        from placeprint.crossview.sheet import sample_sheet

        sample_sheet(pairs, samples)
    if not quiet:
        typer.echo(f"wrote {output}: {len(pairs)} pairs of the {area} city (seed {seed})")


@crossview_app.command("train")
def train_cmd(
    train_set: Annotated[Path, typer.Argument(help="Training pairs (.npz from `world`).")],
    val_set: Annotated[Path, typer.Argument(help="Validation pairs (another area).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Checkpoint to write (.pt).")],
    aggregation: Annotated[
        str, typer.Option(help="safa, netvlad, netvlad_shared or dsm.")
    ] = "safa",
    polar: Annotated[bool, typer.Option(help="Polar-transform the aerial tiles.")] = True,
    loss: Annotated[str, typer.Option(help="Loss (see placeprint.crossview.losses).")] = (
        "weighted_soft_margin"
    ),
    epochs: Annotated[int, typer.Option(help="Epochs.")] = 15,
    batch: Annotated[int, typer.Option(help="Pairs a batch.")] = 32,
    fov: Annotated[float, typer.Option(help="Ground field of view (degrees).")] = 360.0,
    random_heading: Annotated[bool, typer.Option(help="Turn ground views at random.")] = False,
    uv: Annotated[bool, typer.Option(help="U-V coordinate input channels.")] = False,
    fcam: Annotated[bool, typer.Option(help="FCAM attention.")] = False,
    orientation: Annotated[bool, typer.Option(help="Orientation regression head.")] = False,
    resume: Annotated[bool, typer.Option(help="Go on from the checkpoint.")] = False,
    curves: Annotated[Path | None, typer.Option(help="Loss/recall curves (PNG).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Train a cross-view model on a 2-core CPU (resumable, checkpoint written atomically)."""
    from placeprint.crossview.pairs import PairSet
    from placeprint.errors import PlaceprintError

    _require_torch("cross-view training")
    from placeprint.crossview.models import ModelConfig
    from placeprint.crossview.train import TrainSettings, train

    size = {} if polar else {"aerial_size": (128, 128)}
    config = ModelConfig(
        aggregation=aggregation, polar=polar, uv=uv, fcam=fcam, orientation=orientation, **size
    )
    settings = TrainSettings(
        epochs=epochs, batch=batch, loss=loss, fov_deg=fov, random_heading=random_heading
    )
    config.check()
    settings.check()
    if output.suffix != ".pt":
        raise PlaceprintError(f"a checkpoint is written as .pt; give -o NAME.pt, not {output}")
    pairs, val = PairSet.load(train_set), PairSet.load(val_set)
    say = None if quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    _, history = train(pairs, val, config, settings, output, resume=resume, progress=say)
    if curves is not None:
        from placeprint.crossview.figures import training_curves

        training_curves(history, curves)
    if not quiet:
        typer.echo(
            f"wrote {output}: val R@1 {history.val_r1[-1]:.3f}, "
            f"{sum(history.seconds):.0f} s of training"
        )


@crossview_app.command("eval")
def eval_cmd(
    model_file: Annotated[Path, typer.Argument(help="Checkpoint (.pt from `train`).")],
    test_set: Annotated[Path, typer.Argument(help="Test pairs (.npz).")],
    fov: Annotated[float, typer.Option(help="Ground field of view (degrees).")] = 360.0,
    random_heading: Annotated[bool, typer.Option(help="Turn ground views at random.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Score a model CVUSA-style: every ground view against all tiles of a test set."""
    import json

    import numpy as np

    from placeprint.crossview.pairs import PairSet
    from placeprint.errors import PlaceprintError

    _require_torch("cross-view evaluation")
    from placeprint.crossview.data import pair_inputs
    from placeprint.crossview.evaluate import encode, random_shifts, score
    from placeprint.crossview.train import load_model

    if not 0 < fov <= 360:
        raise PlaceprintError(f"--fov must lie in (0, 360], got {fov}")
    model = load_model(model_file)
    pairs = PairSet.load(test_set)
    G, A = pair_inputs(pairs, model.config)
    rng = np.random.default_rng(2024)
    shift = random_shifts(rng, len(G), G.shape[-1]) if random_heading else None
    out = {"tiles": len(pairs), **score(model, G, encode(model, A, ground=False), fov, shift)}
    if as_json:
        typer.echo(json.dumps(out, indent=2))
    else:
        typer.echo(
            " ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in out.items())
        )


@crossview_app.command("describe")
def describe_cmd(
    model_file: Annotated[Path, typer.Argument(help="Checkpoint (.pt from `train`).")],
    tiles: Annotated[Path, typer.Argument(help="Pair set (.npz) or folder of square tiles.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Descriptors to write (.npy).")],
) -> None:
    """Aerial tiles -> descriptors (.npy), e.g. for `placeprint index build`."""
    import io

    import numpy as np

    from placeprint.atomic import atomic_write_bytes
    from placeprint.errors import PlaceprintError

    _require_torch("describing tiles")
    from placeprint.crossview.locate import encode_tiles, load_tiles
    from placeprint.crossview.train import load_model

    if output.suffix != ".npy":
        raise PlaceprintError(f"descriptors are written as .npy; give -o NAME.npy, not {output}")
    model = load_model(model_file)
    if model.config.aggregation == "dsm":
        raise PlaceprintError("a DSM model compares feature maps, not descriptors: no index")
    X = encode_tiles(model, load_tiles(tiles)).numpy().astype(np.float32)
    buf = io.BytesIO()
    np.save(buf, X)
    atomic_write_bytes(output, buf.getvalue())
    typer.echo(f"wrote {output}: {X.shape[0]} tiles x {X.shape[1]} dimensions")


@crossview_app.command("locate")
def locate_cmd(
    views: Annotated[list[Path], typer.Argument(help="Ground panoramas (2:1) or photos.")],
    model_file: Annotated[Path, typer.Option("--model", help="Checkpoint (.pt).")],
    aerial: Annotated[
        Path,
        typer.Option(help="Tiles: a pair set (.npz), a folder of square tiles, or an index."),
    ],
    fov: Annotated[float, typer.Option(help="Field of view of the views (degrees).")] = 360.0,
    top: Annotated[int, typer.Option(help="Tiles to list per view.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Which aerial tiles show where each ground view was taken (and its heading, DSM)."""
    import json

    import numpy as np

    from placeprint.errors import PlaceprintError

    _require_torch("cross-view locating")
    import time

    from placeprint.crossview.locate import (
        encode_tiles,
        encode_view,
        load_tiles,
        load_view,
        rank_tiles,
    )
    from placeprint.crossview.train import load_model

    if top < 1:
        raise PlaceprintError("--top must be >= 1")
    model = load_model(model_file)
    index = None
    if aerial.is_file() and aerial.suffix != ".npz":
        from placeprint.index import OverloadedIndex
        from placeprint.sequence.matcher import SequenceMatcher

        if model.config.aggregation == "dsm":
            raise PlaceprintError("a DSM model cannot search an index: give the tiles")
        index = OverloadedIndex.load(aerial)
        matcher = SequenceMatcher(index)
        tiles = None
    else:
        tiles = load_tiles(aerial)
        encoded = encode_tiles(model, tiles)
    report = []
    for v in views:
        x = load_view(v, fov, model.config)
        entry: dict = {"view": str(v)}
        if index is not None:
            t0 = time.perf_counter()
            r = matcher.match(encode_view(model, x), k=top)
            entry["ms"] = 1000.0 * (time.perf_counter() - t0)
            entry["ops"] = int(r.ops)
            entry["bytes_per_place"] = float(index.bytes_per_place())
            entry["tiles"] = [{"tile": int(p)} for p in r.positions if p >= 0]
        else:
            ranked = rank_tiles(model, x, encoded, min(top, len(tiles.ids)))
            entry["ms"] = ranked.ms
            entry["tiles"] = []
            for row, score, heading in zip(
                ranked.rows, ranked.scores, ranked.headings, strict=True
            ):
                t = {"tile": tiles.ids[row], "score": float(score)}
                if tiles.xy is not None:
                    t["x_m"], t["y_m"] = (float(c) for c in tiles.xy[row])
                if np.isfinite(heading):
                    t["heading_deg"] = float(heading)
                entry["tiles"].append(t)
        report.append(entry)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    for entry in report:
        typer.echo(f"{entry['view']} ({entry['ms']:.1f} ms):")
        for rank, t in enumerate(entry["tiles"], 1):
            extra = "".join(
                f" {k}={v:.1f}" for k, v in t.items() if k in ("x_m", "y_m", "heading_deg")
            )
            score = f" score={t['score']:.3f}" if "score" in t else ""
            typer.echo(f"  {rank}. tile {t['tile']}{score}{extra}")


@crossview_app.command("panoramas")
def panoramas_cmd(
    output: Annotated[Path, typer.Option("-o", "--output", help="New folder to write.")],
    area: Annotated[str, typer.Option(help="train, val or test: each is its own city.")] = "test",
    seed: Annotated[int, typer.Option(help="Experiment seed (the same seed, the same city).")] = 0,
    streets: Annotated[int, typer.Option(help="Streets to drive along.")] = 2,
    spacing: Annotated[float, typer.Option(help="Metres between panoramas.")] = 16.0,
    season: Annotated[str, typer.Option(help="summer, autumn or winter.")] = "summer",
    hour: Annotated[float, typer.Option(help="Hour, 0-24 (night before 6, after 19).")] = 12.0,
    width: Annotated[int, typer.Option(help="Panorama width (height is half).")] = 1024,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Panoramas with depth along the streets of a synthetic city, with a manifest: the
    input of `placeprint synth`."""
    from placeprint.crossview.pairs import AREAS, area_seed
    from placeprint.crossview.world import Condition, World
    from placeprint.errors import PlaceprintError
    from placeprint.synth.world_route import route_points, write_world_panoramas

    if area not in AREAS:
        raise PlaceprintError(f"--area must be one of {', '.join(AREAS)}, got {area!r}")
    if width < 64 or width % 2 or width > 8192:
        raise PlaceprintError(f"--width must be an even number in 64-8192, got {width}")
    if not 1 <= streets <= 64 or not 1.0 <= spacing <= 1000.0:
        raise PlaceprintError("--streets must be 1-64 and --spacing 1-1000 metres")
    condition = Condition(season, hour)
    condition.check()
    world = World.generate(area_seed(seed, area))
    points = route_points(world, streets, spacing, margin_m=20.0)

    def progress(done: int, total: int) -> None:
        if not quiet and (done == total or done % 10 == 0):
            print(f"rendered {done}/{total} panoramas", file=sys.stderr)

    manifest = write_world_panoramas(output, points, world, condition, width, progress=progress)
    if not quiet:
        typer.echo(f"wrote {manifest}: {len(points)} panoramas with depth")

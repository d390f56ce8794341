"""``placeprint crossview ...``: synthetic ground/aerial pairs (and, later, training)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

crossview_app = typer.Typer(
    help="Cross-view localisation: ground views against aerial tiles.", no_args_is_help=True
)


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

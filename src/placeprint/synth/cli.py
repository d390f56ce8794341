"""``placeprint synth PANORAMAS -o VIEWS``: database views synthesized from panoramas."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from placeprint.errors import PlaceprintError
from placeprint.synth.views import ViewSettings

_DEFAULTS = ViewSettings()


def parse_size(text: str) -> tuple[int, int]:
    """``"160x120"`` (width x height) -> ``(120, 160)`` (h, w)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise PlaceprintError(f"--size must be WIDTHxHEIGHT, like 160x120; got {text!r}") from None
    return h, w


def synth_cmd(
    panoramas: Annotated[
        Path,
        typer.Argument(
            metavar="PANORAMAS",
            help="Folder of equirectangular panoramas (2:1; NAME.depth.npy beside one adds "
            "warped views) or a manifest CSV (path,lat,lon[,heading of the centre column]).",
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder of views to write.")],
    headings: Annotated[
        int, typer.Option(help="Headings a position is seen at.")
    ] = _DEFAULTS.headings,
    fov: Annotated[float, typer.Option(help="Horizontal field of view (degrees).")] = 60.0,
    pitch: Annotated[float, typer.Option(help="Camera pitch (degrees up).")] = 0.0,
    size: Annotated[str, typer.Option(help="View size WIDTHxHEIGHT (pixels).")] = "160x120",
    grid_step: Annotated[
        float, typer.Option(help="Metres between synthesized positions (with depth).")
    ] = _DEFAULTS.grid_step_m,
    grid_radius: Annotated[
        int, typer.Option(help="Grid steps around each panorama (0: cut-outs only).")
    ] = _DEFAULTS.grid_radius,
    max_holes: Annotated[
        float, typer.Option(help="Drop a warped view with more of its pixels unseen.")
    ] = 0.3,
    workers: Annotated[
        int | None,
        typer.Option(help="Panoramas warped side by side [default: every core, at most 8]."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
) -> None:
    """Database views from panoramas: cut-outs, and warped views where there is depth.

    Then index them: `placeprint index build VIEWS/manifest.csv -o IDX`.
    """
    from placeprint.progress import progress_bar
    from placeprint.synth.folder import synthesize_folder

    settings = ViewSettings(
        headings=headings,
        fov_deg=fov,
        pitch_deg=pitch,
        size=parse_size(size),
        grid_step_m=grid_step,
        grid_radius=grid_radius,
        max_hole_share=max_holes,
    )
    settings.check()
    if workers is not None and not 1 <= workers <= 256:
        raise PlaceprintError(f"--workers must be 1-256, got {workers}")
    with progress_bar(quiet) as bar:
        task = bar.add_task("synthesizing views", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        summary = synthesize_folder(panoramas, output, settings, progress, workers)
    if not quiet:
        typer.echo(
            f"wrote {output}: {summary['views']} views of {summary['panoramas']} panoramas "
            f"({summary['synthesized_views']} synthesized from {summary['with_depth']} with "
            f"depth); index them with `placeprint index build {output / 'manifest.csv'} -o IDX`"
        )

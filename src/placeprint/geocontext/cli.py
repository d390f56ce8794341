"""``placeprint geocontext train|label``: the geometric-context model and class maps."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

geocontext_app = typer.Typer(
    help="Geometric context: ground, vertical and sky probabilities per pixel.",
    no_args_is_help=True,
)


@geocontext_app.command("train")
def train_cmd(
    output: Annotated[Path, typer.Option("-o", "--output", help="Model file to write.")],
    renders: Annotated[int, typer.Option(help="Labelled synthetic photos to learn from.")] = 1200,
    seed: Annotated[int, typer.Option(help="Seed of the training cities and views.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Learn the classifier from labelled renders of the synthetic training cities."""
    from placeprint.errors import PlaceprintError
    from placeprint.geocontext.model import GeometricContext
    from placeprint.geocontext.renders import labelled_views

    if not 10 <= renders <= 100_000:
        raise PlaceprintError(f"--renders must be 10-100000, got {renders}")
    if not output.parent.is_dir():
        raise PlaceprintError(f"folder does not exist: {output.parent}")
    if output.is_dir():
        raise PlaceprintError(f"{output} is a folder; -o names the model file to write")

    def say(what: str):
        def progress(done: int, total: int) -> None:
            if not quiet and (done == total or done % 200 == 0):
                print(f"{what} {done}/{total}", file=sys.stderr)

        return progress

    images, labels = labelled_views(renders, "train", seed, progress=say("rendered"))
    model = GeometricContext().fit(images, labels, progress=say("segmented"))
    size = model.save(output)
    if not quiet:
        typer.echo(f"wrote {output} ({size} bytes) from {renders} labelled renders")


@geocontext_app.command("label")
def label_cmd(
    images: Annotated[list[Path], typer.Argument(help="Photos to label.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for the maps.")],
    model: Annotated[
        Path | None, typer.Option(help="Model file (default: the shipped one).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Write each photo beside its class map (green ground, red vertical, blue sky) as
    NAME.geocontext.png, and print the share of each class."""
    from placeprint.describe.color import ImageViews
    from placeprint.describe.geocontext import GeoContextDescriber
    from placeprint.errors import PlaceprintError
    from placeprint.geocontext.figures import class_map_picture

    if output.exists() and not output.is_dir():
        raise PlaceprintError(f"{output} is a file; -o names a folder")
    output.mkdir(parents=True, exist_ok=True)
    describer = GeoContextDescriber(model=None if model is None else str(model))
    for path in images:
        views = ImageViews.load(path, 640)
        proba = describer.class_maps(views)
        out = output / f"{path.stem}.geocontext.png"
        class_map_picture(views.rgb, proba, out)
        share = proba.reshape(-1, 3).mean(axis=0)
        if not quiet:
            typer.echo(
                f"{path.name}: ground {share[0]:.2f}, vertical {share[1]:.2f}, "
                f"sky {share[2]:.2f} -> {out}"
            )

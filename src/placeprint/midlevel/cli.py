"""``placeprint midlevel fit|predict``: style-aware elements from labelled photos."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer

from placeprint.midlevel.ensemble import DEFAULT_MEMBERS

midlevel_app = typer.Typer(
    help="Style-aware mid-level elements: read a label (a place, a time) off image patches.",
    no_args_is_help=True,
)


def read_labels(path: Path) -> tuple[list[Path], list[float]]:
    """``path,label`` rows of a CSV (paths relative to the CSV's folder)."""
    from placeprint.errors import PlaceprintError

    if not path.is_file():
        raise PlaceprintError(f"not found: {path}")
    images, labels = [], []
    with open(path, newline="", encoding="utf-8") as fh:
        rows = csv.DictReader(fh)
        if not rows.fieldnames or not {"path", "label"} <= set(rows.fieldnames):
            raise PlaceprintError(f"{path} needs the columns path,label")
        for i, row in enumerate(rows, start=2):
            try:
                value = float(row["label"])
            except (TypeError, ValueError):
                raise PlaceprintError(
                    f"{path} line {i}: label {row['label']!r} is not a number"
                ) from None
            if value != value or value in (float("inf"), float("-inf")):
                raise PlaceprintError(f"{path} line {i}: label must be finite")
            images.append(path.parent / row["path"])
            labels.append(value)
    if len(images) < 40:
        raise PlaceprintError(f"{path} holds {len(images)} labelled images; need at least 40")
    return images, labels


@midlevel_app.command("fit")
def fit_cmd(
    labels: Annotated[Path, typer.Argument(help="CSV with path,label (a number) per image.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Model file to write.")],
    seeds: Annotated[
        int | None, typer.Option(help="Candidate elements to mine [default: 800 pooled, else 400].")
    ] = None,
    keep: Annotated[
        int | None,
        typer.Option(help="Style-sensitive elements to keep [default: 300 pooled, else 40]."),
    ] = None,
    combine: Annotated[
        str,
        typer.Option(
            help="How the elements' readings become a label: mean, stacked (appearance "
            "regressors) or pooled (one regression on every element's responses)."
        ),
    ] = "pooled",
    members: Annotated[
        int,
        typer.Option(
            help="Sets of elements, each mined from its own random patches, whose readings "
            "are averaged (more: steadier, slower)."
        ),
    ] = DEFAULT_MEMBERS,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Mine style-sensitive elements and their regressors from labelled images."""
    import numpy as np

    from placeprint.errors import PlaceprintError
    from placeprint.midlevel.elements import ElementSettings, element_settings
    from placeprint.midlevel.ensemble import ElementEnsemble
    from placeprint.midlevel.hog import HogLayout, describe_images

    settings = element_settings(ElementSettings(), combine, seeds, keep)
    if members < 1:
        raise PlaceprintError(f"--members must be >= 1, got {members}")
    if output.is_dir() or not output.parent.is_dir():
        raise PlaceprintError(f"-o must name a file in an existing folder, got {output}")
    images, values = read_labels(labels)
    layout = HogLayout()
    P, _ = describe_images(images, layout)
    model = ElementEnsemble(settings, members).fit(P, np.array(values))
    size = model.save(output, layout)
    if not quiet:
        elements = sum(m.detectors_.shape[0] for m in model.members_)
        typer.echo(f"wrote {output} ({size} bytes): {elements} elements in {members} set(s)")


@midlevel_app.command("predict")
def predict_cmd(
    model: Annotated[Path, typer.Argument(help="Model file from `placeprint midlevel fit`.")],
    images: Annotated[list[Path], typer.Argument(help="Images to read the label of.")],
) -> None:
    """Print each image's label, read off its elements."""
    from placeprint.errors import PlaceprintError
    from placeprint.midlevel.ensemble import ElementEnsemble
    from placeprint.midlevel.hog import describe_images

    if not model.is_file():
        raise PlaceprintError(f"not found: {model}")
    elements, layout = ElementEnsemble.load(model)
    P, _ = describe_images(images, layout)
    for path, value in zip(images, elements.predict(P), strict=True):
        typer.echo(f"{path}\t{value:.6g}")

"""Turn what a user points at (a folder of images or a ``.npy`` of descriptors) into descriptors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from placeprint.errors import PlaceprintError

NPY_DESCRIBER = {"name": "npy"}


def load_npy_descriptors(path: str | Path) -> np.ndarray:
    """Read an ``(n, d)`` float ``.npy`` file of descriptors, validated."""
    from placeprint.codec.coarse import check_descriptors

    path = Path(path)
    try:
        X = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise PlaceprintError(f"file not found: {path}") from None
    except (ValueError, OSError, EOFError) as exc:
        raise PlaceprintError(f"cannot read {path} as a .npy array: {exc}") from None
    return check_descriptors(X, what=f"descriptors in {path}")


def describe_source(
    source: str | Path, describer: dict | None = None, progress: bool = True
) -> tuple[np.ndarray, dict, list[str]]:
    """Descriptors ``(n, d) float32`` of ``source``, the describer config used, and item names.

    ``source`` is a ``.npy`` file or a folder of images (sorted by file name = route
    order). ``describer`` is ``{"name": ..., **options}``; default SeqSLAM.
    """
    source = Path(source)
    if not source.exists():
        raise PlaceprintError(f"not found: {source}")
    if source.is_file():
        if source.suffix != ".npy":
            raise PlaceprintError(f"{source}: give a folder of images or a .npy of descriptors")
        if describer and describer.get("name") not in (None, "npy"):
            raise PlaceprintError(
                f"{source} holds descriptors already; it cannot be described with "
                f"{describer['name']!r}"
            )
        X = load_npy_descriptors(source)
        return X, dict(NPY_DESCRIBER), [f"{source.name}[{i}]" for i in range(len(X))]
    from placeprint import describe
    from placeprint.describe.images import list_images

    config = dict(describer or {"name": "seqslam"})
    if config.get("name") == "npy":
        raise PlaceprintError("this index was built from a .npy of descriptors: query with a .npy")
    name = config.pop("name", "seqslam")
    d = describe.get(name, **config)
    files = list_images(source)
    X = describe_files(d, files, progress)
    return X, d.config(), [f.name for f in files]


def describe_files(describer, files: list[Path], progress: bool = True, batch: int = 256):
    """Describe ``files`` in batches with a progress bar: ``(n, dim) float32``."""
    from rich.progress import Progress

    out = np.empty((len(files), describer.dim), np.float32)
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"describing {len(files)} images", total=len(files))
        for start in range(0, len(files), batch):
            part = files[start : start + batch]
            out[start : start + len(part)] = describer(part)
            bar.advance(task, len(part))
    return out

"""Locate ground views among aerial tiles with a trained cross-view model.

Tiles come from a pair set (``.npz`` from ``crossview world``: tiles with their
positions), a folder of square tile images (ids = file names), or a compact index
built from aerial descriptors (``crossview describe`` -> ``.npy`` -> ``index build``),
which answers with its bytes a place and the operations a query took.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from placeprint.crossview.data import aerial_inputs, as_float
from placeprint.crossview.evaluate import encode
from placeprint.crossview.models import CrossViewModel, dsm_heading, dsm_scores
from placeprint.errors import PlaceprintError


@dataclass
class Tiles:
    """Aerial tiles: images ``(n, S, S, 3) uint8`` (``None`` for an index), ids and, where
    known, positions ``(n, 2)`` metres."""

    images: np.ndarray | None
    ids: list[str]
    xy: np.ndarray | None


def load_tiles(source: str | Path) -> Tiles:
    """Tiles of a pair set (``.npz``) or a folder of square images."""
    from PIL import Image

    from placeprint.crossview.pairs import PairSet
    from placeprint.describe.images import list_images, open_photo

    source = Path(source)
    if source.is_dir():
        files = list_images(source)
        if not files:
            raise PlaceprintError(f"no tile images in {source}")
        images = []
        for f in files:
            im = open_photo(f)
            if im.width != im.height:
                raise PlaceprintError(f"{f}: an aerial tile must be square, got {im.size}")
            images.append(np.asarray(im.resize((128, 128), Image.Resampling.BILINEAR)))
        return Tiles(np.stack(images), [f.name for f in files], None)
    pairs = PairSet.load(source)
    return Tiles(pairs.aerial, [str(i) for i in range(len(pairs))], pairs.xy)


def load_view(path: str | Path, fov_deg: float, config) -> torch.Tensor:
    """One ground view as model input ``(1, 3, H, w) uint8``: a 2:1 panorama for 360
    degrees, else a photo covering ``fov_deg`` (resized to that share of the width)."""
    from PIL import Image

    from placeprint.describe.images import open_photo

    if not 0 < fov_deg <= 360:
        raise PlaceprintError(f"field of view must lie in (0, 360], got {fov_deg}")
    im = open_photo(path)
    if fov_deg == 360 and abs(im.width - 2 * im.height) > 1:
        raise PlaceprintError(f"{path}: a 360-degree panorama must be 2:1, got {im.size}")
    if config.aggregation != "dsm" and fov_deg != 360:
        raise PlaceprintError(
            "this model describes 360-degree panoramas; limited views need a DSM model"
        )
    H, W = config.ground_size
    w = max(8, int(round(W * fov_deg / 360.0)))
    arr = np.asarray(im.resize((w, H), Image.Resampling.BILINEAR))
    return torch.from_numpy(arr).permute(2, 0, 1)[None].contiguous()


@dataclass
class Ranked:
    """Best tiles of one view: rows, scores (higher is better), headings (degrees
    clockwise from north of the view's first column; ``nan`` without DSM)."""

    rows: np.ndarray
    scores: np.ndarray
    headings: np.ndarray
    ms: float


@torch.no_grad()
def rank_tiles(model: CrossViewModel, view: torch.Tensor, aerial: torch.Tensor, top: int) -> Ranked:
    """Score one view input against encoded tiles ``aerial``; the ``top`` best."""
    t0 = time.perf_counter()
    g = model.encode_ground(as_float(view))
    if model.config.aggregation == "dsm":
        scores, _ = dsm_scores(g, aerial)
        s = scores[0].numpy()
    else:
        s = (g @ aerial.T)[0].numpy()
    rows = np.argsort(-s, kind="stable")[:top]
    headings = np.full(len(rows), np.nan)
    if model.config.aggregation == "dsm":
        W = aerial.shape[-1]
        est = dsm_heading(g.expand(len(rows), -1, -1, -1), aerial[torch.from_numpy(rows)])
        headings = (est.numpy() / W * 360.0) % 360.0
    return Ranked(rows, s[rows], headings, 1000.0 * (time.perf_counter() - t0))


@torch.no_grad()
def encode_view(model: CrossViewModel, view: torch.Tensor) -> np.ndarray:
    """A view input's global descriptor ``(1, d) float32`` (for the compact index)."""
    return model.encode_ground(as_float(view)).numpy().astype(np.float32)


def encode_tiles(model: CrossViewModel, tiles: Tiles) -> torch.Tensor:
    if tiles.images is None:
        raise PlaceprintError("these tiles have no images to describe")
    return encode(model, aerial_inputs(tiles.images, model.config), ground=False)

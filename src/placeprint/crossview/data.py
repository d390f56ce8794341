"""Model inputs from a :class:`~placeprint.crossview.pairs.PairSet`: resized panoramas,
polar (or plain) aerial tiles, views at a heading and a limited field of view."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as nnf

from placeprint.crossview.models import ModelConfig
from placeprint.crossview.pairs import PairSet
from placeprint.crossview.polar import polar_transform
from placeprint.errors import PlaceprintError


def _resize(images: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """``(n, H, W, 3) uint8`` -> ``(n, 3, h, w) uint8`` (area-averaged)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    if x.shape[2:] != size:
        x = nnf.interpolate(x, size=size, mode="area" if x.shape[2] >= size[0] else "bilinear")
    return x.round().clamp(0, 255).to(torch.uint8)


def check_panoramas(ground: np.ndarray) -> None:
    if ground.ndim != 4 or ground.shape[-1] != 3 or ground.shape[2] != 2 * ground.shape[1]:
        raise PlaceprintError(f"panoramas must be (n, H, 2H, 3), got {ground.shape}")


def check_tiles(aerial: np.ndarray) -> None:
    if aerial.ndim != 4 or aerial.shape[-1] != 3 or aerial.shape[1] != aerial.shape[2]:
        raise PlaceprintError(f"aerial tiles must be square (n, S, S, 3), got {aerial.shape}")


def ground_inputs(ground: np.ndarray, config: ModelConfig) -> torch.Tensor:
    """360-degree panoramas ``(n, H, 2H, 3)`` as ``(n, 3, *ground_size) uint8``."""
    check_panoramas(ground)
    return _resize(ground, config.ground_size)


def aerial_inputs(aerial: np.ndarray, config: ModelConfig) -> torch.Tensor:
    """Square tiles ``(n, S, S, 3)``: polar-transformed (or resized) ``uint8`` inputs."""
    check_tiles(aerial)
    if config.polar:
        h, w = config.aerial_size
        S = aerial.shape[1]
        # sample the polar grid at the tile's resolution, then resize to the model's input
        polar = np.stack([polar_transform(t, S // 2, 2 * S) for t in aerial])
        return _resize(polar, (h, w))
    return _resize(aerial, config.aerial_size)


def pair_inputs(pairs: PairSet, config: ModelConfig) -> tuple[torch.Tensor, torch.Tensor]:
    return ground_inputs(pairs.ground, config), aerial_inputs(pairs.aerial, config)


def view_at(ground: torch.Tensor, shift: torch.Tensor, fov_deg: float) -> torch.Tensor:
    """Ground inputs ``(n, 3, H, W)`` turned so that column 0 lies ``shift`` columns east of
    north, keeping the first ``fov_deg / 360`` of the columns (a limited view whose left
    edge is at that azimuth)."""
    n, _, _, W = ground.shape
    keep = max(1, int(round(W * fov_deg / 360.0)))
    cols = (shift.reshape(n, 1) + torch.arange(keep)[None, :]) % W  # (n, keep)
    index = cols[:, None, None, :].expand(n, ground.shape[1], ground.shape[2], keep)
    return torch.gather(ground, 3, index)


def as_float(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 255.0

"""Two-branch cross-view models, small enough to train on a 2-core CPU.

Each branch (ground, aerial; own weights) is a small CNN, optionally with **U-V input
channels** (two extra channels giving each pixel's azimuth and altitude on the
panorama, azimuth and range on the aerial tile; CVM-Net) and **FCAM** attention (Cai et
al. 2019: channel attention from max- and average-pooled features through a shared
MLP, then spatial attention from 3x3, 5x5 and 7x7 convolutions fused by a 1x1). Its
feature map is aggregated by

- ``"safa"``: spatial-aware feature aggregation (Shi et al. 2019): ``K`` spatial
  embeddings, each a learned map over the feature positions computed from the
  channel-max map by two fully connected layers; the descriptor is the ``K``
  map-weighted sums of the features;
- ``"netvlad"`` (CVM-Net-I: one NetVLAD per branch) or ``"netvlad_shared"`` (CVM-Net-II:
  two fully connected transform layers per branch, then one NetVLAD whose weights
  both branches share);
- ``"dsm"`` (Shi et al. 2020): no pooling; the normalised feature map itself, compared
  by circular correlation over azimuth (:func:`dsm_scores`), which gives the heading too.

Descriptors are L2-normalised. With ``orientation=True`` the ground branch also
predicts ``(cos, sin)`` of the heading (Cai et al.'s auxiliary regression).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as nnf

from placeprint.errors import PlaceprintError

AGGREGATIONS = ("safa", "netvlad", "netvlad_shared", "dsm")


@dataclass(frozen=True)
class ModelConfig:
    """The shape of a cross-view model (everything ``build_model`` needs)."""

    aggregation: str = "safa"
    polar: bool = True
    ground_size: tuple[int, int] = (64, 256)  # (H, W) the panorama is resized to
    aerial_size: tuple[int, int] = (64, 256)  # polar (H, W), or the square tile size
    channels: tuple[int, ...] = (16, 32, 64, 64)
    safa_maps: int = 4
    clusters: int = 16
    dsm_channels: int = 16
    uv: bool = False
    fcam: bool = False
    orientation: bool = False

    def check(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise PlaceprintError(f"aggregation must be one of {', '.join(AGGREGATIONS)}")
        if self.aggregation == "dsm" and not self.polar:
            raise PlaceprintError("dsm compares azimuth columns: it needs polar=True")
        if not self.polar and self.aerial_size[0] != self.aerial_size[1]:
            raise PlaceprintError("without the polar transform the aerial input is square")
        for h, w in (self.ground_size, self.aerial_size):
            if h % 8 or w % 8 or h < 16 or w < 16:
                raise PlaceprintError("input sizes must be multiples of 8, at least 16")
        if self.polar and self.aerial_size[1] != self.ground_size[1]:
            raise PlaceprintError("polar aerial and ground inputs need the same width")
        if not self.channels or min(self.channels) < 1 or min(self.safa_maps, self.clusters) < 1:
            raise PlaceprintError("channels, safa_maps and clusters must be positive")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        try:
            d = dict(d)
            for k in ("ground_size", "aerial_size", "channels"):
                d[k] = tuple(d[k])
            config = cls(**d)
        except (TypeError, KeyError) as exc:
            raise PlaceprintError(f"not a cross-view model configuration: {exc}") from None
        config.check()
        return config


def uv_channels(height: int, width: int, polar: bool = True) -> torch.Tensor:
    """``(2, H, W)``: azimuth (cos-free, in [-1, 1]) and altitude/range (in [-1, 1]) of
    every pixel: for panoramas and polar tiles the column's azimuth and the row's
    height; for a square tile the pixel's azimuth and distance from the centre."""
    if polar:
        az = (torch.arange(width) + 0.5) / width * 2 - 1
        alt = 1 - (torch.arange(height) + 0.5) / height * 2
        return torch.stack([az[None, :].expand(height, width), alt[:, None].expand(height, width)])
    ys, xs = torch.meshgrid(
        torch.arange(height) + 0.5 - height / 2,
        torch.arange(width) + 0.5 - width / 2,
        indexing="ij",
    )
    az = torch.atan2(xs, -ys) / math.pi
    rng = torch.sqrt(xs**2 + ys**2) / (min(height, width) / 2) * 2 - 1
    return torch.stack([az, rng])


class FCAM(nn.Module):
    """Channel attention (shared MLP over max- and average-pooled features) followed by
    spatial attention (3x3, 5x5, 7x7 convolutions over channel max and mean, fused 1x1)."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels)
        )
        self.spatial = nn.ModuleList([nn.Conv2d(2, 1, k, padding=k // 2) for k in (3, 5, 7)])
        self.fuse = nn.Conv2d(3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ca = torch.sigmoid(self.mlp(x.amax(dim=(2, 3))) + self.mlp(x.mean(dim=(2, 3))))
        x = x * ca[:, :, None, None]
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        sa = torch.sigmoid(self.fuse(torch.cat([conv(pooled) for conv in self.spatial], dim=1)))
        return x * sa


class Backbone(nn.Module):
    """Strided 3x3 convolutions (stride 2 but the last), batch norm, ReLU: 1/8 resolution."""

    def __init__(self, in_channels: int, channels: tuple[int, ...], fcam: bool) -> None:
        super().__init__()
        layers, c = [], in_channels
        for i, out in enumerate(channels):
            stride = 2 if i < 3 else 1
            layers += [nn.Conv2d(c, out, 3, stride, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
            c = out
        self.body = nn.Sequential(*layers)
        self.attention = FCAM(c) if fcam else nn.Identity()
        self.out_channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(self.body(x))


class SAFA(nn.Module):
    """Spatial-aware aggregation of a ``(c, h, w)`` map into ``c * maps`` dimensions."""

    def __init__(self, positions: int, maps: int) -> None:
        super().__init__()
        self.fc1 = nn.Parameter(torch.randn(maps, positions, positions // 2) * 0.005)
        self.b1 = nn.Parameter(torch.full((maps, positions // 2), 0.1))
        self.fc2 = nn.Parameter(torch.randn(maps, positions // 2, positions) * 0.005)
        self.b2 = nn.Parameter(torch.full((maps, positions), 0.1))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        B, c, h, w = f.shape
        m = f.amax(dim=1).reshape(B, 1, 1, h * w)  # (B, 1, 1, hw)
        hidden = torch.matmul(m, self.fc1).squeeze(2) + self.b1  # (B, maps, hw/2)
        attn = torch.matmul(hidden.unsqueeze(2), self.fc2).squeeze(2) + self.b2  # (B, maps, hw)
        desc = torch.einsum("bcp,bkp->bck", f.reshape(B, c, h * w), attn)
        return desc.reshape(B, -1)


class NetVLAD(nn.Module):
    """Soft-assignment VLAD over ``clusters`` centres (Arandjelović et al. 2016)."""

    def __init__(self, channels: int, clusters: int) -> None:
        super().__init__()
        self.assign = nn.Conv2d(channels, clusters, 1)
        self.centres = nn.Parameter(torch.randn(clusters, channels) * 0.1)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        B, c = f.shape[:2]
        f = nnf.normalize(f, dim=1)
        a = torch.softmax(self.assign(f), dim=1).reshape(B, -1, f.shape[2] * f.shape[3])
        x = f.reshape(B, c, -1)
        vlad = torch.einsum("bkp,bcp->bkc", a, x) - a.sum(-1)[:, :, None] * self.centres[None]
        vlad = nnf.normalize(vlad, dim=2)  # intra-normalisation
        return vlad.reshape(B, -1)


class Branch(nn.Module):
    """One view's network: backbone and (unless shared) its aggregation."""

    def __init__(self, config: ModelConfig, size: tuple[int, int], polar: bool) -> None:
        super().__init__()
        self.uv = config.uv
        self.size = size
        if config.uv:
            self.register_buffer("uv_map", uv_channels(*size, polar=polar), persistent=False)
        self.backbone = Backbone(3 + 2 * config.uv, config.channels, config.fcam)
        c = self.backbone.out_channels
        positions = (size[0] // 8) * (size[1] // 8)
        agg = config.aggregation
        if agg == "safa":
            self.head = SAFA(positions, config.safa_maps)
        elif agg == "netvlad":
            self.head = NetVLAD(c, config.clusters)
        elif agg == "netvlad_shared":
            self.head = nn.Sequential(nn.Conv2d(c, c, 1), nn.ReLU(), nn.Conv2d(c, c, 1))
        else:  # dsm
            self.head = nn.Conv2d(c, config.dsm_channels, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.uv:
            x = torch.cat([x, self.uv_map.expand(x.shape[0], -1, -1, -1)], dim=1)
        return self.backbone(x)


class CrossViewModel(nn.Module):
    """``encode_ground(images)`` and ``encode_aerial(images)``: ``(B, 3, H, W)`` float
    inputs in [0, 1] -> L2-normalised descriptors (or DSM feature maps)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        config.check()
        self.config = config
        self.ground = Branch(config, config.ground_size, polar=True)
        self.aerial = Branch(config, config.aerial_size, polar=config.polar)
        c = self.ground.backbone.out_channels
        self.shared = (
            NetVLAD(c, config.clusters) if config.aggregation == "netvlad_shared" else None
        )
        self.orientation = (
            nn.Sequential(nn.Flatten(), nn.LazyLinear(64), nn.ReLU(), nn.Linear(64, 2))
            if config.orientation
            else None
        )

    def _encode(self, branch: Branch, x: torch.Tensor) -> torch.Tensor:
        f = branch.features(x)
        out = branch.head(f)
        if self.shared is not None:
            out = self.shared(out)
        if self.config.aggregation == "dsm":
            return nnf.normalize(out.flatten(1), dim=1).reshape(out.shape)
        return nnf.normalize(out, dim=1)

    def encode_ground(self, x: torch.Tensor) -> torch.Tensor:
        return self._encode(self.ground, x)

    def encode_aerial(self, x: torch.Tensor) -> torch.Tensor:
        return self._encode(self.aerial, x)

    def predict_heading(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 2)`` predicted ``(cos, sin)`` of the ground view's heading."""
        if self.orientation is None:
            raise PlaceprintError("this model was built without orientation regression")
        return self.orientation(self.ground.features(x))


def dsm_scores(ground: torch.Tensor, aerial: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Dynamic similarity matching: ``(scores (Bg, Ba), shifts (Bg, Ba))``.

    ``ground (Bg, c, h, wg)`` and ``aerial (Ba, c, h, wa)`` feature maps (``wg <= wa``, a
    limited field of view has fewer columns); the ground map slides circularly over the
    aerial columns and the best correlation of the ground with the window under it
    (both normalised) is the score, its column shift the heading (``shift / wa * 360``
    degrees: where the ground view's first column lies on the aerial azimuths).
    """
    Bg, c, h, wg = ground.shape
    Ba, _, _, wa = aerial.shape
    if wg > wa:
        raise PlaceprintError("the ground view is wider than the aerial view")
    g = nnf.normalize(ground.reshape(Bg, -1), dim=1).reshape(Bg, c, h, wg)
    idx = (torch.arange(wa)[:, None] + torch.arange(wg)[None, :]) % wa  # (wa shifts, wg)
    windows = aerial[:, :, :, idx]  # (Ba, c, h, wa, wg)
    windows = windows.permute(0, 3, 1, 2, 4).reshape(Ba, wa, -1)
    windows = nnf.normalize(windows, dim=2)
    corr = torch.einsum("gd,asd->gas", g.reshape(Bg, -1), windows)  # (Bg, Ba, wa)
    scores, shifts = corr.max(dim=2)
    return scores, shifts


def refine_shift(corr_left, corr_peak, corr_right) -> torch.Tensor:
    """Sub-column offset of a correlation peak from its two neighbours (a parabola through
    the three), in [-0.5, 0.5]."""
    denom = corr_left - 2 * corr_peak + corr_right
    offset = 0.5 * (corr_left - corr_right) / torch.where(denom.abs() > 1e-12, denom, -1e-12)
    return offset.clamp(-0.5, 0.5)


def dsm_heading(ground: torch.Tensor, aerial: torch.Tensor) -> torch.Tensor:
    """Where ground view ``i``'s first column lies on aerial ``i``'s azimuths, in aerial
    columns (fractional: the correlation peak refined by :func:`refine_shift`), ``(B,)``."""
    B, c, h, wg = ground.shape
    wa = aerial.shape[-1]
    g = nnf.normalize(ground.reshape(B, -1), dim=1)
    idx = (torch.arange(wa)[:, None] + torch.arange(wg)[None, :]) % wa
    windows = aerial[:, :, :, idx].permute(0, 3, 1, 2, 4).reshape(B, wa, -1)
    corr = torch.einsum("bd,bsd->bs", g, nnf.normalize(windows, dim=2))  # (B, wa)
    peak = corr.argmax(dim=1)
    rows = torch.arange(B)
    left, right = corr[rows, (peak - 1) % wa], corr[rows, (peak + 1) % wa]
    return (peak.float() + refine_shift(left, corr[rows, peak], right)) % wa


def count_parameters(model: nn.Module) -> int:
    return sum(
        p.numel()
        for p in model.parameters()
        if not isinstance(p, nn.parameter.UninitializedParameter)
    )

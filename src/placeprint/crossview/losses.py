"""Metric-learning losses of the cross-view literature, over a batch of matching pairs.

Every loss takes ``D (B, B)``: the squared distance between ground view ``i`` (row) and
aerial tile ``j`` (column); pair ``i`` matches on the diagonal, every other entry of its
row (ground as anchor) and of its column (aerial as anchor) is a negative. All
``2 B (B - 1)`` triplets of the batch count (exhaustive in-batch mining, as CVM-Net and
SAFA train), averaged.

- :func:`triplet_margin`: ``max(0, m + d_p - d_n)``;
- :func:`soft_margin`: ``ln(1 + e^(d_p - d_n))``;
- :func:`weighted_soft_margin` (CVM-Net): ``ln(1 + e^(alpha (d_p - d_n)))``;
- :func:`quadruplet`: the triplet term plus ``max(0, m2 + d_p - d(n1, n2))`` over pairs of
  two other places (Chen et al. 2017), and :func:`weighted_soft_margin_quadruplet`;
- :func:`hard_exemplar_reweighted` (Cai et al. 2019): each soft-margin triplet weighted
  by ``w = log2(1 + e^(m/2 - gap))``, ``gap = d_n - d_p``; easy triplets (``gap > m``)
  get ``eps / B``, extremely hard ones (``gap < 0``) are capped at ``log2(1 + e^(m/2))``.
  The weights are constants of the step (no gradient through them);
- :func:`orientation_regression`: squared error of a predicted ``(cos, sin)`` of the
  heading.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as nnf


def squared_distances(ground: torch.Tensor, aerial: torch.Tensor) -> torch.Tensor:
    """``D[i, j] = |ground_i - aerial_j|^2`` for ``(B, d)`` descriptors."""
    g2 = (ground * ground).sum(1, keepdim=True)
    a2 = (aerial * aerial).sum(1, keepdim=True).T
    return (g2 + a2 - 2.0 * ground @ aerial.T).clamp_min(0.0)


def _triplet_gaps(D: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(d_p - d_n)`` of every triplet, ground as anchor ``(B, B)`` and aerial as anchor
    ``(B, B)``, and the off-diagonal mask."""
    pos = torch.diagonal(D)
    g_anchor = pos[:, None] - D  # row i: ground i against aerial j
    a_anchor = pos[None, :] - D  # column j: aerial j against ground i
    off = ~torch.eye(D.shape[0], dtype=torch.bool, device=D.device)
    return torch.stack([g_anchor, a_anchor]), off


def _mean_off(values: torch.Tensor, off: torch.Tensor) -> torch.Tensor:
    return values[:, off].mean()


def triplet_margin(D: torch.Tensor, margin: float = 0.2) -> torch.Tensor:
    """Mean ``max(0, m + d_p - d_n)`` over the batch's triplets."""
    gaps, off = _triplet_gaps(D)
    return _mean_off(nnf.relu(margin + gaps), off)


def soft_margin(D: torch.Tensor) -> torch.Tensor:
    """Mean ``ln(1 + e^(d_p - d_n))``."""
    gaps, off = _triplet_gaps(D)
    return _mean_off(nnf.softplus(gaps), off)


def weighted_soft_margin(D: torch.Tensor, alpha: float = 10.0) -> torch.Tensor:
    """Mean ``ln(1 + e^(alpha (d_p - d_n)))`` (CVM-Net)."""
    gaps, off = _triplet_gaps(D)
    return _mean_off(nnf.softplus(alpha * gaps), off)


def _second_negatives(D: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(d_p[i] - D[k, j])`` for every anchor ``i`` and pair ``(k, j)`` of two other places,
    ``(B, B, B)``, and its mask (``k != j``, both ``!= i``)."""
    B = D.shape[0]
    pos = torch.diagonal(D)
    gaps = pos[:, None, None] - D[None, :, :]
    idx = torch.arange(B, device=D.device)
    i, k, j = idx[:, None, None], idx[None, :, None], idx[None, None, :]
    mask = (k != j) & (k != i) & (j != i)
    return gaps, mask


def quadruplet(D: torch.Tensor, margin: float = 0.2, margin2: float = 0.1) -> torch.Tensor:
    """Triplet term plus the mean ``max(0, m2 + d_p - d(n1, n2))`` (Chen et al. 2017)."""
    gaps2, mask = _second_negatives(D)
    second = nnf.relu(margin2 + gaps2)[mask].mean() if mask.any() else D.sum() * 0
    return triplet_margin(D, margin) + second


def weighted_soft_margin_quadruplet(D: torch.Tensor, alpha: float = 10.0) -> torch.Tensor:
    """The weighted soft-margin triplet term plus its soft version of the second term."""
    gaps2, mask = _second_negatives(D)
    second = nnf.softplus(alpha * gaps2)[mask].mean() if mask.any() else D.sum() * 0
    return weighted_soft_margin(D, alpha) + second


def her_weights(gaps: torch.Tensor, margin: float, batch: int, eps: float = 0.1) -> torch.Tensor:
    """Hard-exemplar weights of triplets with ``gaps = d_n - d_p`` (Cai et al. 2019)."""
    w = torch.log2(1.0 + torch.exp(margin / 2.0 - gaps))
    w_high = math.log2(1.0 + math.exp(margin / 2.0))
    w = torch.where(gaps > margin, torch.full_like(w, eps / batch), w)
    return torch.where(gaps < 0, torch.full_like(w, w_high), w)


def hard_exemplar_reweighted(
    D: torch.Tensor,
    margin: float | None = None,
    features_sq_norm: float | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean of ``w * ln(1 + e^(d_p - d_n))`` with :func:`her_weights`.

    ``margin`` defaults to the batch's mean squared feature norm (``features_sq_norm``,
    1 for L2-normalised descriptors) times 0.5: the distance between two unrelated
    unit descriptors is 2, half of it the margin. ``weights (2, B, B)`` replace the
    computed ones (for checks).
    """
    gaps, off = _triplet_gaps(D)
    if margin is None:
        margin = 0.5 * (1.0 if features_sq_norm is None else float(features_sq_norm))
    w = her_weights(-gaps.detach(), margin, D.shape[0]) if weights is None else weights
    return _mean_off(w * nnf.softplus(gaps), off)


def orientation_regression(pred: torch.Tensor, heading: torch.Tensor) -> torch.Tensor:
    """Mean squared error of ``pred (B, 2)`` against ``(cos, sin)`` of ``heading`` (radians)."""
    target = torch.stack([torch.cos(heading), torch.sin(heading)], dim=1)
    return ((pred - target) ** 2).sum(1).mean()


LOSSES = {
    "triplet": triplet_margin,
    "soft_margin": soft_margin,
    "weighted_soft_margin": weighted_soft_margin,
    "quadruplet": quadruplet,
    "weighted_soft_margin_quadruplet": weighted_soft_margin_quadruplet,
    "her": hard_exemplar_reweighted,
}

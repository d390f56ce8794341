"""Cross-view retrieval scored the CVUSA way: every ground view of a test set against
all its aerial tiles; recall at 1, 5, 10 and at the top 1 %, and the heading error."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from placeprint.crossview.data import as_float, view_at
from placeprint.crossview.models import CrossViewModel, dsm_heading, dsm_scores


@dataclass
class Retrieval:
    """Similarities ``(queries, tiles)``, the estimated heading of each query against its
    true tile (degrees, ``nan`` without DSM), and the milliseconds a query took."""

    scores: np.ndarray
    heading_deg: np.ndarray
    query_ms: float


def _batches(n: int, size: int):
    for i in range(0, n, size):
        yield slice(i, min(n, i + size))


@torch.no_grad()
def encode(model: CrossViewModel, x: torch.Tensor, ground: bool, batch: int = 64) -> torch.Tensor:
    model.eval()
    f = model.encode_ground if ground else model.encode_aerial
    return torch.cat([f(as_float(x[s])) for s in _batches(len(x), batch)])


@torch.no_grad()
def retrieve(
    model: CrossViewModel,
    ground: torch.Tensor,
    aerial_desc: torch.Tensor,
    fov_deg: float = 360.0,
    shift: torch.Tensor | None = None,
) -> Retrieval:
    """Score every ground input (turned by ``shift`` columns, cut to ``fov_deg``) against
    the encoded tiles ``aerial_desc``; time one query end to end (encoding included)."""
    n = len(ground)
    shift = torch.zeros(n, dtype=torch.long) if shift is None else shift
    views = view_at(ground, shift, fov_deg)
    t0 = time.perf_counter()
    g = encode(model, views, ground=True)
    if model.config.aggregation == "dsm":
        scores, shifts = [], []
        for s in _batches(n, 16):
            sc, sh = dsm_scores(g[s], aerial_desc)
            scores.append(sc)
            shifts.append(sh)
        S = torch.cat(scores).numpy()
        W = aerial_desc.shape[-1]
        # the heading against the true tile, refined between feature columns
        est = dsm_heading(g, aerial_desc[:n]).numpy() / W * 360.0
        heading = (est - shift.numpy() / ground.shape[-1] * 360.0 + 180.0) % 360.0 - 180.0
    else:
        S = (g @ aerial_desc.T).numpy()
        heading = np.full(n, np.nan)
    elapsed = time.perf_counter() - t0
    return Retrieval(S, np.abs(heading), 1000.0 * elapsed / max(n, 1))


def recall(scores: np.ndarray, ks=(1, 5, 10)) -> dict[str, float]:
    """``r1``, ``r5``, ``r10`` and ``r_top1pct``: the share of queries whose true tile
    (the same row) ranks within the top k (ties count against the query)."""
    true = np.diagonal(scores)[:, None]
    rank = (scores > true).sum(axis=1)  # tiles scoring strictly higher
    out = {f"r{k}": float((rank < k).mean()) for k in ks}
    top = max(1, math.ceil(scores.shape[1] * 0.01))
    out["r_top1pct"] = float((rank < top).mean())
    return out


def heading_summary(errors_deg: np.ndarray) -> dict[str, float]:
    """Median heading error and the share within 10 degrees (``nan`` without headings)."""
    if np.all(np.isnan(errors_deg)):
        return {"heading_error_median_deg": float("nan"), "heading_within_10deg": float("nan")}
    return {
        "heading_error_median_deg": float(np.nanmedian(errors_deg)),
        "heading_within_10deg": float(np.nanmean(errors_deg <= 10.0)),
    }


def random_shifts(rng: np.random.Generator, n: int, width: int) -> torch.Tensor:
    """``n`` random headings as column shifts of a ``width``-column ground input."""
    return torch.from_numpy(rng.integers(0, width, size=n))


def score(
    model: CrossViewModel,
    ground: torch.Tensor,
    aerial_desc: torch.Tensor,
    fov_deg: float = 360.0,
    shift: torch.Tensor | None = None,
) -> dict[str, float]:
    """Recall, heading error and milliseconds a query of :func:`retrieve`."""
    r = retrieve(model, ground, aerial_desc, fov_deg, shift)
    return {**recall(r.scores), **heading_summary(r.heading_deg), "query_ms": r.query_ms}

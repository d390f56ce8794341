"""The answer of every sequence matcher: ranked database positions, scores, confidence, work."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SequenceResult:
    """Best distinct matches of one query sequence, best first.

    - ``positions`` ``(k,) int64``: database index matched to the **last** query frame;
      ``-1`` pads when fewer than ``k`` answers exist.
    - ``scores`` ``(k,) float64``: the matcher's score, **lower is better** (``inf`` pads).
    - ``confidence``: how clearly the best answer beats everything outside a window
      around it; ``>= 1``, and ``1`` means a tie (see :func:`gap_confidence`).
    - ``ops``: operations spent on this query, counted as in ``docs/accounting.md``.
    - ``work``: the same operations by step (``{step: ops}``), where the matcher counts them.
    """

    positions: np.ndarray
    scores: np.ndarray
    confidence: float
    ops: int
    work: dict | None = None

    def __post_init__(self) -> None:
        self.positions = np.asarray(self.positions, dtype=np.int64).reshape(-1)
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        self.confidence = float(self.confidence)
        self.ops = int(self.ops)

    @property
    def best(self) -> int:
        """Database position of the best answer (``-1`` when there is none)."""
        return int(self.positions[0]) if self.positions.size else -1

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (``inf`` scores become ``None``)."""
        return {
            "positions": [int(p) for p in self.positions],
            "scores": [float(s) if np.isfinite(s) else None for s in self.scores],
            "confidence": self.confidence if np.isfinite(self.confidence) else None,
            "ops": self.ops,
        }

    @classmethod
    def empty(cls, k: int, ops: int = 0, work: dict | None = None) -> SequenceResult:
        """A result with no answer: ``k`` positions ``-1``, scores ``inf``, confidence 1."""
        return cls(np.full(k, -1), np.full(k, np.inf), 1.0, ops, work)


def gap_confidence(scores: np.ndarray, best: int, window: int) -> float:
    """Confidence of the best answer of a dense score array (lower is better).

    ``scores`` ``(N,)`` holds one score per database position (``inf``/NaN = invalid),
    ``best`` the index of the best one. With ``m`` the median valid score and ``s2`` the
    best valid score more than ``window`` positions from ``best``, returns
    ``(m - scores[best]) / (m - s2)``: ``>= 1``, ``1`` when another place is as good, large
    when the best stands out. Unlike a plain ratio ``s2 / s1`` it does not depend on the
    scores' sign, offset or scale (z-scored SeqSLAM scores are negative). Returns
    ``inf`` when nothing valid lies outside the window or ``s2`` is no better than ``m``.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    valid = np.isfinite(scores)
    if not valid[best]:
        return 1.0
    outside = valid.copy()
    outside[max(0, best - window) : best + window + 1] = False
    if not outside.any():
        return float("inf")
    median = float(np.median(scores[valid]))
    s1 = float(scores[best])
    s2 = float(scores[outside].min())
    if median - s2 <= 0:
        return float("inf") if median - s1 > 0 else 1.0
    return max(1.0, (median - s1) / (median - s2))

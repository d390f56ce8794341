"""One harness for every sequence matcher: windows of real queries, recall, work, latency.

A method is any callable ``search(X (L, d)) -> SequenceResult``. Queries are the
windows ``q-L+1 .. q`` of a query traverse; the truth of window ``q`` is the
database position of query frame ``q`` (``truth[q]``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from placeprint.evaluate.recall import query_ends, recall_at, window_mask
from placeprint.sequence.result import SequenceResult

Search = Callable[[np.ndarray], SequenceResult]


@dataclass
class LengthResult:
    """Everything measured for one method at one sequence length."""

    length: int
    ends: np.ndarray
    predicted: np.ndarray  # (n, k) positions
    correct1: np.ndarray  # (n,) bool
    ops: np.ndarray  # (n,) int
    seconds: np.ndarray  # (n,) float
    confidence: np.ndarray  # (n,) float
    extra: dict = field(default_factory=dict)

    def summary(self, truth: np.ndarray, subsets: dict[str, np.ndarray]) -> dict:
        """Recall@1/@5 per subset of frames (windows whose first and last frames are in
        it: :func:`~placeprint.evaluate.recall.window_mask`), ops and latency statistics."""
        out: dict = {"length": self.length, "queries": int(len(self.ends))}
        for name, mask in subsets.items():
            sel = window_mask(mask, self.ends, self.length)
            if sel.any():
                r = recall_at(self.predicted[sel], truth[self.ends[sel]], ks=(1, 5))
                out[f"r1_{name}"] = r[1]
                out[f"r5_{name}"] = r[5]
                out[f"n_{name}"] = int(sel.sum())
        out.update(confidence_summary(self.confidence, self.correct1))
        out["ops_mean"] = float(self.ops.mean()) if len(self.ops) else float("nan")
        out["ops_p95"] = float(np.percentile(self.ops, 95)) if len(self.ops) else float("nan")
        ms = self.seconds * 1000.0
        out["latency_ms_p50"] = float(np.median(ms)) if len(ms) else float("nan")
        out["latency_ms_p95"] = float(np.percentile(ms, 95)) if len(ms) else float("nan")
        out.update(self.extra)
        return out


def confidence_summary(confidence: np.ndarray, correct: np.ndarray, threshold: float = 2.0) -> dict:
    """How far the matcher's confidence can be trusted.

    ``recall_at_full_precision``: the largest share of queries that can be answered, most
    confident first, before the first wrong answer. ``answered``/``precision`` at
    ``confidence >= threshold``.
    """
    confidence = np.nan_to_num(np.asarray(confidence, float), posinf=np.finfo(float).max)
    correct = np.asarray(correct, bool)
    if correct.size == 0:
        return {}
    order = np.argsort(-confidence, kind="stable")
    wrong = np.flatnonzero(~correct[order])
    first_wrong = wrong[0] if wrong.size else correct.size
    sure = confidence >= threshold
    return {
        "recall_at_full_precision": float(first_wrong / correct.size),
        f"answered_at_conf{threshold:g}": float(sure.mean()),
        f"precision_at_conf{threshold:g}": float(correct[sure].mean()) if sure.any() else None,
    }


def run_windows(
    search: Search,
    queries: np.ndarray,
    truth: np.ndarray,
    length: int,
    stride: int = 5,
    k: int = 5,
    warmup: int = 3,
    ends: np.ndarray | None = None,
    progress: Callable[[int], None] | None = None,
) -> LengthResult:
    """Run ``search`` on every window of ``length`` frames (end frames every ``stride``)."""
    ends = query_ends(len(queries), length, stride) if ends is None else np.asarray(ends)
    for q in ends[:warmup]:
        search(queries[q - length + 1 : q + 1])
    predicted = np.full((len(ends), k), -1, np.int64)
    ops = np.zeros(len(ends), np.int64)
    seconds = np.zeros(len(ends))
    confidence = np.zeros(len(ends))
    work: dict[str, float] = {}
    for i, q in enumerate(ends):
        X = queries[q - length + 1 : q + 1]
        t0 = time.perf_counter()
        r = search(X)
        seconds[i] = time.perf_counter() - t0
        n = min(k, len(r.positions))
        predicted[i, :n] = r.positions[:n]
        ops[i] = r.ops
        confidence[i] = r.confidence
        for name, value in (r.work or {}).items():
            work[name] = work.get(name, 0.0) + value / len(ends)
        if progress is not None:
            progress(1)
    correct = (predicted[:, 0] >= 0) & (np.abs(predicted[:, 0] - truth[ends]) <= 2)
    extra = {"work_mean": work} if work else {}
    return LengthResult(length, ends, predicted, correct, ops, seconds, confidence, extra)


def evaluate(
    methods: dict[str, tuple[Search, np.ndarray]],
    truth: np.ndarray,
    lengths: Sequence[int],
    subsets: dict[str, np.ndarray],
    stride: int = 5,
    quiet: bool = False,
) -> dict[str, list[dict]]:
    """Summaries ``{method: [summary per length]}`` over the same windows for every method.

    ``methods`` maps a name to ``(search, queries)``: each method reads the query
    traverse in its own representation (row ``i`` = query frame ``i`` for all).
    """
    from placeprint.progress import progress_bar

    n = len(truth)
    total = sum(len(query_ends(n, L, stride)) for L in lengths) * len(methods)
    out: dict[str, list[dict]] = {}
    with progress_bar(quiet) as bar:
        task = bar.add_task("matching query sequences", total=total)
        for name, (search, queries) in methods.items():
            out[name] = []
            for L in lengths:
                res = run_windows(
                    search, queries, truth, L, stride, progress=lambda n: bar.advance(task, n)
                )
                out[name].append(res.summary(truth, subsets))
    return out

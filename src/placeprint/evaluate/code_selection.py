"""Which describer and quantizer make 7-byte codes whose keys survive a change of season?

Validation only: route-blocked folds inside Nordland frames <= 20000 (frames after
20000 are never read here). For each fold, each describer variant and each quantizer
option, the quantizer is fitted on the fold's fit rows (summer rows for unsupervised
parts, summer/winter pairs of the same rows for supervised parts) and the held-out
block is scored:

- share of code bits equal summer vs winter (all 56, and the first ``k`` key bits);
- key-hit rate: P[the summer key of the true place is among the ``P`` keys the winter
  frame probes], keys = the first ``k`` code bits (``OverloadedIndex`` with
  ``key_frames=1``), probes from :func:`placeprint.sequence.probes.probe_keys` with the
  codec's :meth:`~placeprint.codec.coarse.CoarseCodec.bit_error_rates` and the
  matcher's default ``flip_bits``/``max_flips``;
- single-frame R@1 by Hamming distance among the block's places, and sequence R@1 by
  exhaustive search on codes (sum of Hamming distances along the diagonal, velocity 1)
  at L = 10 and 25; ties count by the share of tied places that are right.

Every quantizer is a :class:`~placeprint.codec.coarse.CoarseCodec` (same state, same
encoding and probing code); the rotated options differ only by an orthogonal rotation
(and a bit order) folded into ``projection_`` after ``CoarseCodec.fit``.

Run: ``python -m placeprint.evaluate.code_selection --help``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from placeprint.codec.coarse import CoarseCodec
from placeprint.codec.projection import pca_basis
from placeprint.errors import PlaceprintError
from placeprint.evaluate.pipeline import REDUCED_DIMS, TUNE_LAST_FRAME, RealRoute
from placeprint.index.bitpack import codes_to_int
from placeprint.index.overloaded import sequence_keys
from placeprint.sequence.probes import probe_keys

CODE_SIZE = 7
KEY_BITS = (17, 20)
PROBES = (1, 12, 24)
LENGTHS = (10, 25)
DEFAULT_GAP = 50  # rows: descriptor autocorrelation on Nordland falls to ~0.02 by lag 50
FLIP_BITS = 10  # MatcherSettings defaults
MAX_FLIPS = 3
CORRECT_WITHIN = 2


# --------------------------------------------------------------------------- folds
def route_blocked_folds(
    frames: np.ndarray,
    last_tune_frame: int = TUNE_LAST_FRAME,
    k: int = 4,
    gap: int = DEFAULT_GAP,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` folds ``(fit_rows, eval_rows)`` of contiguous blocks of the tuning rows.

    Tuning rows are those with ``frames <= last_tune_frame``, taken in route (frame)
    order and cut into ``k`` contiguous blocks; each block is evaluated once. The fit
    rows are the other tuning rows except the ``gap`` rows on each side of the held-out
    block (distance counted in tuning rows along the route), so no fit row lies within
    ``gap`` rows of an eval row. Row numbers index ``frames``.
    """
    frames = np.asarray(frames)
    if frames.ndim != 1:
        raise PlaceprintError(f"frames must be 1-D, got shape {frames.shape}")
    if int(k) < 2 or int(gap) < 0:
        raise PlaceprintError(f"need k >= 2 and gap >= 0, got k={k}, gap={gap}")
    rows = np.flatnonzero(frames <= last_tune_frame)
    rows = rows[np.argsort(frames[rows], kind="stable")]
    n = len(rows)
    if n < k * (2 * gap + 2):
        raise PlaceprintError(
            f"{n} tuning rows are too few for {k} blocks with a gap of {gap} rows"
        )
    bounds = np.linspace(0, n, k + 1).round().astype(int)
    pos = np.arange(n)
    folds = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        fit = (pos < a - gap) | (pos >= b + gap)
        folds.append((rows[fit], rows[a:b]))
    return folds


# ---------------------------------------------------------------------- quantizers
def _refit_with_map(
    codec: CoarseCodec, X: np.ndarray, paired: np.ndarray | None, W: np.ndarray
) -> CoarseCodec:
    """Fold ``Z -> Z @ W`` into a fitted codec, re-scale to unit variance on ``X`` and
    re-fit median thresholds and (with ``paired``) the per-dimension noise."""
    P = codec.projection_.astype(np.float64) @ W
    off = codec.offset_.astype(np.float64) @ W
    Z = (X - codec.mean_) @ P - off
    centre, scale = Z.mean(axis=0), Z.std(axis=0)
    scale[scale < 1e-12] = 1.0
    codec.projection_ = (P / scale).astype(np.float32)
    codec.offset_ = ((off + centre) / scale).astype(np.float32)
    Zs = codec.transform(X)
    codec._fit_quantizer(Zs)
    if paired is not None:
        codec.noise_ = (Zs[: len(paired)] - codec.transform(paired)).std(axis=0).astype(np.float32)
    else:
        codec.noise_ = np.ones(codec.n_dims, np.float32)
    return codec


def sign_agreement(codec: CoarseCodec, X: np.ndarray, paired: np.ndarray) -> np.ndarray:
    """Per-dimension share ``(n_dims,)`` of pairs whose median-threshold bit agrees."""
    mid = codec.thresholds_[:, codec.thresholds_.shape[1] // 2]
    return ((codec.transform(X) > mid) == (codec.transform(paired) > mid)).mean(axis=0)


def itq_rotation(
    V: np.ndarray, paired: np.ndarray | None = None, n_iter: int = 50, seed: int = 0
) -> np.ndarray:
    """Orthogonal ``R (c, c)`` minimising the binary quantization loss (ITQ).

    Without ``paired``: Gong & Lazebnik's ITQ, ``min ||B - V R||^2`` over ``B`` in
    {-1, 1} and orthogonal ``R``. With ``paired`` (row i = the same place as ``V[i]``
    under another condition): one code shared by both views,
    ``min ||B - V R||^2 + ||B - V' R||^2``, so ``B = sign((V + V') R)`` and both views
    are pulled away from the threshold on the same side (sign stability across
    conditions).
    """
    V = np.asarray(V, np.float64)
    S = V if paired is None else V + np.asarray(paired, np.float64)
    c = V.shape[1]
    R, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((c, c)))
    for _ in range(n_iter):
        B = np.where(S @ R >= 0, 1.0, -1.0)
        U, _, Wt = np.linalg.svd(S.T @ B)
        R = U @ Wt
    return R


class PCASigns(CoarseCodec):
    """Plain PCA signs (median thresholds), pairs ignored; unit noise for probing."""

    def fit(self, X: np.ndarray, paired: np.ndarray | None = None) -> PCASigns:
        """Fit on database rows ``X`` only."""
        super().fit(X)
        return self


class InvariantSigns(CoarseCodec):
    """The current codec: ``CoarseCodec.fit(X, paired=...)`` (invariant projection).

    ``order="agreement"`` re-orders the dimensions by sign agreement on the pairs
    (most stable first: the key bits), an ablation of the rotated options' ordering.
    """

    def __init__(self, order: str = "eigen", **kwargs) -> None:
        super().__init__(**kwargs)
        self.order = order

    def fit(self, X: np.ndarray, paired: np.ndarray | None = None) -> InvariantSigns:
        """Fit projection (invariant when ``paired`` is given), thresholds and noise."""
        super().fit(X, paired=paired)
        if self.order == "agreement" and paired is not None:
            order = np.argsort(-sign_agreement(self, X[: len(paired)], paired), kind="stable")
            _refit_with_map(self, X, paired, np.eye(self.n_dims)[:, order])
        return self


class RotatedSigns(CoarseCodec):
    """A base projection (PCA or invariant), then an ITQ-style rotation of its dims.

    ``base``: ``"pca"`` or ``"invariant"`` (the latter needs pairs). ``rotation``:
    ``"itq"`` (summer database rows), ``"concat"`` (ITQ on summer and winter rows
    stacked) or ``"paired"`` (one code shared by each pair, see :func:`itq_rotation`).
    The rotated dims are ordered by sign agreement on the pairs (most stable first, so
    the key holds the most stable bits); ``"pca"`` + ``"itq"`` is classic unsupervised
    ITQ: pairs are ignored, dims ordered by variance, unit noise for probing. With
    ``key_block = b`` the rotation is block-diagonal: the base's first ``b`` dims (the
    most stable ones, where the key lives) are rotated among themselves, the rest
    among themselves, so a rotation cannot trade key stability for the other bits.
    """

    def __init__(
        self,
        base: str = "invariant",
        rotation: str = "paired",
        n_iter: int = 50,
        key_block: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if base not in ("pca", "invariant") or rotation not in ("itq", "concat", "paired"):
            raise PlaceprintError(f"unknown base/rotation {base!r}/{rotation!r}")
        if key_block is not None and not 1 <= key_block < self.n_dims:
            raise PlaceprintError(f"key_block must be in 1..{self.n_dims - 1}, got {key_block}")
        self.base = base
        self.rotation = rotation
        self.n_iter = int(n_iter)
        self.key_block = key_block

    def _rotation(self, V: np.ndarray, Vp: np.ndarray | None, m: int) -> np.ndarray:
        if self.rotation == "itq":
            return itq_rotation(V, n_iter=self.n_iter)
        if self.rotation == "concat":
            return itq_rotation(np.concatenate([V[:m], Vp]), n_iter=self.n_iter)
        return itq_rotation(V[:m], Vp, n_iter=self.n_iter)

    def fit(self, X: np.ndarray, paired: np.ndarray | None = None) -> RotatedSigns:
        """Fit the base projection, learn the rotation, fold it into ``projection_``."""
        X = np.asarray(X, np.float32)
        if self.base == "pca" and self.rotation == "itq":
            paired = None  # classic ITQ: unsupervised, pairs ignored (as PCASigns)
        elif paired is None:
            raise PlaceprintError(f"{self.base}+{self.rotation} needs paired descriptors")
        super().fit(X, paired=paired if self.base == "invariant" else None)
        V = self.transform(X)
        Vp = None if paired is None else self.transform(paired)
        m = 0 if paired is None else len(paired)
        c = self.n_dims
        blocks = [(0, c)] if self.key_block is None else [(0, self.key_block), (self.key_block, c)]
        R = np.zeros((c, c))
        for a, b in blocks:  # block-diagonal: key dims are only mixed among themselves
            sub = None if Vp is None else Vp[:, a:b]
            R[a:b, a:b] = self._rotation(V[:, a:b], sub, m)
        _refit_with_map(self, X, paired, R)
        if paired is not None:
            score = sign_agreement(self, X[:m], paired)
        else:
            score = self.transform(X).var(axis=0)
        order = np.concatenate([a + np.argsort(-score[a:b], kind="stable") for a, b in blocks])
        _refit_with_map(self, X, paired, np.eye(c)[:, order])
        return self


def default_options(code_size: int = CODE_SIZE) -> dict[str, Callable[[], CoarseCodec]]:
    """The quantizer options compared by default (name -> factory of an unfitted codec).

    ``pca_dims=256, regularisation=1e-2`` are CoarseCodec's defaults (the current
    pipeline); the ``d1024 r1`` options learn the invariant projection from 1024 PCA
    dims with a ridge of 1x the mean eigenvalue of the difference covariance (needs
    descriptors reduced to >= 1024 dims, see :class:`DescriberVariant`).
    """
    tuned = {"pca_dims": 1024, "regularisation": 1.0, "code_size": code_size}
    return {
        "pca": lambda: PCASigns(code_size=code_size),
        "pca+itq": lambda: RotatedSigns("pca", "itq", code_size=code_size),
        "pca+pitq": lambda: RotatedSigns("pca", "paired", code_size=code_size),
        "inv": lambda: InvariantSigns(code_size=code_size),
        "inv+order": lambda: InvariantSigns("agreement", code_size=code_size),
        "inv+itq": lambda: RotatedSigns("invariant", "itq", code_size=code_size),
        "inv+citq": lambda: RotatedSigns("invariant", "concat", code_size=code_size),
        "inv+pitq": lambda: RotatedSigns("invariant", "paired", code_size=code_size),
        "inv+bpitq": lambda: RotatedSigns("invariant", "paired", key_block=20, code_size=code_size),
        "inv d1024 r1": lambda: InvariantSigns(**tuned),
        "inv+order d1024 r1": lambda: InvariantSigns("agreement", **tuned),
        "inv+bpitq d1024 r1": lambda: RotatedSigns("invariant", "paired", key_block=20, **tuned),
    }


# ------------------------------------------------------------------------ metrics
def code_bits(codes: np.ndarray) -> np.ndarray:
    """``(n, 8 * code_size) uint8`` bits of codes; bit ``i`` is dimension ``i``."""
    return np.unpackbits(codes, axis=1, bitorder="little")


def first_bits_keys(codes: np.ndarray, key_bits: int) -> np.ndarray:
    """Single-frame keys ``(n,) int64``: the first ``key_bits`` bits (``key_frames=1``)."""
    return sequence_keys(codes_to_int(codes), [key_bits])


def key_hits(
    codec: CoarseCodec,
    Z_db: np.ndarray,
    Z_q: np.ndarray,
    key_bits: int,
    n_probes: int,
    flip_bits: int = FLIP_BITS,
    max_flips: int = MAX_FLIPS,
) -> np.ndarray:
    """``(n,) bool``: is the key of database row i among the probed keys of query row i?

    ``Z_db``/``Z_q`` are transformed descriptors of the same places (row-aligned).
    """
    true_keys = first_bits_keys(codec.quantize(Z_db), key_bits)
    base = first_bits_keys(codec.quantize(Z_q), key_bits)
    errors = codec.bit_error_rates(codec.key_margins(Z_q, key_bits))
    probes, _ = probe_keys(base, errors, n_probes, flip_bits, max_flips)
    return (probes == true_keys[:, None]).any(axis=1)


def hamming_matrix(a_bits: np.ndarray, b_bits: np.ndarray) -> np.ndarray:
    """Hamming distances ``(n_a, n_b) int64`` between rows of 0/1 bit arrays."""
    a = a_bits.astype(np.int64)
    b = b_bits.astype(np.int64)
    return a @ (1 - b).T + (1 - a) @ b.T


def _expected_hits(scores: np.ndarray, truth: np.ndarray, valid_cols: np.ndarray) -> np.ndarray:
    """Per row of ``scores`` (lower is better), the share of best-scoring valid columns
    within ``CORRECT_WITHIN`` of ``truth`` (ties: expected R@1 of a random pick)."""
    s = np.where(valid_cols[None, :], scores, np.iinfo(np.int64).max)
    best = s == s.min(axis=1, keepdims=True)
    near = np.abs(np.arange(s.shape[1])[None, :] - truth[:, None]) <= CORRECT_WITHIN
    return (best & near).sum(axis=1) / best.sum(axis=1)


def sequence_scores(D: np.ndarray, length: int) -> np.ndarray:
    """``S[q, e] = sum_t D[q - t, e - t]`` for ``t < length`` (velocity 1); rows/cols
    ``< length - 1`` are left at a large value (no full window)."""
    n_q, n_e = D.shape
    S = np.full((n_q, n_e), np.iinfo(np.int64).max // 4, np.int64)
    acc = np.zeros((n_q - length + 1, n_e - length + 1), np.int64)
    for t in range(length):
        acc += D[length - 1 - t : n_q - t, length - 1 - t : n_e - t]
    S[length - 1 :, length - 1 :] = acc
    return S


def recall_single(D: np.ndarray) -> float:
    """Single-frame R@1 from query x database Hamming distances (row i = place i)."""
    n = D.shape[0]
    return float(_expected_hits(D, np.arange(n), np.ones(D.shape[1], bool)).mean())


def recall_sequence(D: np.ndarray, length: int, mask: np.ndarray | None = None) -> float:
    """Sequence R@1 at ``length`` (exhaustive, velocity 1) over queries with a full window."""
    n = D.shape[0]
    S = sequence_scores(D, length)
    valid = np.arange(D.shape[1]) >= length - 1
    q = np.arange(length - 1, n)
    if mask is not None:
        q = q[mask[q]]
    return float(_expected_hits(S[q], q, valid).mean()) if len(q) else float("nan")


def score_codes(
    database: np.ndarray,
    queries: np.ndarray,
    fit_rows: np.ndarray,
    eval_rows: np.ndarray,
    quantizer: CoarseCodec,
    dark: np.ndarray | None = None,
    key_bits: Sequence[int] = KEY_BITS,
    probes: Sequence[int] = PROBES,
    lengths: Sequence[int] = LENGTHS,
) -> dict[str, float]:
    """Fit ``quantizer`` on the fit rows and score its codes on the (contiguous) eval rows.

    ``database``/``queries``: row-aligned summer/winter descriptors (already reduced).
    The quantizer gets ``fit(database[fit_rows], paired=queries[fit_rows])``; unsupervised
    options ignore the pairs. Returns bit agreement (all bits and ``agree_k{k}``),
    ``hit_k{k}_p{P}``, ``r1_single``, ``r1_L{L}`` and, with ``dark``, ``hit_..._nondark``.
    """
    fit_rows = np.asarray(fit_rows)
    eval_rows = np.asarray(eval_rows)
    if np.any(np.diff(eval_rows) != 1):
        raise PlaceprintError("eval rows must be one contiguous run of the route")
    t0 = time.perf_counter()
    quantizer.fit(database[fit_rows], paired=queries[fit_rows])
    seconds_fit = time.perf_counter() - t0
    Zd = quantizer.transform(database[eval_rows])
    Zq = quantizer.transform(queries[eval_rows])
    bd, bq = code_bits(quantizer.quantize(Zd)), code_bits(quantizer.quantize(Zq))
    equal = bd == bq
    out: dict[str, float] = {"agree_all": float(equal.mean())}
    nondark = None if dark is None else ~np.asarray(dark)[eval_rows]
    for k in key_bits:
        out[f"agree_k{k}"] = float(equal[:, :k].mean())
        for p in probes:
            hit = key_hits(quantizer, Zd, Zq, k, p)
            out[f"hit_k{k}_p{p}"] = float(hit.mean())
            if nondark is not None and nondark.any():
                out[f"hit_k{k}_p{p}_nondark"] = float(hit[nondark].mean())
    D = hamming_matrix(bq, bd)
    out["r1_single"] = recall_single(D)
    for L in lengths:
        out[f"r1_L{L}"] = recall_sequence(D, L)
        if nondark is not None:
            out[f"r1_L{L}_nondark"] = recall_sequence(D, L, nondark)
    out["seconds_fit"] = seconds_fit
    return out


# ------------------------------------------------------------------ describers
@dataclass
class DescriberVariant:
    """A described route plus what is learned from it per fold before the quantizer.

    ``whitening``: ``None``, ``"pca"`` (PCA-whitening fitted on the fold's summer fit
    rows, as the deep describers' default) or ``"pairs"`` (learned from the fold's
    summer/winter fit pairs). Then PCA to ``reduce_dims`` fitted on the summer fit rows
    (as :func:`placeprint.evaluate.pipeline.fit_pipeline`).
    """

    route: RealRoute
    whitening: str | None = None
    whiten_dims: int = 1024
    whiten_eps: float = 0.1
    reduce_dims: int = REDUCED_DIMS
    cache: dict = field(default_factory=dict, repr=False)

    def reduced(self, fit_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Summer and winter descriptors ``(n, D) float32`` with the per-fold learning
        fitted on ``fit_rows`` only (cached per fold)."""
        key = (len(fit_rows), int(fit_rows[0]), int(fit_rows[-1]), int(fit_rows.sum()))
        if key in self.cache:
            return self.cache[key]
        S = np.asarray(self.route.database, np.float32)
        W = np.asarray(self.route.queries, np.float32)
        if self.whitening is not None:
            from placeprint.describe.whitening import LearnedWhitening, PCAWhitening

            if self.whitening == "pca":
                w = PCAWhitening(self.whiten_dims, self.whiten_eps).fit(S[fit_rows])
            elif self.whitening == "pairs":
                w = LearnedWhitening(self.whiten_dims, self.whiten_eps).fit(
                    S[fit_rows], W[fit_rows]
                )
            else:
                raise PlaceprintError(f"unknown whitening {self.whitening!r}")
            S, W = w.transform(S), w.transform(W)
        dims = min(self.reduce_dims, S.shape[1], len(fit_rows) - 1)
        mean, basis, _ = pca_basis(S[fit_rows], dims)
        out = (
            ((S - mean) @ basis).astype(np.float32),
            ((W - mean) @ basis).astype(np.float32),
        )
        self.cache = {key: out}  # one fold at a time keeps memory small
        return out


def compare_options(
    route_by_describer: Mapping[str, DescriberVariant | RealRoute],
    options: Mapping[str, Callable[[], CoarseCodec]],
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    quiet: bool = True,
) -> list[dict]:
    """Score every (describer, option) on every fold; rows of fold means (and stds).

    Each row: ``describer``, ``option``, ``folds``, ``seconds``, ``per_fold`` (the
    fold results) and, per metric, the mean over folds (``metric``) and the standard
    deviation (``metric_std``).
    """
    rows = []
    for dname, variant in route_by_describer.items():
        if isinstance(variant, RealRoute):
            variant = DescriberVariant(variant)
        per_option: dict[str, list[dict]] = {o: [] for o in options}
        seconds = dict.fromkeys(options, 0.0)
        for fit_rows, eval_rows in folds:
            t0 = time.perf_counter()
            S, W = variant.reduced(fit_rows)
            t_reduce = time.perf_counter() - t0
            for oname, make in options.items():
                t0 = time.perf_counter()
                res = score_codes(S, W, fit_rows, eval_rows, make(), variant.route.dark)
                seconds[oname] += time.perf_counter() - t0 + t_reduce / len(options)
                per_option[oname].append(res)
        for oname, results in per_option.items():
            row: dict = {"describer": dname, "option": oname, "folds": len(results)}
            for metric in results[0]:
                vals = np.array([r[metric] for r in results], float)
                row[metric] = float(np.nanmean(vals))
                row[f"{metric}_std"] = float(np.nanstd(vals))
            row["seconds"] = seconds[oname]
            row["per_fold"] = results
            rows.append(row)
            if not quiet:
                print(
                    f"{dname:>14} {oname:>10}  agree {row['agree_all']:.3f}  "
                    f"hit20x24 {row['hit_k20_p24']:.3f}  R@1 {row['r1_single']:.3f}  "
                    f"L25 {row['r1_L25']:.3f}",
                    flush=True,
                )
    return rows


TABLE_METRICS = (
    "agree_all",
    "agree_k17",
    "agree_k20",
    "hit_k17_p1",
    "hit_k17_p12",
    "hit_k17_p24",
    "hit_k20_p1",
    "hit_k20_p12",
    "hit_k20_p24",
    "r1_single",
    "r1_L10",
    "r1_L25",
)


def print_comparison(rows: list[dict], metrics: Sequence[str] = TABLE_METRICS) -> None:
    """The option x metric table (fold means)."""
    from placeprint.evaluate.report import print_table

    print_table(
        "Code selection: Nordland frames <= 20000, route-blocked folds (fold means)",
        ["describer", "quantizer", *metrics],
        [[r["describer"], r["option"], *(r[m] for m in metrics)] for r in rows],
    )


def describe_tuning_route(name: str, quiet: bool = True, **options) -> RealRoute:
    """Describe Nordland frames <= 20000 only (both seasons) with describer ``name``.

    A learning describer is fitted on all summer tuning frames (unsupervised); later
    frames are never opened.
    """
    from placeprint import describe
    from placeprint.datasets.nordland import DARK_THRESHOLD, load_nordland
    from placeprint.describe.images import load_gray
    from placeprint.sources import describe_files

    nordland = load_nordland()
    order = np.argsort(nordland.frames, kind="stable")
    rows = order[nordland.frames[order] <= TUNE_LAST_FRAME]
    summer = [nordland.summer[i] for i in rows]
    winter = [nordland.winter[i] for i in rows]
    d = describe.get(name, **options)
    if getattr(d, "learns", False):
        d.fit(summer)
    S, kept_s = describe_files(d, summer, progress=not quiet, cache=False)
    W, kept_w = describe_files(d, winter, progress=not quiet, cache=False)
    if len(kept_s) != len(rows) or len(kept_w) != len(rows):
        raise PlaceprintError("some Nordland tuning frames could not be read")
    dark = np.array(
        [
            min(load_gray(a).mean(), load_gray(b).mean()) < DARK_THRESHOLD
            for a, b in zip(summer, winter, strict=True)
        ]
    )
    return RealRoute(S, W, dark, nordland.frames[rows], d.config())


def main(argv: list[str] | None = None) -> list[dict]:
    """Command line: describe (or load ``--arrays`` npz files), compare, print, save JSON."""
    import argparse
    import json
    from pathlib import Path

    p = argparse.ArgumentParser(prog="python -m placeprint.evaluate.code_selection")
    p.add_argument(
        "--describers",
        default="seqslam,cnn_gem,cnn_gem:pca,cnn_gem:pairs",
        help="comma-separated NAME[:whitening]; whitening pca|pairs is fitted per fold",
    )
    p.add_argument(
        "--arrays",
        type=Path,
        default=None,
        help="folder of NAME.npz (summer, "
        "winter, frames, dark) described earlier; frames must all be <= 20000",
    )
    p.add_argument("--options", default=",".join(default_options()))
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--gap", type=int, default=DEFAULT_GAP)
    p.add_argument(
        "--reduce-dims",
        type=int,
        default=1024,
        help="PCA dims (fitted per fold on summer fit rows) before the quantizer; with "
        ">= 256 the pca_dims=256 options equal the current pipeline's 256-d reduction",
    )
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    all_options = default_options()
    options = {o: all_options[o] for o in a.options.split(",") if o}
    routes: dict[str, RealRoute] = {}
    variants: dict[str, DescriberVariant] = {}
    t0 = time.perf_counter()
    for spec in a.describers.split(","):
        name, _, whitening = spec.partition(":")
        if name not in routes:
            if a.arrays is not None:
                z = np.load(a.arrays / f"{name}.npz")
                if np.any(z["frames"] > TUNE_LAST_FRAME):
                    raise PlaceprintError(f"{name}.npz holds frames after {TUNE_LAST_FRAME}")
                routes[name] = RealRoute(
                    z["summer"], z["winter"], z["dark"], z["frames"], {"name": name}
                )
            else:
                raw = {"whiten_dims": None} if name in ("cnn_gem", "cnn_netvlad", "vlad") else {}
                routes[name] = describe_tuning_route(name, **raw)
        eps = 1e-2 if name == "vlad" else 0.1
        variants[spec] = DescriberVariant(
            routes[name], whitening or None, whiten_eps=eps, reduce_dims=a.reduce_dims
        )
    folds = route_blocked_folds(next(iter(routes.values())).frames, k=a.k, gap=a.gap)
    rows: list[dict] = []
    for spec, variant in variants.items():  # saved after each describer (long runs)
        rows.extend(compare_options({spec: variant}, options, folds, quiet=False))
        if a.json is not None:
            from placeprint.atomic import atomic_write_bytes

            done = {"argv": argv, "seconds": time.perf_counter() - t0, "rows": rows}
            atomic_write_bytes(a.json, json.dumps(done, indent=1).encode())
    print_comparison(rows)
    print(f"total {time.perf_counter() - t0:.0f} s")
    return rows


if __name__ == "__main__":  # pragma: no cover
    main()

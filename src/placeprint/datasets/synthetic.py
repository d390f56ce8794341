"""Synthetic routes of up to millions of places, fitted to real descriptors.

Garg & Milford (ICRA 2020) put 10 million distractor places around a real
dataset by drawing descriptors with real statistics, smoothing them along a
pseudo-route and re-scaling them to the real statistics; queries were the
database plus a bias and noise. :class:`RouteGenerator` does the same in a
reduced (e.g. PCA-96, see :mod:`placeprint.datasets.reduce`) space.

Model, per dimension ``d`` (PCA dims are uncorrelated at lag 0, so dims are
generated independently):

* database ``x_t = mean_d + std_d * u_t``, ``u`` a unit-variance stationary
  Gaussian process whose correlation along the route is
  ``corr(u_t, u_{t+k}) = weight_[d, 0] * ar_[d, 0]**k + weight_[d, 1] * ar_[d, 1]**k``
  for ``k >= 1``: a fast and a slow AR(1) component plus an independent
  per-place part holding the rest of the variance. Real descriptors need all
  three: their correlation drops sharply from lag 0 to 1, again from 1 to 2,
  then decays slowly. ``u`` is made by the ARMA(2,2) filter with exactly that
  correlation (one noise draw per value). With ``smoothing=L`` instead, ``u``
  is a moving average of ``L`` places for every dim (correlation
  ``max(0, 1 - k/L)``), the older baseline.
* queries ``q_t = x_t + bias_d + (slope_d - 1) * (x_t - mean_d) + e_t``, ``e`` a
  second process of the same kind with std ``noise_std_d`` and its own fitted
  correlation along the route (real seasonal change is strongly correlated
  along the route). ``query_model="additive"`` fixes ``slope = 1`` (queries =
  database + bias + noise); ``"regression"`` (default) fits ``slope`` by least
  squares, which reproduces the real per-dim correlation between conditions
  (on Nordland it is low: winter pulls the top PCA dims towards the mean).
  Either way ``q - x`` has the real mean and std per dim.

Synthetic change is still easier than real change (Gaussian, stationary,
independent across dims, no tunnels or dark frames): judge methods on real
queries too.

Rows are made in fixed blocks of ``BLOCK`` places from noise tiles of ``TILE``
rows seeded by ``(seed, stream, tile number)``; each block starts its filter
early enough for the filter memory to fade below ``BURN_TOL``, so place ``p``
is the same float32 row however the route is chunked or accessed.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> db = np.cumsum(rng.standard_normal((500, 4)), axis=0).astype(np.float32) * 0.1
>>> gen = RouteGenerator(seed=1).fit(db, db + 0.5 + rng.standard_normal((500, 4)))
>>> next(gen.database(10, chunk=4)).shape
(4, 4)
>>> gen.queries(np.array([3, 7])).shape
(2, 4)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numba
import numpy as np

from placeprint.datasets.reduce import (
    check_header,
    check_matrix,
    load_npz_checked,
    save_npz_atomic,
)
from placeprint.errors import PlaceprintError

MAGIC = "placeprint.RouteGenerator"
VERSION = 1
BLOCK = 8_192  # places per output block (the unit of determinism and of random access)
TILE = 2_048  # rows per seeded noise tile
BURN_TOL = 1e-3  # a block's filter starts where the AR memory has decayed to this
MAX_AR = 0.995  # largest AR coefficient fitted (correlation length 200 places; 2,500 real
# places cannot tell longer ones apart, and the burn-in of every block grows with it)
MAX_LAG = 20  # correlation along the route is fitted on lags 1..MAX_LAG
MIN_ROWS = 100  # fewest real places fit() accepts
REPORT_LAGS = (1, 2, 5, 10, 20)
QUERY_MODELS = ("regression", "additive")
_DB, _NOISE = 0, 1  # noise streams


# ----------------------------------------------------------------------------- fitting


def route_acf(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Correlation along the route per dim: ``(n, D)`` -> ``(max_lag, D)`` for lags 1..max_lag.

    Dims with zero variance get correlation 0.
    """
    xc = x - x.mean(axis=0)
    var = (xc * xc).mean(axis=0)
    safe = np.where(var > 0, var, 1.0)
    out = np.empty((max_lag, x.shape[1]))
    for k in range(1, max_lag + 1):
        out[k - 1] = (xc[:-k] * xc[k:]).mean(axis=0) / safe
    out[:, var <= 0] = 0.0
    return out


def fit_two_ar1(acf: np.ndarray, grid_size: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``acf[k-1, d] ~ w1 r1**k + w2 r2**k`` (``w >= 0``, ``w1 + w2 <= 1``) by least squares.

    ``acf (K, D)`` for lags 1..K -> ``weight (D, 2)``, ``ar (D, 2)`` with ``r1 <= r2``
    (fast, slow component; a component with weight 0 gets ``r = 0``). The pair
    ``r1 < r2`` is searched on a grid dense near 1 (up to ``MAX_AR``); the weights
    are the constrained least-squares optimum for each pair.
    """
    n_lags, dim = acf.shape
    lags = np.arange(1, n_lags + 1, dtype=np.float64)
    grid = 1.0 - np.exp(np.linspace(0.0, np.log(1.0 - MAX_AR), grid_size))
    i, j = np.triu_indices(grid_size, 1)
    p1, p2 = grid[i][:, None] ** lags, grid[j][:, None] ** lags  # (M, K)
    a11, a22, a12 = (p1 * p1).sum(1)[:, None], (p2 * p2).sum(1)[:, None], (p1 * p2).sum(1)[:, None]
    y1, y2 = p1 @ acf, p2 @ acf  # (M, D)
    with np.errstate(divide="ignore", invalid="ignore"):
        det = a11 * a22 - a12 * a12
        w1, w2 = (a22 * y1 - a12 * y2) / det, (a11 * y2 - a12 * y1) / det
        inside = (w1 >= 0) & (w2 >= 0) & (w1 + w2 <= 1) & (det > 1e-12)
        diff = p1 - p2  # on the edge w1 + w2 = 1
        edge = ((diff @ acf) - (diff * p2).sum(1)[:, None]) / (diff * diff).sum(1)[:, None]
        only1 = np.clip(y1 / a11, 0.0, 1.0)
        only2 = np.clip(y2 / a22, 0.0, 1.0)
    edge = np.clip(np.nan_to_num(edge), 0.0, 1.0)
    only1, only2 = np.nan_to_num(only1), np.nan_to_num(only2)
    zero = np.zeros_like(y1)
    candidates = [
        (np.where(inside, w1, 0.0), np.where(inside, w2, 0.0), inside),
        (only1, zero, None),
        (zero, only2, None),
        (edge, 1.0 - edge, None),
    ]
    dims = np.arange(dim)
    best = np.full(dim, np.inf)
    weight, ar = np.zeros((dim, 2)), np.zeros((dim, 2))
    for c1, c2, valid in candidates:
        resid = acf[None] - c1[:, None, :] * p1[:, :, None] - c2[:, None, :] * p2[:, :, None]
        sse = (resid * resid).sum(axis=1)
        if valid is not None:
            sse = np.where(valid, sse, np.inf)
        m = np.argmin(sse, axis=0)
        better = sse[m, dims] < best
        best = np.where(better, sse[m, dims], best)
        weight[better] = np.stack([c1[m, dims], c2[m, dims]], axis=1)[better]
        ar[better] = np.stack([grid[i][m], grid[j][m]], axis=1)[better]
    ar[weight <= 0] = 0.0
    return weight, ar


def arma_coefficients(weight: np.ndarray, ar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ARMA(2,2) filter of the unit-variance process with lag-k correlation ``sum_i w_i r_i**k``.

    ``weight, ar (D, 2)`` -> ``phi (D, 2)``, ``b (D, 3)`` such that
    ``y_t = phi1 y_{t-1} + phi2 y_{t-2} + b0 e_t + b1 e_{t-1} + b2 e_{t-2}`` with unit
    white ``e`` has variance 1 and that correlation (closed-form spectral factor).
    """
    w = np.clip(weight, 0.0, 1.0)
    w = w / np.maximum(w.sum(axis=1, keepdims=True), 1.0)
    r = np.clip(ar, 0.0, MAX_AR)
    w0, (w1, w2), (r1, r2) = 1.0 - w.sum(axis=1), w.T, r.T
    # spectrum * |1 - r1 z|^2 |1 - r2 z|^2 = c0 + c1 (z + 1/z) + c2 (z^2 + 1/z^2)
    q1, q2 = 1.0 + r1 * r1, 1.0 + r2 * r2
    v1, v2 = w1 * (1.0 - r1 * r1), w2 * (1.0 - r2 * r2)
    c2 = w0 * r1 * r2
    c1 = -w0 * (q1 * r2 + q2 * r1) - v1 * r2 - v2 * r1
    c0 = w0 * (q1 * q2 + 2.0 * r1 * r2) + v1 * q2 + v2 * q1
    at_one = np.sqrt(np.maximum(c0 + 2.0 * c1 + 2.0 * c2, 0.0))  # |B(1)|
    at_minus_one = np.sqrt(np.maximum(c0 - 2.0 * c1 + 2.0 * c2, 0.0))  # |B(-1)|
    s = (at_one + at_minus_one) / 2.0  # b0 + b2
    b1 = (at_one - at_minus_one) / 2.0
    root = np.sqrt(np.maximum(s * s - 4.0 * c2, 0.0))
    b = np.stack([(s + root) / 2.0, b1, (s - root) / 2.0], axis=1)
    phi = np.stack([r1 + r2, -r1 * r2], axis=1)
    return phi, b


def model_acf(weight: np.ndarray, ar: np.ndarray, smoothing: int | None, lags) -> np.ndarray:
    """Correlation along the route the model implies: ``(len(lags), D)``."""
    k = np.asarray(lags, dtype=np.float64)[:, None]
    if smoothing is not None:
        return np.broadcast_to(np.maximum(0.0, 1.0 - k / smoothing), (len(k), len(weight)))
    return weight[None, :, 0] * ar[None, :, 0] ** k + weight[None, :, 1] * ar[None, :, 1] ** k


# ----------------------------------------------------------------------------- generation


@numba.njit(cache=True)
def _filter(e, phi, b, lag, skip, mean, gain, out):  # pragma: no cover - compiled
    """ARMA(2,2) (+ ``- e_{t-lag}`` when ``lag > 0``) over ``e (m, D) float32``.

    ``out (m - skip, D) float32`` gets ``mean + gain * y_t`` for ``t >= skip``;
    the filter starts from zero state at ``t = 0``.
    """
    m, dim = e.shape
    y1, y2, v = np.zeros(dim), np.zeros(dim), np.zeros(dim)
    for t in range(m):
        for d in range(dim):
            v[d] = phi[d, 0] * y1[d] + phi[d, 1] * y2[d] + b[d, 0] * e[t, d]
        if t >= 1:
            for d in range(dim):
                v[d] += b[d, 1] * e[t - 1, d]
        if t >= 2:
            for d in range(dim):
                v[d] += b[d, 2] * e[t - 2, d]
        if lag > 0 and t >= lag:
            for d in range(dim):
                v[d] -= e[t - lag, d]
        for d in range(dim):
            y2[d] = y1[d]
            y1[d] = v[d]
        if t >= skip:
            for d in range(dim):
                out[t - skip, d] = mean[d] + gain[d] * v[d]


class _Process:
    """One stationary per-dim process along the route, made block by block."""

    def __init__(self, seed, stream, mean, std, weight, ar, smoothing):
        self.seed, self.stream, self.dim = int(seed), stream, len(mean)
        self.mean = np.ascontiguousarray(mean, np.float64)
        if smoothing is not None:
            self.phi = np.tile([1.0, 0.0], (self.dim, 1))
            self.b = np.tile([1.0, 0.0, 0.0], (self.dim, 1))
            self.lag, self.burn = int(smoothing), int(smoothing) - 1
            self.gain = np.asarray(std, np.float64) / np.sqrt(smoothing)
        else:
            self.phi, self.b = arma_coefficients(weight, ar)
            self.lag = 0
            rmax = float(np.clip(ar, 0.0, MAX_AR).max(initial=0.0))
            self.burn = 2 if rmax <= 0 else 2 + int(np.ceil(np.log(BURN_TOL) / np.log(rmax)))
            self.gain = np.asarray(std, np.float64).copy()

    def _tile(self, t: int) -> np.ndarray:
        key = [self.seed, self.stream, int(t < 0), abs(t)]
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(key)))
        return rng.standard_normal((TILE, self.dim), dtype=np.float32)

    def _noise(self, lo: int, hi: int, cache: dict | None) -> np.ndarray:
        t0, t1 = lo // TILE, -(-hi // TILE)
        tiles = []
        for t in range(t0, t1):
            tile = None if cache is None else cache.get(t)
            if tile is None:
                tile = self._tile(t)
                if cache is not None:
                    cache[t] = tile
            tiles.append(tile)
        if cache is not None:  # keep only the tiles the next block's burn-in reads
            keep_from = (hi - self.burn) // TILE
            for t in [t for t in cache if t < keep_from]:
                del cache[t]
        return np.concatenate(tiles)[lo - t0 * TILE : hi - t0 * TILE]

    def block(self, b: int, cache: dict | None = None, size: int = BLOCK) -> np.ndarray:
        """The first ``size`` places of block ``b`` (from ``b*BLOCK``): ``(size, D) float32``.

        The filter is causal, so a prefix is bit-identical to the same rows of the full block.
        """
        e = self._noise(b * BLOCK - self.burn, b * BLOCK + size, cache)
        out = np.empty((size, self.dim), np.float32)
        _filter(e, self.phi, self.b, self.lag, self.burn, self.mean, self.gain, out)
        return out

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """Random access: ``(m,)`` int positions -> ``(m, D) float32``."""
        out = np.empty((len(positions), self.dim), np.float32)
        blocks = positions // BLOCK
        for b in np.unique(blocks):
            sel = np.flatnonzero(blocks == b)
            offsets = positions[sel] - b * BLOCK
            out[sel] = self.block(int(b), size=int(offsets.max()) + 1)[offsets]
        return out

    def stream_rows(self, start: int, n: int, chunk: int) -> Iterator[np.ndarray]:
        """Places ``start .. start+n-1`` in chunks of ``chunk`` rows (the last may be shorter)."""
        cache: dict = {}
        cur_b, cur = -1, None
        pos, end = start, start + n
        while pos < end:
            size = min(chunk, end - pos)
            out = np.empty((size, self.dim), np.float32)
            filled = 0
            while filled < size:
                p = pos + filled
                b = p // BLOCK
                if b != cur_b:
                    cur_b, cur = b, self.block(b, cache)
                take = min(size - filled, (b + 1) * BLOCK - p)
                out[filled : filled + take] = cur[p - b * BLOCK : p - b * BLOCK + take]
                filled += take
            yield out
            pos += size


# ----------------------------------------------------------------------------- public API


class RouteGenerator:
    """A synthetic route fitted to real consecutive places, plus its queries.

    Parameters (never changed by ``fit``):

    * ``smoothing``: ``None`` fits the correlation along the route per dim (two
      AR(1) components and an independent part); an int ``L`` uses a moving
      average of ``L`` places for every dim instead.
    * ``seed``: non-negative int; the whole route and its queries follow from it.
    * ``query_model``: ``"regression"`` (``slope_`` fitted) or ``"additive"``
      (queries = database + bias + noise, ``slope_ = 1``).
    * ``correlated_noise``: fit the query noise's correlation along the route
      (``True``) or make it independent per place (``False``, easier).

    Learned state: ``mean_``, ``std_`` ``(D,)``; ``weight_``, ``ar_`` ``(D, 2)``
    (variance shares and per-place AR coefficients of the fast and slow
    components); ``bias_``, ``slope_``, ``noise_std_`` ``(D,)`` and
    ``noise_weight_``, ``noise_ar_`` ``(D, 2)`` for queries; for reports the
    measured ``acf_``, ``noise_acf_`` ``(K, D)`` (lags 1..K), ``diff_std_ (D,)``,
    ``sign_agreement_`` (top-24 dims, real) and ``n_fit_``.
    """

    def __init__(
        self,
        smoothing: int | None = None,
        seed: int = 0,
        query_model: str = "regression",
        correlated_noise: bool = True,
    ):
        self.smoothing = smoothing
        self.seed = seed
        self.query_model = query_model
        self.correlated_noise = correlated_noise

    # ---- fitting

    def fit(self, database: np.ndarray, queries: np.ndarray | None = None) -> RouteGenerator:
        """Fit to ``database (n, D)``: consecutive places of a real route, ``n >= MIN_ROWS``.

        ``queries (n, D)`` are the same places in another condition (same row = same
        place); without them :meth:`queries` is unavailable. Returns ``self``.
        """
        self._check_params()
        x = check_matrix(database, "database", min_rows=MIN_ROWS)
        n, dim = x.shape
        n_lags = min(MAX_LAG, n // 5)
        for name in self._QUERY_STATE + ("sign_agreement_",):
            self.__dict__.pop(name, None)
        self.n_fit_ = n
        self.mean_ = x.mean(axis=0)
        self.std_ = x.std(axis=0)
        self.acf_ = route_acf(x, n_lags)
        self.weight_, self.ar_ = fit_two_ar1(self.acf_)
        if queries is None:
            return self
        q = check_matrix(queries, "queries", dim=dim)
        if q.shape[0] != n:
            raise PlaceprintError(
                f"queries need one row per database place (same row = same place): "
                f"got {q.shape[0]} rows for {n} database rows"
            )
        diff, xc = q - x, x - self.mean_
        self.bias_ = diff.mean(axis=0)
        self.diff_std_ = diff.std(axis=0)
        if self.query_model == "regression":
            var = (xc * xc).sum(axis=0)
            cov = (xc * (q - q.mean(axis=0))).sum(axis=0)
            self.slope_ = np.where(var > 0, cov / np.where(var > 0, var, 1.0), 1.0)
        else:
            self.slope_ = np.ones(dim)
        resid = diff - self.bias_ - (self.slope_ - 1.0) * xc
        self.noise_std_ = resid.std(axis=0)
        self.noise_acf_ = route_acf(resid, n_lags)
        if self.correlated_noise:
            self.noise_weight_, self.noise_ar_ = fit_two_ar1(self.noise_acf_)
        else:
            self.noise_weight_, self.noise_ar_ = np.zeros((dim, 2)), np.zeros((dim, 2))
        top = min(24, dim)
        agree = np.sign(xc[:, :top]) == np.sign(q[:, :top] - self.mean_[:top])
        self.sign_agreement_ = float(agree.mean())
        return self

    # ---- generation

    def database(self, n: int, chunk: int = 262_144, start: int = 0) -> Iterator[np.ndarray]:
        """Yield places ``start .. start+n-1`` of the route as ``(<=chunk, D) float32`` chunks.

        Place ``p`` is the same row whatever ``chunk`` and ``start`` are; only one
        chunk and one block of ``BLOCK`` places are held at a time.
        """
        self._check_fitted()
        n = _int_at_least(n, 1, "n")
        chunk = _int_at_least(chunk, 1, "chunk")
        start = _int_at_least(start, 0, "start")
        return self._db_process().stream_rows(start, n, chunk)

    def database_rows(self, positions: np.ndarray) -> np.ndarray:
        """Random access: ``(m,)`` non-negative int positions -> ``(m, D) float32`` route rows."""
        self._check_fitted()
        return self._db_process().rows(_positions(positions))

    def queries(self, positions: np.ndarray) -> np.ndarray:
        """Queries of the places at ``(m,)`` positions: ``(m, D) float32``.

        ``rows + bias_ + (slope_ - 1) * (rows - mean_) + noise`` with
        ``rows = database_rows(positions)``; the noise at a position is fixed by
        ``seed`` and correlated along the route.
        """
        self._check_fitted()
        if not hasattr(self, "bias_"):
            raise PlaceprintError("fit(database, queries) with real queries to generate queries")
        pos = _positions(positions)
        x = self._db_process().rows(pos).astype(np.float64)
        e = self._noise_process().rows(pos)
        return (x + self.bias_ + (self.slope_ - 1.0) * (x - self.mean_) + e).astype(np.float32)

    def _db_process(self) -> _Process:
        return _Process(
            self.seed, _DB, self.mean_, self.std_, self.weight_, self.ar_, self.smoothing
        )

    def _noise_process(self) -> _Process:
        zero = np.zeros_like(self.noise_std_)
        return _Process(
            self.seed, _NOISE, zero, self.noise_std_, self.noise_weight_, self.noise_ar_, None
        )

    # ---- reporting

    def stats(self) -> dict:
        """Fitted numbers for reports (plain floats and lists, JSON-ready).

        Correlations along the route are variance-weighted over dims (the correlation
        of whole centred vectors), measured on the real rows (``*_real``) and implied
        by the model (``*_model``), keyed by lag in places.
        """
        self._check_fitted()
        var = self.std_**2
        lags = [k for k in REPORT_LAGS if k <= self.acf_.shape[0]]
        macf = model_acf(self.weight_, self.ar_, self.smoothing, lags)
        independent = 1.0 - self.weight_.sum(axis=1) if self.smoothing is None else 0.0 * var
        out = {
            "n_fit": int(self.n_fit_),
            "dim": len(self.mean_),
            "smoothing": self.smoothing,
            "query_model": self.query_model,
            "correlated_noise": bool(self.correlated_noise),
            "total_variance": float(var.sum()),
            "variance_spectrum": var.tolist(),
            "acf_real": {k: _wmean(self.acf_[k - 1], var) for k in lags},
            "acf_model": {k: _wmean(macf[i], var) for i, k in enumerate(lags)},
            "independent_share": _wmean(independent, var),
        }
        if hasattr(self, "bias_"):
            nvar = self.noise_std_**2
            nacf = model_acf(self.noise_weight_, self.noise_ar_, None, lags)
            model_diff_var = (self.slope_ - 1.0) ** 2 * var + nvar
            out.update(
                {
                    "bias_norm": float(np.linalg.norm(self.bias_)),
                    "diff_std_total_real": float(np.sqrt((self.diff_std_**2).sum())),
                    "diff_std_total_model": float(np.sqrt(model_diff_var.sum())),
                    "slope_weighted": _wmean(self.slope_, var),
                    "noise_std_total": float(np.sqrt(nvar.sum())),
                    "noise_acf_real": {k: _wmean(self.noise_acf_[k - 1], nvar) for k in lags},
                    "noise_acf_model": {k: _wmean(nacf[i], nvar) for i, k in enumerate(lags)},
                    "sign_agreement_real_top24": float(self.sign_agreement_),
                }
            )
        return out

    # ---- persistence

    _STATE = ("mean_", "std_", "weight_", "ar_", "acf_")
    _QUERY_STATE = (
        "bias_", "slope_", "noise_std_", "noise_weight_", "noise_ar_", "noise_acf_", "diff_std_"
    )  # fmt: skip

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Parameters and fitted state as named arrays (with magic and version)."""
        self._check_fitted()
        arrays = {
            "magic": np.array(MAGIC),
            "version": np.array(VERSION),
            "seed": np.array(self.seed),
            "smoothing": np.array(-1 if self.smoothing is None else self.smoothing),
            "query_model": np.array(self.query_model),
            "correlated_noise": np.array(bool(self.correlated_noise)),
            "n_fit": np.array(self.n_fit_),
        }
        arrays.update({name.rstrip("_"): getattr(self, name) for name in self._STATE})
        if hasattr(self, "bias_"):
            arrays.update({name.rstrip("_"): getattr(self, name) for name in self._QUERY_STATE})
            arrays["sign_agreement"] = np.array(self.sign_agreement_)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> RouteGenerator:
        """Rebuild a fitted generator from :meth:`to_arrays` output."""
        check_header(arrays, MAGIC, VERSION, "RouteGenerator arrays")
        smoothing = int(arrays["smoothing"])
        obj = cls(
            smoothing=None if smoothing < 0 else smoothing,
            seed=int(arrays["seed"]),
            query_model=str(arrays["query_model"]),
            correlated_noise=bool(arrays["correlated_noise"]),
        )
        obj.n_fit_ = int(arrays["n_fit"])
        for name in cls._STATE:
            setattr(obj, name, np.asarray(arrays[name.rstrip("_")], np.float64))
        if "bias" in arrays:
            for name in cls._QUERY_STATE:
                setattr(obj, name, np.asarray(arrays[name.rstrip("_")], np.float64))
            obj.sign_agreement_ = float(arrays["sign_agreement"])
        return obj

    def save(self, path: str | Path) -> Path:
        """Write the generator to ``path`` (npz, atomically via a temporary file)."""
        return save_npz_atomic(path, self.to_arrays())

    @classmethod
    def load(cls, path: str | Path) -> RouteGenerator:
        """Read a generator written by :meth:`save`."""
        return cls.from_arrays(load_npz_checked(path, MAGIC, VERSION))

    # ---- checks

    def _check_params(self) -> None:
        s = self.smoothing
        if s is not None and (not _is_int(s) or not 1 <= s <= BLOCK):
            raise PlaceprintError(f"smoothing must be None or an int in 1..{BLOCK}, got {s!r}")
        if not _is_int(self.seed) or self.seed < 0:
            raise PlaceprintError(f"seed must be a non-negative int, got {self.seed!r}")
        if self.query_model not in QUERY_MODELS:
            raise PlaceprintError(
                f"query_model must be one of {', '.join(QUERY_MODELS)}, got {self.query_model!r}"
            )

    def _check_fitted(self) -> None:
        if not hasattr(self, "mean_"):
            raise PlaceprintError("RouteGenerator is not fitted; call fit(database, queries) first")


def _wmean(values: np.ndarray, weights: np.ndarray) -> float:
    total = float(weights.sum())
    return float((values * weights).sum() / total) if total > 0 else float(values.mean())


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _int_at_least(value, low: int, name: str) -> int:
    if not _is_int(value) or value < low:
        raise PlaceprintError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def _positions(positions) -> np.ndarray:
    pos = np.asarray(positions)
    if pos.ndim != 1:
        raise PlaceprintError(f"positions must be a 1-D array of place numbers, got {pos.shape}")
    if pos.size and not np.issubdtype(pos.dtype, np.integer):
        raise PlaceprintError(f"positions must be integers, got dtype {pos.dtype}")
    if pos.size and pos.min() < 0:
        raise PlaceprintError(f"positions must be >= 0, got {int(pos.min())}")
    return pos.astype(np.int64)

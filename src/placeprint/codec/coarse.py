"""The coarse codec: PCA or invariant projection, variance re-scaling, 1-4 bit quantization.

A code is ``code_size`` bytes. Bits are laid out by *bit plane*: bit ``p * n_dims + i``
is plane ``p`` (0 = most significant) of dimension ``i``, so the first ``n_dims``
bits are the coarse "which side of the median" bit of every dimension in order of
importance, and a short key is simply the first ``k`` bits. Levels are Gray coded,
so neighbouring quantization levels differ in one bit and Hamming distance is a
sensible code distance. Thresholds are quantiles of the database (equally
populated levels).

>>> import numpy as np
>>> X = np.random.default_rng(0).normal(size=(500, 32)).astype(np.float32)
>>> codec = CoarseCodec(code_size=8).fit(X)
>>> codec.encode(X[:3]).shape
(3, 8)
"""

from __future__ import annotations

import numpy as np

from placeprint.codec.projection import invariant_basis, pca_basis
from placeprint.errors import PlaceprintError

MAX_PCA_DIMS = 256
SMALL_BATCH = 1024  # rows projected with one BLAS thread (measured: 100 x 4096 @ 4096 x 56
# takes 0.7 ms on one thread here and 7.8 ms on two, which wait for each other)


def check_descriptors(
    X: np.ndarray, dim: int | None = None, what: str = "descriptors"
) -> np.ndarray:
    """Validate ``(n, d)`` finite descriptors, returned as float32."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise PlaceprintError(f"{what} must be a 2-D (n, d) array, got shape {X.shape}")
    if dim is not None and X.shape[1] != dim:
        raise PlaceprintError(f"{what} have {X.shape[1]} dimensions, expected {dim}")
    if not np.issubdtype(X.dtype, np.number):
        raise PlaceprintError(f"{what} must be numeric, got dtype {X.dtype}")
    X = X.astype(np.float32, copy=False)
    if not np.all(np.isfinite(X)):
        raise PlaceprintError(f"{what} contain NaN or inf values")
    return X


class CoarseCodec:
    """Descriptor -> ``code_size``-byte code by projection and coarse scalar quantization.

    Parameters are fixed at construction; ``fit`` learns ``mean_``, ``projection_``
    (``(d, n_dims)``, variance re-scaling folded in), ``thresholds_`` and ``levels_``.
    Pass ``paired`` to ``fit`` (the same database places under another condition)
    to learn a condition-invariant projection instead of plain PCA; with
    ``order="agreement"`` its dimensions are then sorted by how often their sign
    survives the change on the pairs (most stable first, so the key holds them).
    """

    def __init__(
        self,
        code_size: int = 8,
        bits_per_dim: int = 1,
        pca_dims: int = MAX_PCA_DIMS,
        regularisation: float = 1e-2,
        order: str = "eigen",
    ) -> None:
        if not isinstance(code_size, int | np.integer) or code_size < 1:
            raise PlaceprintError(f"code_size must be a positive number of bytes, got {code_size}")
        if bits_per_dim not in (1, 2, 3, 4):
            raise PlaceprintError(f"bits_per_dim must be 1, 2, 3 or 4, got {bits_per_dim}")
        if (8 * code_size) % bits_per_dim:
            raise PlaceprintError(
                f"{8 * code_size} code bits cannot be split into {bits_per_dim}-bit dimensions"
            )
        self.code_size = int(code_size)
        self.bits_per_dim = int(bits_per_dim)
        self.pca_dims = int(pca_dims)
        self.regularisation = float(regularisation)
        if order not in ("eigen", "agreement"):
            raise PlaceprintError(f"order must be 'eigen' or 'agreement', got {order!r}")
        self.order = order

    # ------------------------------------------------------------------ fitting
    @property
    def n_dims(self) -> int:
        """Number of quantized dimensions: ``8 * code_size / bits_per_dim``."""
        return 8 * self.code_size // self.bits_per_dim

    @property
    def n_bits(self) -> int:
        return 8 * self.code_size

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "projection_")

    def fit(
        self,
        X: np.ndarray,
        paired: np.ndarray | None = None,
        paired_rows: np.ndarray | None = None,
        pca: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> CoarseCodec:
        """Learn projection and thresholds from database descriptors ``X (n, d)``.

        ``paired (m, d)``, optional: database places seen under another condition, rows
        ``paired_rows (m,)`` of ``X`` (default ``0..m-1``); enables the
        condition-invariant projection. ``pca``: ``(mean, basis (d, >= n_pca))`` of ``X``
        already computed (:func:`~placeprint.codec.projection.pca_basis`), to fit several
        codecs on one database without repeating it.
        """
        X = check_descriptors(X)
        if X.shape[0] < 2 * self.n_dims:
            raise PlaceprintError(
                f"need at least {2 * self.n_dims} descriptors to fit a {self.code_size}-byte "
                f"codec with {self.n_dims} dimensions, got {X.shape[0]}"
            )
        n_pca = min(max(self.pca_dims, self.n_dims), X.shape[1], X.shape[0] - 1)
        if n_pca < self.n_dims:
            raise PlaceprintError(
                f"descriptors have {X.shape[1]} dimensions; a {self.code_size}-byte code with "
                f"{self.bits_per_dim} bit(s) a dimension needs at least {self.n_dims}"
            )
        if pca is None:
            mean, basis, _ = pca_basis(X, n_pca)
        else:
            mean, basis = np.asarray(pca[0], np.float64), np.asarray(pca[1])[:, :n_pca]
            if mean.shape != (X.shape[1],) or basis.shape != (X.shape[1], n_pca):
                raise PlaceprintError("pca must be (mean (d,), basis (d, >= pca_dims)) of X")
        if paired is not None:
            paired = check_descriptors(paired, X.shape[1], "paired descriptors")
            m = paired.shape[0]
            rows = np.arange(m) if paired_rows is None else np.asarray(paired_rows)
            if m > X.shape[0] or m < 2 * self.n_dims or rows.shape != (m,):
                raise PlaceprintError(
                    f"paired descriptors must be m database rows with "
                    f"{2 * self.n_dims} <= m <= {X.shape[0]}, got m={m}"
                )
            if rows.min() < 0 or rows.max() >= X.shape[0]:
                raise PlaceprintError(f"paired_rows must be in 0..{X.shape[0] - 1}")
            Z_a = (X[rows] - mean) @ basis
            Z_b = (paired - mean) @ basis
            W = invariant_basis(Z_a, Z_b, self.n_dims, self.regularisation)
            basis = basis @ W
            if self.order == "agreement":
                basis = basis[:, _by_agreement(Z_a @ W, Z_b @ W, (X - mean) @ basis)]
        else:
            basis = basis[:, : self.n_dims]
        Z = (X - mean) @ basis
        centre = Z.mean(axis=0)
        scale = Z.std(axis=0)
        scale[scale < 1e-12] = 1.0
        self.mean_ = (mean + 0.0).astype(np.float32)
        self.projection_ = half_precision(basis / scale)
        self.offset_ = (centre / scale).astype(np.float32)
        Zs = self.transform(X)
        self._fit_quantizer(Zs)
        if paired is not None:
            self.noise_ = (Zs[rows] - self.transform(paired)).std(axis=0).astype(np.float32)
        else:
            self.noise_ = np.ones(self.n_dims, np.float32)
        return self

    def _fit_quantizer(self, Z: np.ndarray) -> None:
        n_levels = 1 << self.bits_per_dim
        qs = np.arange(1, n_levels) / n_levels
        self.thresholds_ = np.quantile(Z, qs, axis=0).T.astype(np.float32)  # (n_dims, L-1)
        levels = np.empty((self.n_dims, n_levels), np.float32)
        idx = self._level_index(Z)
        for j in range(n_levels):
            mask = idx == j
            counts = mask.sum(axis=0)
            sums = np.where(mask, Z, 0.0).sum(axis=0)
            fallback = np.quantile(Z, (j + 0.5) / n_levels, axis=0)
            levels[:, j] = np.where(counts > 0, sums / np.maximum(counts, 1), fallback)
        self.levels_ = levels

    # -------------------------------------------------------------- transforms
    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise PlaceprintError("the codec is not fitted: call fit(database_descriptors) first")

    @property
    def input_dim(self) -> int:
        self._require_fitted()
        return int(self.mean_.shape[0])

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Projected, re-scaled descriptors ``(n, n_dims) float32`` (unit variance on the db)."""
        self._require_fitted()
        X = check_descriptors(X, self.input_dim)
        if len(X) > SMALL_BATCH:
            return ((X - self.mean_) @ self.projection_ - self.offset_).astype(np.float32)
        with _single_thread_blas():  # a query's few frames: threads cost more than they save
            return ((X - self.mean_) @ self.projection_ - self.offset_).astype(np.float32)

    def _level_index(self, Z: np.ndarray) -> np.ndarray:
        idx = np.zeros(Z.shape, np.int64)
        for j in range(self.thresholds_.shape[1]):
            idx += Z > self.thresholds_[:, j]
        return idx

    def quantize(self, Z: np.ndarray) -> np.ndarray:
        """Codes ``(n, code_size) uint8`` of already-transformed ``Z (n, n_dims)``."""
        idx = self._level_index(Z)
        gray = idx ^ (idx >> 1)
        planes = [(gray >> (self.bits_per_dim - 1 - p)) & 1 for p in range(self.bits_per_dim)]
        bits = np.concatenate(planes, axis=1).astype(np.uint8)  # plane-major
        return np.packbits(bits, axis=1, bitorder="little")

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Codes ``(n, code_size) uint8`` of descriptors ``X (n, d)``."""
        return self.quantize(self.transform(X))

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Reconstruction ``(n, n_dims) float32`` in the transformed space (level centroids)."""
        self._require_fitted()
        codes = check_codes(codes, self.code_size)
        bits = np.unpackbits(codes, axis=1, bitorder="little").astype(np.int64)
        gray = np.zeros((codes.shape[0], self.n_dims), np.int64)
        for p in range(self.bits_per_dim):
            gray |= bits[:, p * self.n_dims : (p + 1) * self.n_dims] << (self.bits_per_dim - 1 - p)
        idx = gray.copy()
        shift = gray >> 1
        while np.any(shift):
            idx ^= shift
            shift >>= 1
        return np.take_along_axis(self.levels_[None, :, :], idx[:, :, None], axis=2)[..., 0]

    def key_margins(self, Z: np.ndarray, key_bits: int) -> np.ndarray:
        """Signed distance ``(n, key_bits)`` of each key dimension from its median threshold."""
        if key_bits > self.n_dims:
            raise PlaceprintError(f"key_bits must be <= {self.n_dims}, got {key_bits}")
        mid = self.thresholds_[:, self.thresholds_.shape[1] // 2]
        return (Z[:, :key_bits] - mid[:key_bits]).astype(np.float32)

    def bit_error_rates(self, margins: np.ndarray) -> np.ndarray:
        """Probability that each key bit differs from the same place's database bit.

        ``margins (n, k)`` from :meth:`key_margins`; Gaussian model with the per-dimension
        cross-condition noise learned from paired data (unit noise without pairs).
        """
        from scipy.special import ndtr

        sigma = np.maximum(self.noise_[: margins.shape[1]], 1e-3)
        return np.clip(1.0 - ndtr(np.abs(margins) / sigma), 1e-6, 0.5).astype(np.float64)

    def get_code_size(self) -> int:
        """Bytes per code (faiss-style name)."""
        return self.code_size

    # ---------------------------------------------------------- persistence
    def state(self) -> dict[str, np.ndarray]:
        """Learned arrays plus parameters, for saving inside an index file."""
        self._require_fitted()
        return {
            "code_size": np.array(self.code_size),
            "bits_per_dim": np.array(self.bits_per_dim),
            "pca_dims": np.array(self.pca_dims),
            "regularisation": np.array(self.regularisation),
            "mean": self.mean_,
            **_split_half(self.projection_),
            "offset": self.offset_,
            "thresholds": self.thresholds_,
            "levels": self.levels_,
            "noise": self.noise_,
        }

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> CoarseCodec:
        """Rebuild a fitted codec from :meth:`state`."""
        codec = cls(
            code_size=int(state["code_size"]),
            bits_per_dim=int(state["bits_per_dim"]),
            pca_dims=int(state["pca_dims"]),
            regularisation=float(state["regularisation"]),
        )
        codec.mean_ = np.asarray(state["mean"], np.float32)
        codec.projection_ = _join_half(state)
        codec.offset_ = np.asarray(state["offset"], np.float32)
        codec.thresholds_ = np.asarray(state["thresholds"], np.float32)
        codec.levels_ = np.asarray(state["levels"], np.float32)
        codec.noise_ = np.asarray(state["noise"], np.float32)
        if codec.projection_.shape != (codec.mean_.shape[0], codec.n_dims):
            raise PlaceprintError("codec state is inconsistent (projection shape)")
        return codec

    def same_as(self, other: CoarseCodec) -> bool:
        """Whether ``other`` holds the same fitted state (parameters and every array), so
        that codes and code distances of the two mean the same."""
        a, b = self.state(), other.state()
        return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)

    def state_bytes(self) -> int:
        """Bytes of learned state needed to encode queries."""
        return int(sum(a.nbytes for a in self.state().values()))

    @property
    def nbytes(self) -> int:
        """Bytes of learned state (same as :meth:`state_bytes`)."""
        return self.state_bytes()


def _single_thread_blas():
    """A context in which BLAS runs on one thread (the controller is made once)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


_CONTROLLER = None


def half_precision(P: np.ndarray) -> np.ndarray:
    """``P (d, k)`` as stored: float16 columns times a float32 scale per column.

    The projection is the largest part of the state a query needs; stored this way it
    takes half the bytes, and a code bit changes only for values within ~1e-3 (relative)
    of a threshold. The codec uses exactly the stored values, so database and queries
    see the same projection.
    """
    P = np.asarray(P, np.float64)
    scale = np.abs(P).max(axis=0)
    scale[~(scale > 0)] = 1.0
    return (P / scale).astype(np.float16).astype(np.float32) * scale.astype(np.float32)


def _split_half(P: np.ndarray) -> dict[str, np.ndarray]:
    scale = np.abs(P).max(axis=0).astype(np.float32)
    scale[~(scale > 0)] = 1.0
    return {"projection": (P / scale).astype(np.float16), "projection_scale": scale}


def _join_half(state: dict[str, np.ndarray]) -> np.ndarray:
    P = np.asarray(state["projection"], np.float32)
    if "projection_scale" in state:
        P = P * np.asarray(state["projection_scale"], np.float32)
    return P


def _by_agreement(Z_a: np.ndarray, Z_b: np.ndarray, Z_db: np.ndarray) -> np.ndarray:
    """Column order, most stable first: share of pairs on the same side of the median.

    With pairs, the first dimensions (whose bits make the bucket key) are then the ones
    whose sign survives the change of condition most often.
    """
    median = np.median(Z_db, axis=0)
    agree = ((Z_a > median) == (Z_b > median)).mean(axis=0)
    return np.argsort(-agree, kind="stable")


def largest_code_size(n: int, d: int, bits_per_dim: int = 1) -> int:
    """Largest code (bytes) a codec can fit on ``n`` descriptors of ``d`` dimensions (0: none).

    :meth:`CoarseCodec.fit` needs at least ``n_dims`` dimensions and ``2 * n_dims`` rows.
    """
    return min(d, n - 1, n // 2) * bits_per_dim // 8


def check_codes(codes: np.ndarray, code_size: int) -> np.ndarray:
    """Validate ``(n, code_size) uint8`` codes."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] != code_size or codes.dtype != np.uint8:
        raise PlaceprintError(
            f"codes must be (n, {code_size}) uint8, got {codes.shape} {codes.dtype}"
        )
    return codes

"""Shared set-up of the route benchmarks: real descriptors, reduction, codec, generator.

Protocol (``guide/BENCHMARKS.md``): database = summer, queries = winter, same row =
same place. Everything learned from *pairs* of seasons (the condition-invariant
projection) uses only frames <= 20000; results are reported on frames 20010-25000
(``test``) and on all frames (``all``), each also without dark frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from placeprint.codec import CoarseCodec
from placeprint.errors import PlaceprintError

TUNE_LAST_FRAME = 20000
TEST_FIRST_FRAME = 20010
REDUCED_DIMS = 256


@dataclass
class RealRoute:
    """Descriptors of both traverses of a real route, aligned by row."""

    database: np.ndarray  # (n, d) summer
    queries: np.ndarray  # (n, d) winter
    dark: np.ndarray  # (n,) bool, dark in either season
    frames: np.ndarray  # (n,) frame numbers
    describer: dict
    name: str = "Nordland winter vs summer"
    describe_ms_per_image: float | None = None  # measured, uncached, where known

    @property
    def tune_rows(self) -> int:
        """Rows 0 .. m-1 have frame numbers <= 20000 (frames are sorted)."""
        return int(np.searchsorted(self.frames, TUNE_LAST_FRAME, side="right"))

    def subsets(self) -> dict[str, np.ndarray]:
        """End-frame masks: test / all, each with and without dark frames."""
        test = self.frames >= TEST_FIRST_FRAME
        every = np.ones(len(self.frames), bool)
        return {
            "test": test,
            "test_nondark": test & ~self.dark,
            "all": every,
            "all_nondark": ~self.dark,
        }


def load_nordland_route(quiet: bool = False, describer: str = "seqslam", **options) -> RealRoute:
    """Describe Nordland summer and winter with ``describer`` (registry name).

    A describer that learns is fitted on the summer frames <= 20000 (with the winter
    frames of the same places as positives where it takes them). Learned describers'
    descriptors are cached; the time per image is measured on the winter frames.
    """
    import inspect
    import time

    from placeprint.datasets.nordland import load_nordland
    from placeprint.describe import get
    from placeprint.sources import describe_files

    nordland = load_nordland()
    d = get(describer, **options)
    m = int(np.searchsorted(nordland.frames, TUNE_LAST_FRAME, side="right"))
    if d.learns:
        if "positives" in inspect.signature(d.fit).parameters:
            d.fit(nordland.summer[:m], positives=nordland.winter[:m])
        else:
            d.fit(nordland.summer[:m])
    cache = describer != "seqslam"  # seqslam takes about 2 s: not worth a cache
    summer, kept_s = describe_files(d, nordland.summer, progress=not quiet, cache=cache)
    t0 = time.perf_counter()
    winter, kept_w = describe_files(d, nordland.winter, progress=not quiet, cache=False)
    ms = (time.perf_counter() - t0) * 1000.0 / max(len(nordland.winter), 1)
    if len(kept_s) != len(nordland) or len(kept_w) != len(nordland):
        raise PlaceprintError("some Nordland frames could not be read")
    route = RealRoute(summer, winter, nordland.dark_mask(), nordland.frames, d.config())
    route.describe_ms_per_image = ms
    return route


def synthetic_stand_in(n: int = 2500, dims: int = 64, seed: int = 0) -> RealRoute:
    """A generated two-condition route for machines without the real data (say so!)."""
    rng = np.random.default_rng(seed)
    scale = np.linspace(3.0, 0.3, dims)
    noise = rng.normal(size=(n + 8, dims))
    kernel = np.array([0.5, 1.0, 0.5])
    smooth = np.stack([np.convolve(noise[:, j], kernel, "same") for j in range(dims)], 1)[:n]
    database = (smooth * scale).astype(np.float32)
    change = rng.normal(size=(n, dims)) * scale * 0.8 + rng.normal(size=dims) * scale * 0.3
    queries = (database + change).astype(np.float32)
    frames = (np.arange(n) + 1) * 10
    return RealRoute(
        database, queries, np.zeros(n, bool), frames, {"name": "synthetic"}, "generated route"
    )


@dataclass
class Pipeline:
    """The codec fitted on a route's raw descriptors, and that route's traverses.

    ``database``/``queries`` are the raw descriptors: everything that maps them to codes
    (the projection included) is the codec's, stored in the index and counted in its
    bytes, and applied to every query inside the timed search.
    """

    codec: CoarseCodec
    database: np.ndarray
    queries: np.ndarray

    def projected(self, X: np.ndarray) -> np.ndarray:
        """``X`` in the codec's projected space ``(n, n_dims) float32``."""
        return self.codec.transform(X)


def fit_pipeline(route: RealRoute, code_size: int = 7, pca_dims: int = REDUCED_DIMS) -> Pipeline:
    """Fit the codec on the raw database descriptors (PCA to ``pca_dims`` inside the codec).

    The codec's invariant projection learns from the pairs of rows with frame <= 20000.
    Descriptors with fewer dimensions than code bits get 2-4 bits a dimension.
    """
    n, d = route.database.shape
    dims = min(pca_dims, d, n - 1)
    bits = 1
    while dims * bits < 8 * code_size and bits < 4:
        bits += 1
    if dims * bits < 8 * code_size:
        raise PlaceprintError(f"{dims} descriptor dimensions cannot fill a {code_size}-byte code")
    m = route.tune_rows
    codec = CoarseCodec(code_size=code_size, bits_per_dim=bits, pca_dims=dims)
    codec.fit(route.database, paired=route.queries[:m])
    return Pipeline(codec, route.database, route.queries)

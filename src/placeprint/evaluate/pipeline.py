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


def load_nordland_route(quiet: bool = False) -> RealRoute:
    """Describe Nordland summer and winter with the SeqSLAM describer (about 2 s)."""
    from placeprint.datasets.nordland import load_nordland
    from placeprint.describe import get
    from placeprint.sources import describe_files

    nordland = load_nordland()
    describer = get("seqslam")
    summer, _ = describe_files(describer, nordland.summer, progress=not quiet, cache=False)
    winter, _ = describe_files(describer, nordland.winter, progress=not quiet, cache=False)
    return RealRoute(summer, winter, nordland.dark_mask(), nordland.frames, describer.config())


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

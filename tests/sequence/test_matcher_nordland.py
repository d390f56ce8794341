"""The compact matcher on real Nordland (summer database, winter queries)."""

import numpy as np

from placeprint.evaluate.harness import run_windows
from placeprint.evaluate.pipeline import RealRoute, fit_pipeline
from placeprint.index import OverloadedIndex
from placeprint.sequence.matcher import SequenceMatcher, StreamingMatcher


def test_compact_index_on_nordland(nordland_descriptors):
    summer, winter, dark = nordland_descriptors
    frames = (np.arange(len(summer)) + 1) * 10
    route = RealRoute(summer, winter, dark, frames, {"name": "seqslam"})
    pipe = fit_pipeline(route, code_size=7)
    index = OverloadedIndex(pipe.codec)
    index.add(pipe.database)
    truth = np.arange(len(summer))
    matcher = SequenceMatcher(index)
    res = run_windows(matcher.match, pipe.queries, truth, 50, stride=5)
    summary = res.summary(truth, route.subsets())
    # Measured 0.94 (all frames) and 0.85-0.97 (frames 20010-25000, never used to learn the
    # projection; 100 windows, so +-0.05 is noise). Exhaustive search on the same codes gets
    # 1.0, SeqSLAM on full descriptors 1.0. Thresholds leave room for that noise only.
    assert summary["r1_all"] >= 0.88
    assert summary["r1_test"] >= 0.75
    # 2,500 places, 50 frames, 5 velocities: SeqSLAM needs 625,000 comparisons
    assert summary["ops_mean"] < 50 * 2500 * 5 / 10
    # streaming reaches the batch answer once it has seen the window
    stream = StreamingMatcher(index, length=50)
    for f in pipe.queries[2300:2350]:
        u = stream.update(f)
    assert u.position == matcher.match(pipe.queries[2300:2350]).best

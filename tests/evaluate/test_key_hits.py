"""True-hit shares of candidate generation, against routes whose answer is known."""

import numpy as np

from placeprint.codec import CoarseCodec
from placeprint.evaluate.key_hits import true_hit_share
from placeprint.index import OverloadedIndex
from placeprint.sequence.matcher import SequenceMatcher


def test_true_hits_of_exact_and_of_foreign_queries():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3000, 32)).astype(np.float32)
    codec = CoarseCodec(code_size=4).fit(X)
    index = OverloadedIndex(codec)
    index.add(X)
    matcher = SequenceMatcher(index)
    truth = np.arange(3000)
    ends = np.array([100, 1500, 2999])
    # the same descriptors: every frame's own bucket holds its place (probe 0, read whole)
    same = true_hit_share(matcher, X, truth, ends, 20)
    assert same == {"frames_with_true_hit": 1.0, "windows_without_true_hit": 0.0, "windows": 3}
    # the truth of another route: no frame can hit it
    shifted = true_hit_share(matcher, X, (truth + 1000) % 3000, ends, 20)
    assert shifted["frames_with_true_hit"] < 0.05 and shifted["windows"] == 3
    assert true_hit_share(matcher, X, truth, ends[:0], 20)["windows"] == 0

"""How often the index's candidate generation reaches the true place (key hits).

A window's frame has a *true hit* when one of the buckets it reads (whole, or narrowed
to its next code bits) holds the frame's true place (within ``near`` places). Everything
after candidate generation works only on hits, so a window without a true hit cannot be
answered right, whatever the ranking.
"""

from __future__ import annotations

import numpy as np


def true_hit_share(
    matcher, queries: np.ndarray, truth: np.ndarray, ends: np.ndarray, length: int, near: int = 1
) -> dict:
    """Share of frames with a true hit (mean over windows), and of windows with none.

    ``matcher`` is a :class:`~placeprint.sequence.matcher.SequenceMatcher`; ``queries``
    raw query descriptors (row ``i`` = query frame ``i``), ``truth`` their database
    positions, ``ends`` the windows' last rows.
    """
    frames_share, none = [], 0
    for end in np.asarray(ends, np.int64):
        rows = np.arange(end - length + 1, end + 1)
        frames, positions = matcher.candidate_hits(queries[rows])
        true = np.abs(positions - truth[rows][frames]) <= near
        n = len(np.unique(frames[true]))
        frames_share.append(n / length)
        none += n == 0
    count = max(len(frames_share), 1)
    return {
        "frames_with_true_hit": float(np.sum(frames_share) / count),
        "windows_without_true_hit": float(none / count),
        "windows": len(frames_share),
    }

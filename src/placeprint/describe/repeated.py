"""Repeated structures in one image (Torii, Sivic, Pajdla & Okutomi, CVPR 2013).

Facade windows, fence posts and rail sleepers give many near-identical local features.
Counted one by one they swamp a bag-of-words vector (burstiness); thrown away they
lose what often distinguishes a place. Torii et al. group them and let each group vote
with a bounded, soft weight:

1. :func:`repeated_groups`: a graph joins two features of one image when they are
   near each other (centre distance between ``min_sep`` and ``radius`` times their
   mean size, so that overlapping windows of the same patch do not count as a
   repetition), of similar size (ratio at most ``max_scale_ratio``) and similar in
   appearance (descriptor L2 distance at most ``max_desc_dist``). Its connected
   components are the repeated structures ("repttiles"); other features are singletons.
2. :func:`merge_repeated`: each feature is soft-assigned to several visual words; the
   weights of all features of a group are summed per word and capped at ``cap``, so a
   repeated structure contributes at most ``cap`` to each word (not over-counted) but
   reaches every word its instances were quantised to (not lost to quantisation noise).
   The caller gives group members more nearest words than singletons (adaptive
   soft-assignment).
"""

from __future__ import annotations

import numpy as np

from placeprint.errors import PlaceprintError


def repeated_groups(
    keypoints: np.ndarray,
    descriptors: np.ndarray,
    radius: float = 8.0,
    min_sep: float = 3.0,
    max_scale_ratio: float = 1.5,
    max_desc_dist: float = 0.5,
    chunk: int = 200_000,
) -> np.ndarray:
    """Repeated-structure labels ``(m,) int64`` of one image's features (0..g-1).

    ``keypoints (m, >=3)`` as ``[x, y, size, ...]`` in pixels, ``descriptors (m, d)``
    (unit L2 RootSIFT: distances lie in [0, sqrt 2]). Features ``i, j`` are joined when
    ``min_sep * s <= |p_i - p_j| <= radius * s`` with ``s`` their mean size,
    ``max(s_i, s_j) / min(s_i, s_j) <= max_scale_ratio`` and
    ``|d_i - d_j| <= max_desc_dist``; labels are the connected components, so features
    with the same label form one repeated structure and singletons have their own label.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    kp = np.asarray(keypoints, np.float64)
    desc = np.asarray(descriptors, np.float32)
    m = len(kp)
    if kp.ndim != 2 or kp.shape[1] < 3 or desc.ndim != 2 or len(desc) != m:
        raise PlaceprintError(
            f"need keypoints (m, >=3) and descriptors (m, d), got {kp.shape} and {desc.shape}"
        )
    if m < 2:
        return np.arange(m, dtype=np.int64)
    if min(kp[:, 2]) <= 0:
        raise PlaceprintError("keypoint sizes (column 2) must be > 0")
    pairs = cKDTree(kp[:, :2]).query_pairs(radius * kp[:, 2].max(), output_type="ndarray")
    keep_i, keep_j = [], []
    for start in range(0, len(pairs), chunk):
        i, j = pairs[start : start + chunk].T
        si, sj = kp[i, 2], kp[j, 2]
        s = 0.5 * (si + sj)
        dist = np.hypot(kp[i, 0] - kp[j, 0], kp[i, 1] - kp[j, 1])
        ok = (dist <= radius * s) & (dist >= min_sep * s)
        ok &= np.maximum(si, sj) <= max_scale_ratio * np.minimum(si, sj)
        i, j = i[ok], j[ok]
        diff = desc[i] - desc[j]
        close = np.einsum("ij,ij->i", diff, diff) <= max_desc_dist**2
        keep_i.append(i[close])
        keep_j.append(j[close])
    i = np.concatenate(keep_i) if keep_i else np.zeros(0, np.int64)
    j = np.concatenate(keep_j) if keep_j else np.zeros(0, np.int64)
    graph = coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(m, m))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def group_sizes(labels: np.ndarray) -> np.ndarray:
    """Size of each feature's group, ``(m,) int64`` (1 for singletons)."""
    labels = np.asarray(labels, np.int64)
    return np.bincount(labels)[labels] if len(labels) else np.zeros(0, np.int64)


def merge_repeated(
    labels: np.ndarray, words: np.ndarray, weights: np.ndarray, k: int, cap: float = 1.0
) -> np.ndarray:
    """Word counts ``(k,) float32`` where each repeated structure votes at most ``cap`` per word.

    ``labels (m,)`` group of each feature, ``words (m, r)`` its visual words and
    ``weights (m, r)`` their soft-assignment weights (zero weights are ignored). For
    each (group, word) the weights are summed and capped at ``cap``; the result is the
    sum over groups. With all-singleton labels and per-feature weights summing to at
    most ``cap`` this is the plain soft-assigned histogram.
    """
    labels = np.asarray(labels, np.int64).reshape(-1)
    words = np.asarray(words, np.int64)
    weights = np.asarray(weights, np.float64)
    if words.shape != weights.shape or words.ndim != 2 or len(words) != len(labels):
        raise PlaceprintError(
            f"need labels (m,), words (m, r), weights (m, r); got {labels.shape}, "
            f"{words.shape}, {weights.shape}"
        )
    r = words.shape[1]
    g = np.repeat(labels, r)
    w = words.reshape(-1)
    v = weights.reshape(-1)
    nz = v > 0
    if not nz.any():
        return np.zeros(k, np.float32)
    key = g[nz] * k + w[nz]
    uniq, inv = np.unique(key, return_inverse=True)
    per_group_word = np.minimum(np.bincount(inv, weights=v[nz]), cap)
    return np.bincount(uniq % k, weights=per_group_word, minlength=k).astype(np.float32)

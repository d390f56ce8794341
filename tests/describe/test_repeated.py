"""Repeated-structure grouping on planted cases and the capped per-group word counts."""

import numpy as np
import pytest

from placeprint.describe.local_features import dense_rootsift
from placeprint.describe.repeated import group_sizes, merge_repeated, repeated_groups
from placeprint.errors import PlaceprintError


def unit_rows(n, seed):
    x = np.abs(np.random.default_rng(seed).normal(size=(n, 128))).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_planted_repetition_is_one_group_distinct_are_singletons():
    rng = np.random.default_rng(0)
    pattern = unit_rows(1, 1)[0]
    # five instances of one pattern along a facade, 10 px apart, size 2 (within 8 * 2)
    rep_kp = np.array([[20 + 10 * i, 50, 2, 0] for i in range(5)], np.float32)
    rep_desc = pattern + 0.01 * rng.normal(size=(5, 128)).astype(np.float32)
    rep_desc /= np.linalg.norm(rep_desc, axis=1, keepdims=True)
    # distinct features in between and around: different appearance
    other_kp = np.array([[25 + 10 * i, 55, 2, 0] for i in range(6)], np.float32)
    other_desc = unit_rows(6, 2)
    kp = np.vstack([rep_kp, other_kp])
    desc = np.vstack([rep_desc, other_desc])
    labels = repeated_groups(kp, desc)
    assert labels.shape == (11,) and labels.dtype == np.int64
    assert len(set(labels[:5])) == 1  # the planted pattern: one group
    assert len(set(labels[5:])) == 6 and not set(labels[5:]) & set(labels[:5])
    np.testing.assert_array_equal(group_sizes(labels), [5] * 5 + [1] * 6)


def test_edges_need_distance_scale_and_appearance():
    d = unit_rows(1, 3).repeat(2, axis=0)  # identical appearance
    near = np.array([[0, 0, 2, 0], [10, 0, 2, 0]], np.float32)
    assert repeated_groups(near, d)[0] == repeated_groups(near, d)[1]
    far = np.array([[0, 0, 2, 0], [40, 0, 2, 0]], np.float32)  # 40 > 8 * 2
    overlap = np.array([[0, 0, 2, 0], [4, 0, 2, 0]], np.float32)  # 4 < 3 * 2: same patch
    scale = np.array([[0, 0, 2, 0], [10, 0, 5, 0]], np.float32)  # ratio 2.5 > 1.5
    for kp in (far, overlap, scale):
        labels = repeated_groups(kp, d)
        assert labels[0] != labels[1]
    assert repeated_groups(near, unit_rows(2, 4)).tolist() == [0, 1]  # different appearance
    with pytest.raises(PlaceprintError, match="keypoints"):
        repeated_groups(near[:, :2], d)


def test_tiled_image_groups_by_tile_phase():
    """A 16 px tile repeated 6 x 3 times: dense features at the same phase share a group."""
    import cv2

    rng = np.random.default_rng(5)
    tile = cv2.GaussianBlur(rng.uniform(0, 255, (16, 16)).astype(np.float32), (0, 0), 1.5)
    img = np.tile(tile, (3, 6))  # 48 x 96
    kp, desc = dense_rootsift(img, step=8, sizes=(2,), min_side=None, max_side=None)
    labels = repeated_groups(kp, desc, radius=10.0, min_sep=3.0, max_desc_dist=0.1)
    # interior features (window 12 px) away from the border, same phase -> same label
    inner = (kp[:, 0] > 10) & (kp[:, 0] < 86) & (kp[:, 1] > 10) & (kp[:, 1] < 38)
    phase = (kp[:, 0] % 16 // 8) * 2 + (kp[:, 1] % 16 // 8)
    for p in range(4):
        sel = inner & (phase == p)
        assert sel.sum() >= 3 and len(set(labels[sel])) == 1
    assert len(set(labels[inner])) <= 4  # four phases -> at most four structures
    assert group_sizes(labels)[inner].min() >= 3


def test_merge_repeated_hand_computed():
    labels = np.array([0, 0, 1])
    words = np.array([[0, 1], [0, 2], [1, 2]])
    weights = np.array([[0.6, 0.4], [0.7, 0.3], [0.5, 0.5]])
    # group 0: word 0 gets 0.6 + 0.7 = 1.3 -> capped 1, word 1 0.4, word 2 0.3
    # group 1 (singleton): word 1 0.5, word 2 0.5
    np.testing.assert_allclose(merge_repeated(labels, words, weights, k=4), [1, 0.9, 0.8, 0])
    # all singletons: the plain soft histogram
    plain = merge_repeated(np.arange(3), words, weights, k=4)
    np.testing.assert_allclose(plain, [1.3, 0.9, 0.8, 0])
    assert merge_repeated(labels, words, np.zeros((3, 2)), k=4).tolist() == [0, 0, 0, 0]

"""Geometric verification: RootSIFT extraction, mutual NN, multi-homography RANSAC, re-ranking.

Known-geometry checks warp real sample photos (scikit-image) with known homographies.
"""

import cv2
import numpy as np
import pytest
from conftest import require_real_data
from skimage.data import astronaut, brick, camera

import placeprint.verify as verify
from placeprint.errors import PlaceprintError
from placeprint.verify import (
    FeatureCache,
    GeometricReranker,
    LocalFeatures,
    extract,
    mutual_nearest_neighbours,
    plausible_homography,
    rootsift,
    verify_pair,
)
from placeprint.verify.features import working_scale

H_TRUE = np.array([[0.9, 0.1, 20.0], [-0.05, 1.0, 10.0], [1e-4, 5e-5, 1.0]])


def apply_h(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.c_[pts, np.ones(len(pts))] @ H.T
    return p[:, :2] / p[:, 2:]


def grid(x0, x1, y0, y1, n=6):
    xs, ys = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    return np.c_[xs.ravel(), ys.ravel()]


@pytest.fixture(scope="module")
def astro():
    return cv2.cvtColor(astronaut(), cv2.COLOR_RGB2GRAY)


@pytest.fixture(scope="module")
def astro_feats(astro):
    return extract(astro)


@pytest.fixture(scope="module")
def warped(astro):
    return cv2.warpPerspective(astro, H_TRUE, (512, 512))


@pytest.fixture(scope="module")
def warped_feats(warped):
    return extract(warped)


def test_public_names():
    for name in verify.__all__:
        assert hasattr(verify, name), name


# -- features --------------------------------------------------------------------------
def test_rootsift_hand_computed():
    d = np.array([[1.0, 3.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    out = rootsift(d)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0], [0.5, np.sqrt(0.75), 0, 0], rtol=1e-6)
    np.testing.assert_array_equal(out[1], 0)


def test_working_scale():
    assert working_scale((768, 1024), 640, 256) == pytest.approx(0.625)
    assert working_scale((32, 64), 640, 256) == 4.0
    assert working_scale((32, 60), 640, 256) == 5.0  # ceil(256 / 60)
    assert working_scale((300, 400), 640, 256) == 1.0


def test_extract_shapes_and_determinism(astro, astro_feats):
    f = astro_feats
    assert f.keypoints.shape == (len(f), 4) and f.keypoints.dtype == np.float32
    assert f.descriptors.shape == (len(f), 128) and f.descriptors.dtype == np.float32
    assert 300 < len(f) <= 2000 and f.shape == (512, 512) and f.scale == 1.0
    np.testing.assert_allclose(np.linalg.norm(f.descriptors, axis=1), 1, atol=1e-5)
    assert np.all(f.descriptors >= 0)
    again = extract(astro)
    np.testing.assert_array_equal(again.keypoints, f.keypoints)
    np.testing.assert_array_equal(again.descriptors, f.descriptors)
    assert len(extract(astro, max_features=100)) <= 110  # OpenCV keeps ties


def test_upright_descriptors_are_taken_at_orientation_zero_once_a_keypoint(astro):
    import cv2

    up = extract(astro)
    assert np.all(up.keypoints[:, 3] == 0)
    assert len(np.unique(up.keypoints[:, :3], axis=0)) == len(up)  # no repeated keypoint
    # the same keypoints as OpenCV's, described at angle 0 (computed here independently)
    sift = cv2.SIFT_create(nfeatures=2000)
    found = sift.detect(astro, None)
    uniq = {(k.pt[0], k.pt[1], k.size): k for k in reversed(found)}
    kps = [cv2.KeyPoint(*k.pt, k.size, 0.0, k.response, k.octave) for k in uniq.values()]
    kps, raw = sift.compute(astro, kps)
    described = zip(kps, rootsift(raw), strict=True)
    want = {(round(k.pt[0], 3), round(k.pt[1], 3)): d for k, d in described}
    pairs = zip(up.xy, up.descriptors, strict=True)
    got = {(round(float(x), 3), round(float(y), 3)): d for (x, y), d in pairs}
    assert got.keys() == want.keys()
    for key in list(got)[:200]:
        np.testing.assert_allclose(got[key], want[key], atol=1e-6)
    free = extract(astro, upright=False)
    assert len(free) > len(up) and (free.keypoints[:, 3] != 0).mean() > 0.9


def test_upright_features_give_up_rotation_and_gain_distinctiveness(astro, warped):
    """A quarter turn defeats upright descriptors, not rotation-invariant ones; an upright
    view change (the warp) verifies with more inliers upright."""
    turned = np.ascontiguousarray(np.rot90(astro))
    assert verify_pair(extract(astro), extract(turned)).inliers < 15
    assert verify_pair(extract(astro, upright=False), extract(turned, upright=False)).inliers > 200
    up = verify_pair(extract(astro), extract(warped)).inliers
    free = verify_pair(extract(astro, upright=False), extract(warped, upright=False)).inliers
    assert up >= 200 and free >= 200


def test_tiny_image_is_upsampled_and_keypoints_in_input_pixels():
    # one Gaussian blob at a known sub-pixel position of a 64x32 image (Nordland size)
    yy, xx = np.mgrid[0:32, 0:64].astype(np.float64)
    img = 40 + 180 * np.exp(-((xx - 20.3) ** 2 + (yy - 12.6) ** 2) / (2 * 2.0**2))
    f = extract(img)
    assert f.scale == 4.0 and f.shape == (32, 64)
    assert len(f) >= 1
    dist = np.hypot(f.xy[:, 0] - 20.3, f.xy[:, 1] - 12.6)
    assert dist.min() < 0.3  # blob centre found, in input-pixel coordinates


def test_extract_bad_inputs(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(PlaceprintError, match="bad.jpg"):
        extract(bad)
    with pytest.raises(PlaceprintError):
        extract(np.zeros((1, 5)))
    with pytest.raises(PlaceprintError):
        LocalFeatures(np.zeros((3, 4)), np.zeros((2, 128)))


# -- mutual nearest neighbours ---------------------------------------------------------
def test_mutual_nn_hand_made():
    a = np.array([[0.0, 0], [0.3, 0], [10, 0]])
    b = np.array([[0.1, 0], [3, 0], [10.5, 0], [20, 0]])
    # a1 -> b0 but b0 -> a0; b1 -> a1 but a1 -> b0; b3 -> a2 but a2 -> b2
    np.testing.assert_array_equal(mutual_nearest_neighbours(a, b), [[0, 0], [2, 2]])
    # ratio on b0's side: 0.1^2 < 0.9^2 * 0.2^2 passes, < 0.4^2 * 0.2^2 fails
    np.testing.assert_array_equal(mutual_nearest_neighbours(a, b, ratio=0.9), [[0, 0], [2, 2]])
    np.testing.assert_array_equal(mutual_nearest_neighbours(a, b, ratio=0.4), [[2, 2]])
    # duplicate database rows: the lowest index wins
    np.testing.assert_array_equal(mutual_nearest_neighbours(a[:1], np.ones((2, 2))), [[0, 0]])
    assert mutual_nearest_neighbours(a, np.zeros((0, 2))).shape == (0, 2)


def brute_force_mnn(a, b, ratio):
    d = ((a[:, None] - b[None]) ** 2).sum(-1)
    out = []
    for i in range(len(a)):
        j = int(np.argmin(d[i]))
        if int(np.argmin(d[:, j])) != i:
            continue
        if ratio is not None:
            if d[i, j] >= ratio**2 * np.sort(d[i])[1] or d[i, j] >= ratio**2 * np.sort(d[:, j])[1]:
                continue
        out.append((i, j))
    return np.array(out, np.int64).reshape(-1, 2)


@pytest.mark.parametrize("ratio", [None, 0.8])
def test_mutual_nn_matches_brute_force(ratio):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(80, 16)).astype(np.float32)
    b = np.r_[a[:40] + 0.3 * rng.normal(size=(40, 16)), rng.normal(size=(50, 16))]
    got = mutual_nearest_neighbours(a, b.astype(np.float32), ratio)
    np.testing.assert_array_equal(got, brute_force_mnn(a.astype(float), b, ratio))
    assert len(got) >= 30


@pytest.mark.parametrize("ratio", [None, 0.8])
def test_mutual_nn_of_unit_rows_ranks_by_dot_product_as_brute_force(ratio):
    """Unit-norm rows (RootSIFT) take the dot-product path: the same pairs as distances."""
    rng = np.random.default_rng(2)
    a = np.abs(rng.normal(size=(120, 32)))
    b = np.r_[a[:60] + 0.2 * np.abs(rng.normal(size=(60, 32))), np.abs(rng.normal(size=(70, 32)))]
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    got = mutual_nearest_neighbours(a.astype(np.float32), b.astype(np.float32), ratio)
    np.testing.assert_array_equal(got, brute_force_mnn(a, b, ratio))
    assert len(got) >= 40


# -- verification against known geometry -----------------------------------------------
def test_recovers_known_homography(astro_feats, warped_feats):
    v = verify_pair(astro_feats, warped_feats)
    assert v.inliers >= 200 and v.inlier_counts[0] >= 200
    assert v.n_tentative == len(v.matches) == len(v.labels)
    assert v.inliers == int((v.labels >= 0).sum())
    H = v.homographies[0]
    assert H.shape == (3, 3) and H[2, 2] == pytest.approx(1)
    pts = grid(50, 450, 50, 450)
    err = np.linalg.norm(apply_h(H, pts) - apply_h(H_TRUE, pts), axis=1)
    assert err.max() < 2.0
    # the inliers of H really fit the true map
    m = v.matches[v.labels == 0]
    fit = np.linalg.norm(
        apply_h(H_TRUE, astro_feats.xy[m[:, 0]]) - warped_feats.xy[m[:, 1]], axis=1
    )
    assert np.median(fit) < 1.0
    assert verify_pair(astro_feats, warped_feats).inlier_counts == v.inlier_counts  # determinism
    ransac = verify_pair(astro_feats, warped_feats, method="ransac")
    assert ransac.inliers >= 200


def test_homography_in_input_pixels_when_shrunk(astro):
    big = cv2.resize(astro, (1024, 1024))
    big_warped = cv2.warpPerspective(big, H_TRUE, (1024, 1024))
    q, d = extract(big, max_side=640), extract(big_warped, max_side=640)
    assert q.scale == pytest.approx(0.625)
    assert q.xy.max() > 700  # keypoints are reported in the 1024-pixel input frame
    v = verify_pair(q, d)
    assert v.inliers >= 150
    pts = grid(100, 900, 100, 900)
    err = np.linalg.norm(apply_h(v.homographies[0], pts) - apply_h(H_TRUE, pts), axis=1)
    assert err.max() < 4.0  # ~2 working pixels


def test_unrelated_images_get_few_inliers(astro_feats):
    for other in (camera(), np.random.default_rng(0).integers(0, 256, (512, 512))):
        v = verify_pair(astro_feats, extract(other))
        assert v.inliers < 15 and v.homographies == []


def two_plane_pair():
    """Query: astronaut | gap | brick; db: left part moved by H1, right part by H2."""
    left = cv2.cvtColor(astronaut(), cv2.COLOR_RGB2GRAY)[100:356, 100:340]
    right = brick()[:256, :240]
    query = np.zeros((256, 512), np.uint8)
    query[:, :240] = left
    query[:, 272:] = right
    H1 = np.array([[1.05, 0.0, -10.0], [0.02, 1.05, 5.0], [0, 0, 1]])
    c, s = np.cos(np.radians(8)), np.sin(np.radians(8))
    to_c = np.array([[1, 0, -392.0], [0, 1, -128.0], [0, 0, 1]])
    H2 = np.linalg.inv(to_c) @ np.array([[c, -s, 0], [s, c, 0], [2e-4, 0, 1]]) @ to_c
    mask_l = np.zeros_like(query)
    mask_l[:, :240] = 1
    db = cv2.warpPerspective(query * mask_l, H1, (512, 256)) + cv2.warpPerspective(
        query * (1 - mask_l), H2, (512, 256)
    )
    return query, db, H1, H2


def test_two_planes_give_two_homographies():
    query, db, H1, H2 = two_plane_pair()
    q, d = extract(query), extract(db)
    v = verify_pair(q, d, max_homographies=3)
    assert len(v.homographies) >= 2
    assert v.inlier_counts[0] >= 40 and v.inlier_counts[1] >= 40
    found = set()
    for k in range(2):
        xs = q.xy[v.matches[v.labels == k, 0], 0]
        side = "left" if np.median(xs) < 256 else "right"
        assert np.mean((xs < 256) == (side == "left")) > 0.95  # one plane per homography
        H_ref = H1 if side == "left" else H2
        pts = grid(20, 220, 20, 236) if side == "left" else grid(292, 492, 20, 236)
        err = np.linalg.norm(apply_h(v.homographies[k], pts) - apply_h(H_ref, pts), axis=1)
        assert err.max() < 3.0
        found.add(side)
    assert found == {"left", "right"}
    one = verify_pair(q, d, max_homographies=1)
    assert one.inlier_counts == v.inlier_counts[:1] and one.inliers == v.inlier_counts[0]


def test_plausible_homography():
    pts = grid(0, 500, 0, 400)
    assert plausible_homography(np.eye(3), pts, 8.0)
    assert plausible_homography(H_TRUE, pts, 8.0)
    assert not plausible_homography(np.diag([-1.0, 1, 1]), pts, 8.0)  # mirror
    assert not plausible_homography(np.diag([20.0, 20, 1]), pts, 8.0)  # scale x20
    assert not plausible_homography(np.diag([0.05, 0.05, 1]), pts, 8.0)
    horizon = np.array([[1, 0, 0], [0, 1, 0], [-1 / 250, 0, 1.0]])  # w = 0 at x = 250
    assert not plausible_homography(horizon, pts, 8.0)
    line = np.c_[np.linspace(0, 500, 20), np.linspace(0, 250, 20)]
    assert not plausible_homography(np.eye(3), line, 8.0)  # collinear points


# -- re-ranking ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def candidates(warped):
    noise = np.random.default_rng(3).integers(0, 256, (300, 400))
    return [camera(), brick(), warped, noise, camera()[::-1]]


def test_rerank_moves_true_match_first(astro, candidates):
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    res = GeometricReranker(top_k=5).rerank(astro, candidates, scores)
    assert res.best == 2 and res.verified
    np.testing.assert_array_equal(res.order, [2, 0, 1, 3, 4])  # others keep retrieval order
    assert res.inliers[2] >= 200 and np.all(res.inliers[[0, 1, 3, 4]] == 0)
    assert res.probabilities.sum() == pytest.approx(1)
    assert res.probabilities[2] == pytest.approx(0.99)
    others = np.exp(scores[[0, 1, 3, 4]] / 0.1)
    np.testing.assert_allclose(res.probabilities[[0, 1, 3, 4]], 0.01 * others / others.sum())
    assert res.checked.all() and res.seconds > 0


def test_rerank_unconfident_keeps_retrieval_distribution(astro_feats, candidates):
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    rr = GeometricReranker(top_k=5, confident_inliers=100_000)
    res = rr.rerank(astro_feats, candidates, scores)
    assert res.best == 2 and not res.verified
    e = np.exp((scores - scores.max()) / 0.1)
    np.testing.assert_allclose(res.probabilities, e / e.sum())
    # only the first two are verified: the true match is not seen, order unchanged
    res2 = GeometricReranker(top_k=2).rerank(astro_feats, candidates, scores)
    np.testing.assert_array_equal(res2.order, np.arange(5))
    np.testing.assert_array_equal(res2.checked, [True, True, False, False, False])
    assert not res2.verified and res2.verifications[2] is None


def test_rerank_with_feature_cache(astro_feats, candidates):
    rr = GeometricReranker(top_k=5)
    images = dict(zip("abcde", candidates, strict=True))
    cache = rr.cache(images)
    for _ in range(2):
        res = rr.rerank(astro_feats, list("abcde"), None, fetch=cache)
        assert res.best == 2
    assert cache.extracted == 5 and len(cache) == 5  # each database image extracted once
    np.testing.assert_allclose(res.probabilities[res.order[1:]], 0.01 / 4)  # uniform rest
    # ready features pass through a plain mapping or a callable
    feats = {k: cache(k) for k in "abcde"}
    assert rr.rerank(astro_feats, list("abcde"), fetch=feats).best == 2
    assert rr.rerank(astro_feats, list("abcde"), fetch=feats.__getitem__).best == 2
    small = FeatureCache(feats, max_items=2)
    for k in "abc":
        small(k)
    assert len(small) == 2 and small.extracted == 0
    with pytest.raises(PlaceprintError, match="no database image"):
        cache("zzz")


def test_rerank_errors(astro_feats):
    rr = GeometricReranker()
    with pytest.raises(PlaceprintError):
        rr.rerank(astro_feats, [], [])
    with pytest.raises(PlaceprintError):
        rr.rerank(astro_feats, [astro_feats], [0.1, 0.2])
    with pytest.raises(PlaceprintError):
        rr.rerank(astro_feats, [astro_feats], [np.nan])
    with pytest.raises(PlaceprintError):
        GeometricReranker(min_inliers=60, confident_inliers=50)
    with pytest.raises(PlaceprintError):
        verify_pair(astro_feats, astro_feats, method="lmeds")
    with pytest.raises(PlaceprintError):
        GeometricReranker(method="lmeds")


def test_lund_neighbours_verify_and_distant_photo_does_not():
    lund = require_real_data("geotagged", "lund")
    rr = GeometricReranker()
    q = rr.features(lund / "05.jpg")
    near = rr.verify(q, rr.features(lund / "06.jpg"))  # next photo, ~5 m on
    far = rr.verify(q, rr.features(lund / "25.jpg"))  # ~144 m further down the street
    # measured 144 and 0 inliers (5 m and 144 m apart by EXIF GPS)
    assert near.inliers >= rr.confident_inliers
    assert far.inliers < rr.min_inliers

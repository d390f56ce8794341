"""Geometric verification: RootSIFT matches, multi-homography RANSAC, re-ranking.

``extract(image) -> LocalFeatures``; ``verify_pair(query, db) -> Verification``;
``GeometricReranker(...).rerank(query, candidates, scores) -> RerankResult``.
"""

from placeprint.verify.features import LocalFeatures, extract, rootsift
from placeprint.verify.geometric import (
    FeatureCache,
    GeometricReranker,
    RerankResult,
    Verification,
    mutual_nearest_neighbours,
    plausible_homography,
    verify_pair,
)

__all__ = [
    "FeatureCache",
    "GeometricReranker",
    "LocalFeatures",
    "RerankResult",
    "Verification",
    "extract",
    "mutual_nearest_neighbours",
    "plausible_homography",
    "rootsift",
    "verify_pair",
]

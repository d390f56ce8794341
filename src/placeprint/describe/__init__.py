"""image -> descriptor: one module per family, one registry (``get``, ``available``, ``catalog``).

Every describer maps a list of images (paths or arrays) to ``(n, dim) float32``;
see :class:`placeprint.describe.base.Describer`. Modules are imported only when
their describer is asked for, so ``import placeprint`` stays fast.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from placeprint.errors import PlaceprintError


@dataclass(frozen=True)
class Entry:
    """Where a describer lives and what it is, for ``placeprint describe --list``."""

    module: str
    cls: str
    family: str
    summary: str


_REGISTRY: dict[str, Entry] = {
    "seqslam": Entry(
        "seqslam", "SeqSLAMDescriber", "sequence", "patch-normalised grey thumbnail (SeqSLAM)"
    ),
    "tiny": Entry("tiny", "TinyImageDescriber", "im2gps", "16x16 colour tiny image"),
    "lab_hist": Entry(
        "color", "LabHistogramDescriber", "im2gps", "CIE L*a*b* colour histogram 4x14x14 (chi2)"
    ),
    "texton": Entry(
        "texton", "TextonDescriber", "im2gps", "texton histogram, 512 k-means textons (chi2)"
    ),
    "lines": Entry("lines", "LineDescriber", "im2gps", "straight-line angle/length histograms"),
    "gist": Entry("gist", "GistDescriber", "im2gps", "GIST Gabor energy 4x4 grid + colour"),
    "geocontext": Entry(
        "geocontext", "GeoContextDescriber", "im2gps", "ground/vertical/sky maps, 4x4 pooled"
    ),
    "im2gps": Entry(
        "im2gps", "Im2gpsDescriber", "im2gps", "IM2GPS combination, per-feature normalised"
    ),
    "bow": Entry("bow", "BowDescriber", "local", "dense RootSIFT bag-of-words, tf-idf, burstiness"),
    "vlad": Entry("vlad", "VladDescriber", "local", "dense RootSIFT VLAD, PCA-whitened"),
    "densevlad": Entry(
        "vlad", "DenseVladDescriber", "local", "whole-image DenseVLAD (Torii et al.), whitened"
    ),
    "cnn_gem": Entry("deep", "GemDescriber", "deep", "MobileNetV2 (ImageNet) + GeM, whitened"),
    "cnn_netvlad": Entry(
        "deep", "NetVladDescriber", "deep", "MobileNetV2 (ImageNet) + NetVLAD soft-assignment"
    ),
    "crn": Entry("crn", "CrnDescriber", "deep", "MobileNetV2 + contextual re-weighting (CRN)"),
    "crossview": Entry(
        "crossview", "CrossViewDescriber", "crossview", "a trained cross-view model's branch"
    ),
}


def available() -> list[str]:
    """Names of the registered describers."""
    return sorted(_REGISTRY)


def catalog() -> dict[str, Entry]:
    """Registry entries by name (module, class, family, one-line summary)."""
    return dict(sorted(_REGISTRY.items()))


def describer_class(name: str) -> type:
    """The class behind describer ``name``."""
    if name not in _REGISTRY:
        raise PlaceprintError(f"unknown describer {name!r}; available: {', '.join(available())}")
    entry = _REGISTRY[name]
    module = importlib.import_module(f"placeprint.describe.{entry.module}")
    return getattr(module, entry.cls)


def get(name: str, **options):
    """Return the describer ``name`` configured with ``options``.

    >>> from placeprint import describe
    >>> describe.get("seqslam").dim
    4096
    """
    cls = describer_class(name)
    try:
        return cls(**options)
    except TypeError as exc:
        raise PlaceprintError(f"bad options for describer {name!r}: {exc}") from None

"""A trained cross-view model as a describer: aerial tiles or ground panoramas -> its
global descriptors (``placeprint crossview train``; SAFA or NetVLAD heads).

``describe.get("crossview", model="m.pt", view="aerial")`` describes square tiles;
``view="ground"`` describes 2:1 panoramas. The descriptors then go wherever any
describer's go: ``index build``, the evaluation harness.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from placeprint.describe.base import Describer, ImageLike
from placeprint.errors import PlaceprintError

VIEWS = ("aerial", "ground")


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


class CrossViewDescriber(Describer):
    """Descriptors of one branch of a trained cross-view model."""

    name = "crossview"

    def __init__(self, model: str | None = None, view: str = "aerial") -> None:
        if model is None:
            raise PlaceprintError("the crossview describer needs model=CHECKPOINT.pt")
        if view not in VIEWS:
            raise PlaceprintError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")
        try:
            from placeprint.crossview.train import load_model
        except ImportError:
            raise PlaceprintError(
                "the crossview describer needs torch (make installs it)"
            ) from None
        self.model_path = Path(model)
        self.view = view
        self.model = load_model(self.model_path)
        if self.model.config.aggregation == "dsm":
            raise PlaceprintError("a DSM model compares feature maps: it has no descriptors")
        self.fingerprint = _file_sha256(self.model_path)
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:  # what the branch gives for one blank input
            import torch

            c = self.model.config
            aerial = self.view == "aerial"
            size = c.aerial_size if aerial else c.ground_size
            branch = self.model.encode_aerial if aerial else self.model.encode_ground
            with torch.no_grad():
                self._dim = int(branch(torch.zeros(1, 3, *size)).shape[1])
        return self._dim

    def params(self) -> dict:
        return {"model": str(self.model_path), "view": self.view, "weights": self.fingerprint}

    def describe(self, images: Sequence[ImageLike]) -> np.ndarray:
        from placeprint.crossview.data import aerial_inputs, ground_inputs
        from placeprint.crossview.evaluate import encode
        from placeprint.describe.images import load_rgb

        loaded = [np.clip(load_rgb(im), 0, 255).round().astype(np.uint8) for im in images]
        if len({a.shape for a in loaded}) > 1:
            raise PlaceprintError("crossview: every image of a batch must have the same size")
        arrays = np.stack(loaded)
        if self.view == "aerial":
            x = aerial_inputs(arrays, self.model.config)
        else:
            x = ground_inputs(arrays, self.model.config)
        return encode(self.model, x, ground=self.view == "ground").numpy()

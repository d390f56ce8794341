"""Several sets of style-aware elements, each mined from its own random seed patches, read
together: the label of an image is the mean of the sets' readings.

Mining starts from random patches, so which elements one set finds, and so its error,
varies with the seed: on Nordland season's tuning folds one set put 0.064 to 0.077 of
the frames in the wrong season, by seed (five seeds, scratch run 2026-12-07). Averaging
sets mined from different seeds keeps what they agree on; how many sets a label gets is
chosen on tuning data (``benchmarks/midlevel.py --tune``). One member is exactly
:class:`~placeprint.midlevel.elements.StyleAwareElements`.
"""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np

from placeprint.errors import PlaceprintError
from placeprint.midlevel.elements import FILE_KIND, ElementSettings, StyleAwareElements

ENSEMBLE_KIND = "placeprint-midlevel-ensemble"
#: sets of elements ``placeprint midlevel fit`` averages unless told: what ``--tune`` chose
#: for Nordland season (position chose 2, style 5; every label erred less with three sets
#: than with one: ``benchmarks/results/midlevel_tuning.json``)
DEFAULT_MEMBERS = 3


class ElementEnsemble:
    """``fit(patches (n, p, d), labels (n,))`` mines ``members`` sets of elements (seeds
    ``settings.seed``, ``+1``, ...); ``predict(patches) -> (n,)`` averages their labels."""

    def __init__(self, settings: ElementSettings | None = None, members: int = 1) -> None:
        self.settings = settings or ElementSettings()
        self.settings.check()
        if members < 1:
            raise PlaceprintError(f"need at least one member, got {members}")
        self.members = members

    def member_settings(self, k: int) -> ElementSettings:
        """Member ``k``'s settings: the ensemble's, mined from seed ``settings.seed + k``."""
        return replace(self.settings, seed=self.settings.seed + k)

    def fit(self, P: np.ndarray, labels: np.ndarray) -> ElementEnsemble:
        self.members_ = [
            StyleAwareElements(self.member_settings(k)).fit(P, labels) for k in range(self.members)
        ]
        return self

    def member_predictions(self, P: np.ndarray) -> np.ndarray:
        """``(members, n)``: each member's label of each image."""
        if not hasattr(self, "members_"):
            raise PlaceprintError("the elements are not fitted")
        return np.stack([m.predict(P) for m in self.members_])

    def predict(self, P: np.ndarray) -> np.ndarray:
        """The label of each image ``(n,)``: the mean of the members' labels."""
        return self.member_predictions(P).mean(axis=0)

    def save(self, path, layout) -> int:
        """Write every member and the HOG ``layout`` to one file (atomically); returns the
        bytes written."""
        from placeprint.index.fileformat import write_container

        if not hasattr(self, "members_"):
            raise PlaceprintError("the elements are not fitted")
        metas, arrays = [], {}
        for k, member in enumerate(self.members_):
            meta, own = member.state()
            metas.append(meta)
            arrays.update({f"{k}/{name}": a for name, a in own.items()})
        meta = {"settings": asdict(self.settings), "members": metas, "layout": asdict(layout)}
        return write_container(path, ENSEMBLE_KIND, meta, arrays)

    @classmethod
    def load(cls, path):
        """``(ensemble, layout)`` from a file of :meth:`save`, or of
        :meth:`StyleAwareElements.save` (an ensemble of one)."""
        from placeprint.index.fileformat import read_container, read_header
        from placeprint.midlevel.hog import HogLayout

        if read_header(path).get("kind") == FILE_KIND:
            single, layout = StyleAwareElements.load(path)
            model = cls(single.settings, 1)
            model.members_ = [single]
            return model, layout
        meta, arrays, _ = read_container(path, ENSEMBLE_KIND)
        model = cls(ElementSettings(**meta["settings"]), len(meta["members"]))
        own: list[dict] = [{} for _ in meta["members"]]  # "k/name" -> member k's name
        for key, array in arrays.items():
            k, name = key.split("/", 1)
            own[int(k)][name] = array
        model.members_ = [
            StyleAwareElements.from_state(m, a) for m, a in zip(meta["members"], own, strict=True)
        ]
        return model, HogLayout.from_dict(meta["layout"])

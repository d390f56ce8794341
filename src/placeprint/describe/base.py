"""The one small base class every describer follows (hloc-style plug-ins, sklearn-style fit).

A describer maps a batch of images (paths or arrays) to ``(n, dim) float32``.
Describers that learn (vocabularies, PCA-whitening, CRN weights) implement
``fit(images) -> self`` and keep their learned state in attributes ending with
``_``; ``save(path)`` / ``Describer.load(path)`` write and read that state as a
versioned placeprint container (magic bytes, version, checksum, atomic write).
Calling a learning describer before it is fitted raises :class:`PlaceprintError`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from placeprint.errors import PlaceprintError

ImageLike = str | Path | np.ndarray
STATE_KIND = "describer-state"


class Describer:
    """Base class: ``name``, ``dim``, ``config()``, ``__call__(images) -> (n, dim) float32``.

    Subclasses set ``name`` (the registry name), ``learns`` (True when ``fit`` is
    needed), implement ``dim``, ``params()`` (constructor options, JSON-able) and
    ``describe(images)``; learners also implement ``fit``, ``_state()`` and
    ``_set_state(arrays)``.
    """

    name: str = "describer"
    learns: bool = False

    # -- to implement -------------------------------------------------------------
    @property
    def dim(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def params(self) -> dict:
        """Constructor options that change the output (JSON-able)."""
        return {}

    def describe(self, images: Sequence[ImageLike]) -> np.ndarray:  # pragma: no cover
        """Descriptors of a non-empty batch, ``(n, dim)``."""
        raise NotImplementedError

    def fit(self, images: Sequence[ImageLike]) -> Describer:
        """Learn state from database images; returns ``self``. No-op for non-learners."""
        return self

    def _state(self) -> dict[str, np.ndarray]:
        """Learned arrays (learners only)."""
        return {}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore learned arrays (learners only)."""

    def fixed_bytes(self) -> int:
        """Bytes of what describing needs that is not learned from data (e.g. a network's
        weights); 0 for describers that need nothing beyond their code."""
        return 0

    def state_bytes(self) -> int:
        """Bytes a query needs of this describer: its learned arrays and :meth:`fixed_bytes`."""
        return int(sum(a.nbytes for a in self._state().values())) + self.fixed_bytes()

    # -- shared behaviour ---------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        """True for non-learners, and for learners once ``fit`` or ``load`` ran."""
        return (not self.learns) or bool(self._state())

    def check_fitted(self) -> None:
        """Raise a clear error when a learning describer is used before ``fit``."""
        if not self.is_fitted:
            raise PlaceprintError(
                f"describer {self.name!r} learns from data: call fit(images) on database "
                "images first, or load its saved state (the .describer file next to the index)"
            )

    def state_fingerprint(self) -> str | None:
        """SHA-1 of the learned state (None for non-learners); part of ``config()``."""
        if not self.learns:
            return None
        self.check_fitted()
        h = hashlib.sha1()
        for key, arr in sorted(self._state().items()):
            arr = np.ascontiguousarray(arr)
            h.update(key.encode())
            h.update(str(arr.dtype).encode() + str(arr.shape).encode())
            h.update(arr.tobytes())
        return h.hexdigest()[:16]

    def config(self) -> dict:
        """Everything that changes the output: name, options and (learners) state fingerprint."""
        out = {"name": self.name, **self.params()}
        if self.learns:
            out["state"] = self.state_fingerprint()
        return out

    def config_key(self) -> str:
        """A short stable hash of ``config()``, used to key descriptor caches."""
        blob = json.dumps(self.config(), sort_keys=True, default=str).encode()
        return hashlib.sha1(blob).hexdigest()[:16]

    def __call__(self, images: Sequence[ImageLike]) -> np.ndarray:
        """Descriptors ``(n, dim) float32`` of ``images`` (paths or arrays)."""
        if isinstance(images, (str, Path)):
            raise PlaceprintError("give a list of images (paths or arrays), not a single path")
        self.check_fitted()
        if len(images) == 0:
            return np.zeros((0, self.dim), np.float32)
        out = np.asarray(self.describe(list(images)), dtype=np.float32)
        if out.shape != (len(images), self.dim):
            raise AssertionError(
                f"{self.name} returned {out.shape}, expected {(len(images), self.dim)}"
            )
        return out

    def save(self, path: str | Path) -> int:
        """Write the learned state to ``path`` atomically; returns bytes written."""
        from placeprint.index.fileformat import write_container

        self.check_fitted()
        meta = {"name": self.name, "params": self.params()}
        return write_container(path, STATE_KIND, meta, self._state())

    @staticmethod
    def load(path: str | Path) -> Describer:
        """Read a describer (its options and learned state) saved with ``save``."""
        from placeprint.describe import get
        from placeprint.index.fileformat import read_container

        meta, arrays, _ = read_container(path, STATE_KIND)
        describer = get(meta["name"], **meta.get("params", {}))
        describer._set_state({k: np.array(v) for k, v in arrays.items()})
        return describer

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({opts})"

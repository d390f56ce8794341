"""image -> descriptor: one module per family, one registry (``get``, ``available``)."""

from __future__ import annotations

from collections.abc import Callable

from placeprint.errors import PlaceprintError

_REGISTRY: dict[str, Callable[..., object]] = {}


def _seqslam(**options):
    from placeprint.describe.seqslam import SeqSLAMDescriber

    return SeqSLAMDescriber(**options)


_REGISTRY["seqslam"] = _seqslam


def available() -> list[str]:
    """Names of the registered describers."""
    return sorted(_REGISTRY)


def get(name: str, **options):
    """Return the describer ``name`` configured with ``options``."""
    if name not in _REGISTRY:
        raise PlaceprintError(f"unknown describer {name!r}; available: {', '.join(available())}")
    try:
        return _REGISTRY[name](**options)
    except TypeError as exc:
        raise PlaceprintError(f"bad options for describer {name!r}: {exc}") from None

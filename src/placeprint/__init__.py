"""placeprint: where was this taken? Compact visual place recognition.

Data flows one way: images -> descriptors -> compact codes -> index -> matches.
Heavy parts are imported lazily so ``import placeprint`` stays fast.
"""

from placeprint.errors import PlaceprintError

__version__ = "0.1.0"
__all__ = ["PlaceprintError", "__version__"]

"""descriptor -> compact code: projection, variance re-scaling, coarse scalar quantization."""

from placeprint.codec.coarse import CoarseCodec

__all__ = ["CoarseCodec"]

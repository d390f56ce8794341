"""Codes on disk and the searches over them."""

from placeprint.index.overloaded import OverloadedIndex

__all__ = ["OverloadedIndex"]

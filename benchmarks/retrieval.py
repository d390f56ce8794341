"""Retrieval options on real photos: ``python benchmarks/retrieval.py --help``."""

from placeprint.evaluate.registry import script

if __name__ == "__main__":
    script("retrieval")

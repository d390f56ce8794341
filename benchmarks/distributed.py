"""Describe+encode on Dask clusters: ``python benchmarks/distributed.py --help``."""

import os
import sys

# this file's folder is first on sys.path and would shadow the `distributed` package
_here = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _here]

from placeprint.evaluate.registry import script  # noqa: E402

if __name__ == "__main__":
    script("distributed")

"""Geometric context and the IM2GPS weights: ``python benchmarks/geocontext.py --help``."""

from placeprint.evaluate.registry import script

if __name__ == "__main__":
    script("geocontext")

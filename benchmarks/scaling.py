"""The scaling benchmark: ``python benchmarks/scaling.py --help`` lists its options."""

from placeprint.evaluate.registry import script

if __name__ == "__main__":
    script("scaling")

"""The describers benchmark: ``python benchmarks/describers.py --help`` lists its options."""

from placeprint.evaluate.registry import script

if __name__ == "__main__":
    script("describers")

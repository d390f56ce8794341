"""The nordland benchmark: ``python benchmarks/nordland.py --help`` lists its options."""

from placeprint.evaluate.registry import script

if __name__ == "__main__":
    script("nordland")

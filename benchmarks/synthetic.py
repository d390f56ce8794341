"""The synthetic benchmark: ``python benchmarks/synthetic.py --help`` lists its options."""

from placeprint.evaluate.registry import script

if __name__ == "__main__":
    script("synthetic")

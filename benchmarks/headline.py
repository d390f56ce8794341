"""The headline benchmark: ``python benchmarks/headline.py --help`` lists its options."""

from placeprint.evaluate.registry import script

if __name__ == "__main__":
    script("headline")

"""Cross-view retrieval on synthetic test areas: ``python benchmarks/crossview.py --help``."""

from placeprint.evaluate.registry import script

if __name__ == "__main__":
    script("crossview")

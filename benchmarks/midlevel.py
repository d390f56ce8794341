"""Mid-level elements vs whole-image regression: ``python benchmarks/midlevel.py --help``."""

from placeprint.evaluate.registry import script

if __name__ == "__main__":
    script("midlevel")

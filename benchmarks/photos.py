"""Real photos located as `placeprint locate` does: ``python benchmarks/photos.py --help``."""

from placeprint.evaluate.registry import script

if __name__ == "__main__":
    script("photos")

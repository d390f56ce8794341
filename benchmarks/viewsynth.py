"""View synthesis against off-path night queries: ``python benchmarks/viewsynth.py --help``."""

from placeprint.evaluate.registry import script

if __name__ == "__main__":
    script("viewsynth")

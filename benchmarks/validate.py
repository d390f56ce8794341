"""Settings chosen on folds of frames <= 20000: ``python benchmarks/validate.py --help``."""

from placeprint.evaluate.registry import script

if __name__ == "__main__":
    script("validate")

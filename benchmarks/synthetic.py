"""synthetic benchmark: see ``placeprint.evaluate.bench.synthetic_main`` (``--help`` for options)."""

from placeprint.evaluate.bench import script

if __name__ == "__main__":
    script("synthetic")

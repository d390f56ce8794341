"""scaling benchmark: see ``placeprint.evaluate.bench.scaling_main`` (``--help`` for options)."""

from placeprint.evaluate.bench import script

if __name__ == "__main__":
    script("scaling")

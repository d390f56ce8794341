"""nordland benchmark: see ``placeprint.evaluate.bench.nordland_main`` (``--help`` for options)."""

from placeprint.evaluate.bench import script

if __name__ == "__main__":
    script("nordland")

"""headline benchmark: see ``placeprint.evaluate.bench.headline_main`` (``--help`` for options)."""

from placeprint.evaluate.bench import script

if __name__ == "__main__":
    script("headline")

"""Load test of ``placeprint serve``: ``python benchmarks/serve.py --help`` lists its options.

Exit status 0 when every request succeeded, 2 (one ``error:`` line) otherwise.
"""

from placeprint.evaluate.registry import script

if __name__ == "__main__":
    script("serve")

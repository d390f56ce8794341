"""``make demo``: build a compact index of Nordland hidden among generated places, match winter.

With the real data (``$PLACEPRINT_DATA/nordland``) the database is the summer
traverse inside a synthetic route of ``--distractors`` places fitted to it; the
queries are the winter sequences. Without it, a generated two-condition route
stands in (and the output says so).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from placeprint.errors import PlaceprintError

OUT = Path("demo-output")


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m placeprint.demo", description=__doc__)
    p.add_argument("--distractors", type=int, default=1_000_000)
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    try:
        run(a.distractors, a.out, a.quiet)
    except PlaceprintError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def run(distractors: int, out: Path, quiet: bool = False) -> dict:
    from placeprint.config import data_available, data_root
    from placeprint.evaluate.bench import headline_json, plot_headline, print_headline
    from placeprint.evaluate.pipeline import load_nordland_route, synthetic_stand_in
    from placeprint.evaluate.report import run_metadata, write_json
    from placeprint.evaluate.scale_bench import distractor_experiment

    if data_available("nordland"):
        print(
            f"placeprint demo: Nordland from {data_root() / 'nordland'} "
            f"(summer = database, winter = queries) + {distractors:,} generated places"
        )
        route = load_nordland_route(quiet)
        stem = "nordland"
    else:
        print(
            f"placeprint demo: real data not found under {data_root()} (set PLACEPRINT_DATA); "
            "running on a GENERATED two-condition route instead: numbers below are not "
            "real-data results"
        )
        route = synthetic_stand_in()
        stem = "generated"
    res = distractor_experiment(
        route, distractors, (10, 25, 50, 100), stride=5, curve=False, quiet=quiet
    )
    result = headline_json(res, run_metadata("make demo", []))
    print_headline(result)
    plots = plot_headline(result, out, f"demo_{stem}")
    result["plots"] = [str(x) for x in plots]
    path = write_json(out / f"demo_{stem}.json", result)
    print(f"recall plot: {plots[0]}")
    print(f"results: {path}")
    return result


if __name__ == "__main__":
    sys.exit(main())

"""``make demo``: build a compact index of Nordland hidden among generated places, match winter.

With the real data (``$PLACEPRINT_DATA/nordland``) the database is the summer
traverse inside a synthetic route of ``--distractors`` places fitted to it; the
queries are the winter sequences. Without it, a generated two-condition route
stands in (and the output says so). Then, with the geotagged street photos, it
locates held-out photos against the others and draws their probability maps.
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
        locate_demo(a.out)
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

    settings = None
    if data_available("nordland"):
        from placeprint.evaluate.bench import DEFAULT_SETTINGS
        from placeprint.evaluate.validate import load_settings

        print(
            f"placeprint demo: Nordland from {data_root() / 'nordland'} "
            f"(summer = database, winter = queries) + {distractors:,} generated places"
        )
        if DEFAULT_SETTINGS.is_file():  # the headline's settings, chosen by validate.py
            settings = load_settings(DEFAULT_SETTINGS)
            name = settings.get("describer_name", "seqslam")
            print(f"settings from {DEFAULT_SETTINGS} (describer {name})")
            route = load_nordland_route(quiet, name, **settings.get("describer_options", {}))
        else:
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
        route, distractors, (10, 25, 50, 100), stride=5, curve=False, settings=settings, quiet=quiet
    )
    result = headline_json(res, run_metadata("make demo", []))
    print_headline(result)
    plots = plot_headline(result, out, f"demo_{stem}")
    result["plots"] = [str(x) for x in plots]
    path = write_json(out / f"demo_{stem}.json", result)
    print(f"recall plot: {plots[0]}")
    print(f"results: {path}")
    return result


HELD_OUT = (("lund", "13.jpg"), ("berlin", "02.jpg"))


def locate_demo(out: Path) -> list[dict] | None:
    """Locate held-out Lund and Berlin photos against the other geotagged photos."""
    import tempfile

    from placeprint.config import data_available, data_path
    from placeprint.describe.images import list_images
    from placeprint.geo.distance import haversine_km
    from placeprint.geo.exif import read_gps
    from placeprint.geo.maps import format_km
    from placeprint.locate import PhotoLocator, build_geolocator, write_outputs
    from placeprint.sources import describe_files, make_describer

    if not data_available("geotagged"):
        print("where on Earth: no geotagged photos under the data folder; skipped")
        return None
    held = [data_path("geotagged", city, name) for city, name in HELD_OUT]
    db = [f for city in ("lund", "berlin") for f in list_images(data_path("geotagged", city))]
    db = [f for f in db if f not in held]
    print(f"\nwhere on Earth: {len(db)} geotagged street photos as the database, "
          f"{len(held)} held out")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        describer = make_describer({"name": "cnn_netvlad"})
        describer.fit(db)
        state = Path(tmp) / "photos.idx.describer"
        describer.save(state)
        X, kept = describe_files(describer, db, progress=False, cache=False)
        fixes = [read_gps(db[i]) for i in kept]
        build_geolocator(
            X,
            [f.lat for f in fixes],
            [f.lon for f in fixes],
            [str(db[i]) for i in kept],
            describer.config(),
            Path(tmp) / "photos.idx.geo",
            cells="none",
        )
        located = PhotoLocator(Path(tmp) / "photos.idx").locate(held)
    rows = []
    for r in located:
        truth = read_gps(r.photo)
        best = r.prediction.best
        err = float(haversine_km(best.lat, best.lon, truth.lat, truth.lon))
        files = write_outputs(r, out, truth=(truth.lat, truth.lon))
        print(
            f"  {Path(r.photo).parent.name}/{Path(r.photo).name}: {best.name} "
            f"({best.lat:.5f}, {best.lon:.5f}), p={best.probability:.2f}, "
            f"radius {format_km(best.radius_km)}; true position {format_km(err)} away; "
            f"map {files['map']}"
        )
        rows.append({"photo": r.photo, "error_km": err, **best.to_dict()})
    return rows


if __name__ == "__main__":
    sys.exit(main())

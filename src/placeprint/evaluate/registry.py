"""The benchmarks by name: ``placeprint bench NAME`` and ``python benchmarks/NAME.py``.

Each entry names the function that runs it (``argv, prog -> dict``), imported only
when that benchmark runs.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

from placeprint.errors import PlaceprintError

RUNNERS: dict[str, str] = {
    "headline": "placeprint.evaluate.bench:headline_main",
    "validate": "placeprint.evaluate.bench:validate_main",
    "describers": "placeprint.evaluate.describers_bench:describers_main",
    "scaling": "placeprint.evaluate.bench:scaling_main",
    "nordland": "placeprint.evaluate.bench:nordland_main",
    "synthetic": "placeprint.evaluate.bench:synthetic_main",
    "geolocation": "placeprint.evaluate.geolocation_bench:geolocation_main",
    "photos": "placeprint.evaluate.photos_bench:photos_main",
    "retrieval": "placeprint.evaluate.retrieval_bench:retrieval_main",
    "crossview": "placeprint.evaluate.crossview_bench:crossview_main",
    "serve": "placeprint.evaluate.serve_bench:main",
    "viewsynth": "placeprint.evaluate.viewsynth_bench:viewsynth_main",
    "geocontext": "placeprint.evaluate.geocontext_bench:geocontext_main",
    "midlevel": "placeprint.evaluate.midlevel_bench:midlevel_main",
    "distributed": "placeprint.evaluate.distributed_bench:distributed_main",
}


def runner(name: str) -> Callable[..., dict]:
    """The function that runs benchmark ``name``."""
    if name not in RUNNERS:
        raise PlaceprintError(f"unknown benchmark {name!r}; choose from {', '.join(RUNNERS)}")
    module, function = RUNNERS[name].split(":")
    return getattr(importlib.import_module(module), function)


def script(name: str) -> None:
    """Entry point of ``benchmarks/<name>.py``: errors as one line, exit 2."""
    try:
        runner(name)(sys.argv[1:], prog=f"benchmarks/{name}.py")
    except PlaceprintError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)

"""Shared fixtures. Real data comes from ``$PLACEPRINT_DATA`` (default ``../shared/data``);
tests that need it skip with a message when it is absent, and fail instead when ``CI=true``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from placeprint.evaluate.serve_bench import HELD_OUT as LUND_HELD_OUT

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "placeprint.cli"]


def smooth_route(n: int, d: int, rng, smoothing: int = 4) -> np.ndarray:
    """A random walk-like route ``(n, d)``: consecutive places are similar."""
    noise = rng.normal(size=(n + smoothing, d))
    kernel = np.ones(smoothing) / np.sqrt(smoothing)
    return np.stack([np.convolve(noise[:, j], kernel, "valid")[:n] for j in range(d)], 1)


def run_cli(*args, cwd=None, env=None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``placeprint ARGS`` in a subprocess (tracebacks off) and capture its output."""
    return subprocess.run(
        [*CLI, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PLACEPRINT_DEBUG": "", **(env or {})},
        timeout=timeout,
    )


def assert_one_line_error(proc, *fragments) -> None:
    """Exit status 2 and one ``error: ...`` line on stderr that holds every fragment."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("error:"), err
    for f in fragments:
        assert f in err, err


def _real_data_root() -> Path:
    from placeprint.config import data_root

    root = data_root()
    if not root.is_absolute() and not root.exists() and "PLACEPRINT_DATA" not in os.environ:
        root = (REPO / root).resolve()  # default ../shared/data, relative to the repo root
    return root


def require_real_data(*parts: str) -> Path:
    """Path of real data ``parts``; skip the test when absent (fail when ``CI=true``)."""
    path = _real_data_root().joinpath(*parts)
    if not path.exists():
        msg = (
            f"real data not found: {path} (set PLACEPRINT_DATA to the folder holding "
            f"{'/'.join(parts)}, e.g. ../shared/data)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def nordland_descriptors() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(summer (n, d) float32, winter (n, d) float32, dark (n,) bool)`` on Nordland.

    SeqSLAM descriptors (patch-normalised 64x32, default patches) computed with the
    package; row ``i`` of both seasons is the same place; ``dark`` marks frames dark in
    either season.
    """
    from placeprint.datasets.nordland import load_nordland
    from placeprint.describe import get

    nordland = load_nordland(require_real_data("nordland"))
    describer = get("seqslam")
    return describer(nordland.summer), describer(nordland.winter), nordland.dark_mask()


@pytest.fixture(scope="session")
def nordland_route(nordland_descriptors):
    """The Nordland route (SeqSLAM descriptors) as the benchmarks see it."""
    from placeprint.evaluate.pipeline import RealRoute

    summer, winter, dark = nordland_descriptors
    frames = (np.arange(len(summer)) + 1) * 10
    return RealRoute(summer, winter, dark, frames, {"name": "seqslam"})


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Caches (descriptors, model graphs) go to a temporary folder, never the user's home."""
    old = os.environ.get("PLACEPRINT_CACHE")
    os.environ["PLACEPRINT_CACHE"] = str(tmp_path_factory.mktemp("placeprint-cache"))
    yield
    if old is None:
        os.environ.pop("PLACEPRINT_CACHE", None)
    else:
        os.environ["PLACEPRINT_CACHE"] = old


@pytest.fixture(scope="session")
def lund_tiny_index(tmp_path_factory):
    """26 Lund photos (03, 13, 23 held out) in ``root/db``, indexed as ``root/lund.idx``.

    Built once a session with the fast ``tiny`` describer by ``placeprint index build``
    (route index, geolocator, place store); ``photos`` is the real Lund folder.
    """
    from types import SimpleNamespace

    from placeprint.evaluate.serve_bench import build_lund_index

    lund = require_real_data("geotagged", "lund").resolve()
    root = tmp_path_factory.mktemp("lund-index")
    # 10 photos verified an answer, not the default 25: the service tests send many requests
    built = build_lund_index(root, verify_top=10)
    assert sorted(p.stem for p in built.queries) == sorted(LUND_HELD_OUT)
    assert len(list(built.db.glob("*.jpg"))) == len(list(lund.glob("*.jpg"))) - len(LUND_HELD_OUT)
    return SimpleNamespace(root=root, db=built.db, index=built.index, photos=lund,
                           build_output=built.build_output)  # fmt: skip

"""Load test of ``placeprint serve`` on loopback: latency, throughput, errors, memory.

Starts the real server (uvicorn, one worker) in a subprocess on ``127.0.0.1`` and a free
port, on a Lund index built in a temporary folder (or ``--index``), sends ``--requests``
``POST /locate`` uploads from ``--clients`` concurrent threads (httpx), and reports
p50/p95/max latency (ms), requests per second, errors (must be 0) and the server's
resident memory (``VmRSS``) after start-up, after a warm-up and at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np

from placeprint.errors import PlaceprintError
from placeprint.evaluate.report import print_table, run_metadata, write_json

#: Lund photos kept out of the index and sent as queries
HELD_OUT = ("03", "13", "23")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like the CLI
        raise PlaceprintError(f"{self.prog}: {message}")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float | None:
    """Resident memory of process ``pid`` in MiB (``VmRSS`` of ``/proc``), None if unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


class LundIndex(NamedTuple):
    """A Lund index built by :func:`build_lund_index`: the ``index`` file, the held-out
    ``queries``, the folder ``db`` of indexed photos and what ``index build`` printed."""

    index: Path
    queries: list[Path]
    db: Path
    build_output: str


def build_lund_index(folder: Path, quiet: bool = True, verify_top: int | None = None) -> LundIndex:
    """A tiny-describer index of the Lund photos (but :data:`HELD_OUT`) under ``folder``,
    built by ``placeprint index build`` (``--verify-top`` when given)."""
    from placeprint.config import data_path

    lund = data_path("geotagged", "lund")
    if not lund.is_dir():
        raise PlaceprintError(
            f"real data not found: {lund} (set PLACEPRINT_DATA, or give --index and --photos)"
        )
    db = folder / "db"
    db.mkdir(parents=True, exist_ok=True)
    queries = []
    for f in sorted(lund.glob("*.jpg")):
        if f.stem in HELD_OUT:
            queries.append(f)
        else:
            shutil.copy(f, db / f.name)
    idx = folder / "lund.idx"
    cmd = [sys.executable, "-m", "placeprint.cli", "index", "build", str(db), "-o", str(idx),
           "--describer", "tiny"]  # fmt: skip
    if verify_top is not None:
        cmd += ["--verify-top", str(verify_top)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise PlaceprintError(f"index build failed: {proc.stderr.strip()[-300:]}")
    if not quiet:
        print(f"built {idx}")
    return LundIndex(idx, queries, db, proc.stdout)


def _wait_healthy(client, url: str, proc, log_file: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_file.read_text(errors="replace").strip().splitlines()[-3:]
            raise PlaceprintError(f"the server exited ({proc.returncode}): {' | '.join(tail)}")
        try:
            if client.get(f"{url}/health", timeout=2.0).status_code == 200:
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.2)
    raise PlaceprintError(f"the server did not answer /health within {timeout_s:g} s")


@contextmanager
def running_server(
    index: Path, log_file: Path, extra: Sequence[str] = (), timeout_s: float = 180.0
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``placeprint serve --index INDEX [EXTRA]`` on a free loopback port, healthy.

    Yields ``(base_url, process)``; the server's output goes to ``log_file``; it is
    stopped on exit. A server that dies or stays silent is a :class:`PlaceprintError`.
    """
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "placeprint.cli", "serve", "--index", str(index)]
    cmd += ["--host", "127.0.0.1", "--port", str(port), *extra]
    with open(log_file, "w") as log:
        env = {**os.environ, "PLACEPRINT_DEBUG": ""}
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        with httpx.Client() as client:
            _wait_healthy(client, url, proc, log_file, timeout_s)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def load_test(
    url: str, photos: list[Path], requests: int, clients: int, token: str | None = None
) -> dict:
    """Send ``requests`` POST /locate uploads from ``clients`` threads; latencies (ms), errors."""
    import httpx

    payloads = [(p.name, p.read_bytes()) for p in photos]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    local = threading.local()
    lat_ms = np.full(requests, np.nan)
    failures: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=120.0, headers=headers)
        name, data = payloads[i % len(payloads)]
        t0 = time.perf_counter()
        try:
            resp = local.client.post(
                f"{url}/locate?top=5", files={"file": (name, data, "image/jpeg")}
            )
            ok = resp.status_code == 200 and resp.json().get("modes")
            why = None if ok else f"{resp.status_code}: {resp.text[:120]}"
        except Exception as err:  # noqa: BLE001 - every failure is counted and reported
            why = f"{type(err).__name__}: {err}"
        lat_ms[i] = 1e3 * (time.perf_counter() - t0)
        if why:
            with lock:
                failures.append(why)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one, range(requests)))
    wall = time.perf_counter() - t0
    return {
        "requests": requests,
        "clients": clients,
        "errors": len(failures),
        "first_errors": failures[:5],
        "seconds": wall,
        "requests_per_s": requests / wall if wall > 0 else None,
        "latency_ms": {
            "p50": float(np.nanpercentile(lat_ms, 50)),
            "p95": float(np.nanpercentile(lat_ms, 95)),
            "max": float(np.nanmax(lat_ms)),
            "mean": float(np.nanmean(lat_ms)),
        },
    }


def main(argv: list[str] | None = None, prog: str = "benchmarks/serve.py") -> dict:
    """Load-test the service; prints a table, writes JSON; a failed request is an error."""
    p = _Parser(prog=prog, description=main.__doc__)
    p.add_argument("--index", type=Path, default=None, help="Index to serve (default: Lund).")
    p.add_argument("--photos", type=Path, nargs="*", default=None, help="Query photos.")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--warmup", type=int, default=8, help="Requests before measuring.")
    p.add_argument("--startup-timeout", type=float, default=180.0, help="Seconds.")
    p.add_argument(
        "--soak",
        type=float,
        default=None,
        metavar="SECONDS",
        help="soak test instead: good and hostile requests from --clients for SECONDS",
    )
    p.add_argument("--rss-limit-mb", type=float, default=2048.0, help="soak: memory bound")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--quiet", action="store_true")
    argv = list(sys.argv[1:] if argv is None else argv)
    a = p.parse_args(argv)
    if a.requests < 1 or a.clients < 1 or a.warmup < 0:
        raise PlaceprintError("--requests and --clients must be >= 1, --warmup >= 0")
    import importlib.util

    if importlib.util.find_spec("httpx") is None:
        raise PlaceprintError("the load test needs httpx: pip install httpx")

    with tempfile.TemporaryDirectory(prefix="placeprint-serve-bench-") as tmp:
        tmp = Path(tmp)
        if a.index is None:
            built = build_lund_index(tmp, quiet=a.quiet)
            idx, queries = built.index, built.queries
        else:
            idx, queries = a.index, []
        photos = list(a.photos or queries)
        if not photos:
            raise PlaceprintError("give --photos to send (query images)")
        for f in photos:
            if not f.is_file():
                raise PlaceprintError(f"not found: {f}")
        log_file = tmp / "server.log"
        if a.soak is not None:
            return _soak_main(a, argv, prog, idx, photos, log_file)
        with running_server(idx, log_file, ["--quiet"], a.startup_timeout) as (url, proc):
            rss_start = rss_mb(proc.pid)
            if a.warmup:
                warm = load_test(url, photos, a.warmup, min(a.clients, a.warmup))
                if warm["errors"]:
                    raise PlaceprintError(f"warm-up requests failed: {warm['first_errors'][0]}")
            rss_warm = rss_mb(proc.pid)
            if not a.quiet:
                print(f"server pid {proc.pid} on {url}: {a.requests} requests, {a.clients} clients")
            res = load_test(url, photos, a.requests, a.clients)
            rss_end = rss_mb(proc.pid)
            alive = proc.poll() is None
    growth = None if rss_warm is None or rss_end is None else rss_end - rss_warm
    out = {
        **run_metadata(prog, argv),
        "index": str(a.index) if a.index else "lund (26 photos, tiny describer, temporary)",
        "photos": [str(f) for f in photos],
        **res,
        "server_alive_after": alive,
        "rss_mb": {"start": rss_start, "after_warmup": rss_warm, "end": rss_end},
        "rss_growth_mb": growth,
    }
    lat = res["latency_ms"]
    print_table(
        f"placeprint serve: POST /locate on loopback ({a.clients} clients)",
        ["requests", "errors", "req/s", "p50 ms", "p95 ms", "max ms", "RSS MiB", "RSS growth"],
        [
            [
                res["requests"],
                res["errors"],
                res["requests_per_s"],
                lat["p50"],
                lat["p95"],
                lat["max"],
                rss_end if rss_end is not None else float("nan"),
                growth if growth is not None else float("nan"),
            ]
        ],
    )
    if a.json:
        write_json(a.json, out)
        print(f"wrote {a.json}")
    if res["errors"] or not alive:
        first = res["first_errors"][0] if res["first_errors"] else "the server died"
        raise PlaceprintError(f"{res['errors']} of {res['requests']} requests failed: {first}")
    return out


def _soak_main(a, argv, prog: str, idx: Path, photos: list[Path], log_file: Path) -> dict:
    """``--soak``: the mix of :mod:`placeprint.evaluate.soak`; any failure is an error."""
    from placeprint.evaluate.soak import soak
    from placeprint.index import OverloadedIndex
    from placeprint.serve.store import PlaceStore, store_path_for

    if a.soak <= 0:
        raise PlaceprintError("--soak must be > 0 seconds")
    index = OverloadedIndex.load(idx)
    dims = int(index.codec.input_dim)
    frames = []
    with PlaceStore.open(store_path_for(idx)) as store:
        for place in store.many(range(min(5, len(store)))):
            f = store.image_file(place["id"])
            if f is not None:
                frames.append(f)
    if not frames:
        raise PlaceprintError("the index's place store has no images to send as frames")
    with running_server(idx, log_file, ["--quiet"], a.startup_timeout) as (url, proc):
        res = soak(url, proc.pid, photos, frames, dims, a.soak, a.clients)
        alive = proc.poll() is None
    out = {**run_metadata(prog, argv), **res, "server_alive_after": alive}
    out["rss_limit_mb"] = a.rss_limit_mb
    print_table(
        f"placeprint serve soak: {a.clients} clients for {a.soak:g} s",
        [
            "requests",
            "good failed",
            "hostile not 4xx",
            "peak RSS MiB",
            "health failed",
            "slowest health ms",
        ],
        [
            [
                res["requests"],
                res["good_failures"],
                res["hostile_not_4xx"],
                res["rss_peak_mb"],
                res["health"]["failed"],
                res["health"]["slowest_ms"],
            ]
        ],
    )
    if a.json:
        write_json(a.json, out)
        print(f"wrote {a.json}")
    problems = res["good_failures"] + res["hostile_not_4xx"] + res["health"]["failed"]
    if problems or not alive or res["rss_peak_mb"] > a.rss_limit_mb:
        first = (res["first_problems"] or ["memory or health"])[0]
        raise PlaceprintError(
            f"soak failed ({problems} problems, peak {res['rss_peak_mb']:.0f} MiB): {first}"
        )
    return out

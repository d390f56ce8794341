"""Soak test of ``placeprint serve``: good and hostile requests from many clients at once.

Every client loops for the given time over a mix of good requests (``/locate`` with a
real photo, ``/sequence`` with real frames and with descriptors, ``/places``, ``/stats``)
a 49-megapixel PNG of a few hundred KB (heavy, but a real phone photo can be that large)
and hostile ones (a sequence of sixteen such frames, a
3,000-level nested JSON body, a damaged JPEG, a GIF, a wrong content type, a body over
the limit, malformed place ids, unknown form fields). A monitor samples the server's
resident memory and asks ``/health`` throughout. Good requests must all succeed, hostile
ones must all get a 4xx, the server must stay under its memory bound and keep answering.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np


def _png(w: int, h: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (w, h), (30, 120, 60)).save(buf, "PNG")
    return buf.getvalue()


def requests_mix(photos: list[Path], frames: list[Path], dims: int) -> tuple[list, list]:
    """``(good, hostile)``: lists of ``(name, method, path, kwargs)`` for httpx."""
    photo = photos[0].read_bytes()
    seq = [("files", (f.name, f.read_bytes(), "image/jpeg")) for f in frames]
    rng = np.random.default_rng(0)
    descriptors = rng.normal(size=(len(frames), dims)).round(4).tolist()
    huge = _png(7000, 7000)  # 49 megapixels, a few hundred KB on the wire
    gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x00\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"  # noqa: E501
    good = [
        ("locate", "POST", "/locate?top=3", {"files": {"file": ("q.jpg", photo, "image/jpeg")}}),
        ("sequence images", "POST", "/sequence", {"files": seq}),
        ("sequence descriptors", "POST", "/sequence", {"json": {"descriptors": descriptors}}),
        ("place", "GET", "/places/0", {}),
        ("stats", "GET", "/stats", {}),
        # heavy but legitimate (a 48-MP phone photo is real): decoded within the budget
        ("49 MP png", "POST", "/locate", {"files": {"file": ("big.png", huge, "image/png")}}),
    ]
    nested = '{"descriptors": ' + "[" * 3000 + "]" * 3000 + "}"
    hostile = [
        (
            "16 x 49 MP frames",
            "POST",
            "/sequence",
            {"files": [("files", (f"f{i}.png", huge, "image/png")) for i in range(16)]},
        ),
        (
            "nested json",
            "POST",
            "/sequence",
            {"content": nested, "headers": {"content-type": "application/json"}},
        ),
        (
            "damaged jpeg",
            "POST",
            "/locate",
            {"files": {"file": ("bad.jpg", photo[: len(photo) // 3], "image/jpeg")}},
        ),
        ("gif", "POST", "/locate", {"files": {"file": ("a.gif", gif, "image/gif")}}),
        (
            "wrong type",
            "POST",
            "/sequence",
            {"content": b"hello", "headers": {"content-type": "text/plain"}},
        ),  # noqa: E501
        (
            "too large",
            "POST",
            "/locate",
            {"files": {"file": ("x.jpg", b"\xff" * (25 << 20), "image/jpeg")}},
        ),  # noqa: E501
        ("id 1.0", "GET", "/places/1.0", {}),
        ("id %20%31", "GET", "/places/%20%31", {}),
        ("two files", "POST", "/locate", {"files": [("file", ("a.jpg", photo, "image/jpeg"))] * 2}),
        ("bad descriptors", "POST", "/sequence", {"json": {"descriptors": [[1.0, 2.0]]}}),
    ]
    return good, hostile


def soak(
    url: str,
    pid: int,
    photos: list[Path],
    frames: list[Path],
    dims: int,
    seconds: float = 120.0,
    clients: int = 8,
) -> dict:
    """Run the mix from ``clients`` threads for ``seconds``; outcomes, memory, health."""
    import httpx

    from placeprint.evaluate.serve_bench import rss_mb

    good, hostile = requests_mix(photos, frames, dims)
    stop = time.monotonic() + seconds
    outcome: Counter = Counter()
    bad_good: list[str] = []
    bad_hostile: list[str] = []
    lock = threading.Lock()
    rss_peak = [rss_mb(pid) or 0.0]
    health = {"asked": 0, "failed": 0, "slowest_ms": 0.0}

    def client(k: int) -> None:
        mix = [(True, r) for r in good] + [(False, r) for r in hostile]
        i = k
        with httpx.Client(timeout=120.0) as c:
            while time.monotonic() < stop:
                is_good, (name, method, path, kw) = mix[i % len(mix)]
                i += 1
                try:
                    r = c.request(method, url + path, **kw)
                    status = r.status_code
                    one_line = _is_error_json(r) if status >= 400 else True
                except httpx.HTTPError as err:
                    status, one_line = f"{type(err).__name__}", False
                with lock:
                    outcome[(name, status)] += 1
                    if is_good and status != 200:
                        bad_good.append(f"{name}: {status}")
                    if not is_good and not (
                        isinstance(status, int) and 400 <= status < 500 and one_line
                    ):
                        bad_hostile.append(f"{name}: {status}")

    def monitor() -> None:
        with httpx.Client(timeout=5.0) as c:
            while time.monotonic() < stop:
                rss_peak[0] = max(rss_peak[0], rss_mb(pid) or 0.0)
                t0 = time.perf_counter()
                try:
                    ok = c.get(url + "/health").status_code == 200
                except httpx.HTTPError:
                    ok = False
                ms = 1e3 * (time.perf_counter() - t0)
                health["asked"] += 1
                health["failed"] += 0 if ok else 1
                health["slowest_ms"] = max(health["slowest_ms"], ms)
                time.sleep(0.2)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    threads.append(threading.Thread(target=monitor))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {
        "seconds": seconds,
        "clients": clients,
        "requests": int(sum(outcome.values())),
        "good_failures": len(bad_good),
        "hostile_not_4xx": len(bad_hostile),
        "first_problems": (bad_good + bad_hostile)[:5],
        "outcomes": {f"{n} -> {s}": v for (n, s), v in sorted(outcome.items(), key=str)},
        "rss_peak_mb": rss_peak[0],
        "health": health,
    }


def _is_error_json(resp) -> bool:
    try:
        body = resp.json()
    except (ValueError, json.JSONDecodeError):
        return False
    return isinstance(body, dict) and set(body) == {"error"} and "\n" not in str(body["error"])

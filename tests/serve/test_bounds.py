"""The service bounds the memory and the time of every request (issue 11)."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from placeprint.serve.budget import AbandonedError, Job, PixelBudget
from placeprint.serve.uploads import MAX_SIDE, decode_image

TestClient = pytest.importorskip("fastapi.testclient").TestClient


def _image_bytes(w: int, h: int, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (90, 140, 200)).save(buf, fmt)
    return buf.getvalue()


def test_decoded_uploads_are_reduced_on_load():
    for fmt in ("JPEG", "PNG"):
        pixels = decode_image(_image_bytes(6000, 3000, fmt), max_pixels=50e6)
        assert max(pixels.shape[:2]) <= MAX_SIDE and pixels.shape[2] == 3
        assert pixels.shape[1] >= 2 * pixels.shape[0] - 2  # the aspect ratio is kept
    small = decode_image(_image_bytes(64, 48, "PNG"))
    assert small.shape == (48, 64, 3)


DECODE_RSS = """
import io, resource, sys
from PIL import Image
from placeprint.serve.uploads import decode_image
buf = io.BytesIO(); Image.new("RGB", (7000, 7000), (90, 140, 200)).save(buf, "JPEG")
data = buf.getvalue()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
decode_image(data, max_pixels=50e6)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_a_49_megapixel_jpeg_decodes_in_bounded_memory():
    out = subprocess.run([sys.executable, "-c", DECODE_RSS], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    grew_mb = int(out.stdout.strip())
    assert grew_mb < 60, grew_mb  # a full decode needs 147 MB for the RGB pixels alone


def test_the_pixel_budget_queues_and_gives_up_at_the_deadline():
    budget = PixelBudget(100)
    order = []
    with budget.hold(80):

        def second():
            with budget.hold(50, Job(5.0)):
                order.append("second")

        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.2)
        assert order == [] and budget.used == 80  # waits for room
        order.append("first done")
    t.join(2)
    assert order == ["first done", "second"] and budget.used == 0
    with budget.hold(100):
        with pytest.raises(AbandonedError):
            with budget.hold(10, Job(0.2)):
                pass
    assert budget.used == 0


@pytest.fixture(scope="module")
def lund_app(lund_tiny_index):
    return lund_tiny_index.index, lund_tiny_index.photos


def test_a_request_over_its_pixel_budget_is_refused_before_decoding(lund_app):
    from placeprint.serve.app import create_app

    index, _ = lund_app
    c = TestClient(create_app(index, max_pixels=50e6, max_request_pixels=60e6))
    big = _image_bytes(7000, 7000, "PNG")  # 49 megapixels, a few hundred KB
    files = [("files", (f"f{i}.png", big, "image/png")) for i in range(3)]
    t0 = time.perf_counter()
    resp = c.post("/sequence", files=files)
    assert resp.status_code == 413 and "per request" in resp.json()["error"]
    assert time.perf_counter() - t0 < 3.0  # refused from the headers, nothing decoded


def test_abandoned_work_stops_after_the_timeout(lund_app):
    from placeprint.serve.app import create_app

    index, photos = lund_app
    app = create_app(index, request_timeout_s=0.8)
    svc = app.state.service
    calls = []

    def slow_describer(batch):  # stands in for a slow model
        calls.append(len(batch))
        time.sleep(0.3)
        return np.zeros((len(batch), svc.index.codec.input_dim), np.float32)

    svc.route_describer = slow_describer
    c = TestClient(app, raise_server_exceptions=False)
    frame = (photos / "05.jpg").read_bytes()
    files = [("files", (f"f{i}.jpg", frame, "image/jpeg")) for i in range(40)]
    resp = c.post("/sequence", files=files)
    assert resp.status_code == 504
    seen = len(calls)
    time.sleep(1.0)
    assert len(calls) == seen <= 4  # stopped at the next batch, long before the 10th
    assert c.get("/health").status_code == 200

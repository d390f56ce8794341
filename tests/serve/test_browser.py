"""End to end: the pages of ``placeprint serve`` in headless Debian Chromium, driven by Playwright.

A real server (``placeprint serve`` in a subprocess) on a small real index of Lund photos; the
browser uploads a held-out photo and must show a mode within 1 km of its EXIF position, loaded
matched images, the heat map and a marker; the sequence page must advance over five frames.
No request may leave the server (offline map, Leaflet served locally). Skips when Chromium,
Playwright or Leaflet is missing (fails instead under ``CI=true``); never downloads a browser.
"""

from __future__ import annotations

import os
import shutil
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from conftest import LUND_HELD_OUT, REPO

from placeprint.geo.distance import haversine_km
from placeprint.geo.exif import read_gps
from placeprint.serve.store import store_path_for

CHROMIUM = Path("/usr/bin/chromium")
LEAFLET = REPO / "web" / "node_modules" / "leaflet" / "dist" / "leaflet.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HELD_OUT = LUND_HELD_OUT
SEQUENCE = ("05", "06", "07", "08", "09")  # five consecutive database photos
TIMEOUT_MS = 30_000


def _missing(msg: str) -> None:
    """Skip with ``msg``, or fail under ``CI=true`` (as ``require_real_data`` does)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="module")
def playwright_api():
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} not found (apt-get install chromium; `make test` does it as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Python playwright is not installed (pip install -e '.[dev]')")
    if not LEAFLET.exists():
        _missing(f"Leaflet not found at {LEAFLET} (run `make web`: npm install --prefix web)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def _serve(index: Path, log: Path, *extra: str):
    """Run ``placeprint serve --index INDEX [EXTRA]`` on a free loopback port; yield its URL."""
    from placeprint.errors import PlaceprintError
    from placeprint.evaluate.serve_bench import running_server

    with ExitStack() as stack:
        try:
            base, _ = stack.enter_context(running_server(index, log, extra, timeout_s=90.0))
        except PlaceprintError as exc:
            pytest.fail(f"placeprint serve did not start: {exc}\n{log.read_text()[-3000:]}")
        yield base


@pytest.fixture(scope="module")
def lund_index(lund_tiny_index):
    """``(index_path, lund_folder)``: 26 Lund photos (03, 13, 23 held out), tiny describer."""
    store = store_path_for(lund_tiny_index.index)
    assert store.exists(), f"`placeprint index build` wrote no place store {store.name}"
    return lund_tiny_index.index, lund_tiny_index.photos


@pytest.fixture(scope="module")
def server(lund_index):
    """``(base_url, lund_folder)`` of a live ``placeprint serve`` on the Lund index."""
    index, lund = lund_index
    with _serve(index, index.parent / "serve.log") as base:
        yield base, lund


def _open(browser, base: str, path: str):
    """A fresh 1280x800 page at ``base + path`` and the list of every URL it requests."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base + path)
    return context, page, requests, errors


def _assert_local_only(requests: list[str], base: str) -> None:
    local = (base + "/", f"blob:{base}/", "data:")  # blob: is the query thumbnail, in memory
    outside = [u for u in requests if not u.startswith(local)]
    assert not outside, f"the page requested URLs outside {base}: {outside}"
    assert any(u.startswith(f"{base}/vendor/leaflet/leaflet.js") for u in requests), requests


def test_photo_page_locates_held_out_photo(server, playwright_api, tmp_path):
    base, lund = server
    context, page, requests, errors = _open(playwright_api, base, "/")
    try:
        # The offline base map: country outlines drawn as vector paths.
        page.wait_for_selector("#map .leaflet-outlines-pane path", timeout=TIMEOUT_MS)
        assert page.locator("figure.query").is_hidden()  # no broken picture before an upload
        query = lund / "13.jpg"
        page.set_input_files("#file-input", str(query))
        page.wait_for_selector("#modes .mode", timeout=TIMEOUT_MS)
        assert page.locator("figure.query").is_visible()
        # offline place names label the zoomed-in map (no tiles needed)
        page.wait_for_selector(".leaflet-tooltip.place-label", timeout=TIMEOUT_MS)
        labels = page.locator(".leaflet-tooltip.place-label").all_inner_texts()
        assert "Lund" in labels, labels
        captions = page.locator("#matches figcaption").all_inner_texts()
        assert captions and all(c.split(" ")[0].endswith(".jpg") for c in captions), captions

        truth = read_gps(query)
        first = page.locator("#modes .mode").first
        lat, lon = float(first.get_attribute("data-lat")), float(first.get_attribute("data-lon"))
        assert haversine_km(lat, lon, truth.lat, truth.lon) < 1.0, (lat, lon, truth)
        assert "Lund" in first.inner_text()
        assert "verified:" in first.inner_text()  # checked against the matched photos

        page.wait_for_function(
            "() => [...document.querySelectorAll('#matches img.match')]"
            ".some(i => i.complete && i.naturalWidth > 0)",
            timeout=TIMEOUT_MS,
        )
        loaded = page.eval_on_selector_all(
            "#matches img.match", "imgs => imgs.filter(i => i.naturalWidth > 0).length"
        )
        assert loaded >= 1

        overlay = page.locator("#map img.leaflet-image-layer")
        assert overlay.count() == 1
        assert overlay.get_attribute("src").startswith("data:image/png;base64,")
        assert page.locator("#map .leaflet-marker-icon").count() >= 1
        # The markers' icons come from the local Leaflet copy and did load.
        assert page.eval_on_selector_all(
            "#map .leaflet-marker-icon", "imgs => imgs.every(i => i.naturalWidth > 0)"
        )

        confidence = float(page.get_attribute("#confidence", "data-value"))
        assert 0.0 < confidence <= 1.0
        assert "%" in page.inner_text("#confidence")
        # 26 photos, each located from the others, calibrate it: the page says on what
        assert "each of 26 photos" in page.inner_text("#confidence")
        assert page.locator("#error").is_hidden(), page.inner_text("#error")
        assert not errors, errors

        shot = tmp_path / "photo_page.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        _assert_local_only(requests, base)
    finally:
        context.close()


def test_photo_page_shows_api_error(server, playwright_api, tmp_path):
    base, _ = server
    context, page, requests, errors = _open(playwright_api, base, "/")
    try:
        bogus = tmp_path / "notes.jpg"
        bogus.write_text("this is not a photo")
        page.set_input_files("#file-input", str(bogus))
        page.wait_for_selector("#error:not([hidden])", timeout=TIMEOUT_MS)
        assert page.inner_text("#error").strip()
        assert page.locator("#modes .mode").count() == 0
        assert not errors, errors
        _assert_local_only(requests, base)
    finally:
        context.close()


def test_sequence_page_advances(server, playwright_api, tmp_path):
    base, lund = server
    frames = tmp_path / "frames"
    frames.mkdir()
    for name in SEQUENCE:
        shutil.copy(lund / f"{name}.jpg", frames / f"{name}.jpg")
    context, page, requests, errors = _open(playwright_api, base, "/sequence")
    try:  # given in reverse: the page sorts frames by file name
        page.set_input_files("#files-input", [str(frames / f"{n}.jpg") for n in reversed(SEQUENCE)])
        page.click("#start")
        page.wait_for_selector("#final.done", timeout=TIMEOUT_MS)

        rows = page.locator("#steps tbody tr.step")
        assert rows.count() == len(SEQUENCE)
        assert page.locator("#steps tbody tr.failed").count() == 0
        assert [rows.nth(i).locator("td").nth(1).inner_text() for i in range(5)] == [
            f"{n}.jpg" for n in SEQUENCE
        ]
        assert page.get_attribute("#progress", "value") == str(len(SEQUENCE))
        final = page.locator("#final")
        # The frames are database photos: place ids are file-name order of the database, and
        # the last frame's own place must win.
        database = sorted(f.stem for f in lund.glob("*.jpg") if f.stem not in HELD_OUT)
        assert int(final.get_attribute("data-position")) == database.index(SEQUENCE[-1])
        lat, lon = float(final.get_attribute("data-lat")), float(final.get_attribute("data-lon"))
        truth = read_gps(lund / f"{SEQUENCE[-1]}.jpg")
        assert haversine_km(lat, lon, truth.lat, truth.lon) < 0.001
        assert page.locator("#map .leaflet-marker-icon").count() == 1
        assert not errors, errors
        shot = tmp_path / "sequence_page.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.exists()
        _assert_local_only(requests, base)
    finally:
        context.close()


def test_pages_with_token(lund_index, playwright_api, tmp_path):
    """With ``--token``, the page takes ``?token=`` from its URL for API calls and images."""
    index, lund = lund_index
    with _serve(index, tmp_path / "serve.log", "--token", "s3cret-t0ken") as base:
        import httpx

        assert httpx.post(f"{base}/locate").status_code == 401  # the API needs the token
        context, page, requests, errors = _open(playwright_api, base, "/?token=s3cret-t0ken")
        try:
            page.set_input_files("#file-input", str(lund / "23.jpg"))
            page.wait_for_selector("#modes .mode", timeout=TIMEOUT_MS)
            page.wait_for_function(
                "() => [...document.querySelectorAll('#matches img.match')]"
                ".some(i => i.complete && i.naturalWidth > 0)",
                timeout=TIMEOUT_MS,
            )
            images = [u for u in requests if "/places/" in u and "/image" in u]
            assert images and all("token=s3cret-t0ken" in u for u in images), images
            # the page's icon is served (no 404 in a browser's console); /docs needs the token
            icon = page.get_attribute("link[rel=icon]", "href")
            assert httpx.get(base + icon).status_code == 200  # the page's icon exists
            assert httpx.get(f"{base}/docs").status_code == 401
            assert page.locator("#error").is_hidden(), page.inner_text("#error")
            assert not errors, errors
            _assert_local_only(requests, base)
        finally:
            context.close()
        # without ?token= the page asks for it (a browser user cannot send a header)
        context, page, requests, errors = _open(playwright_api, base, "/")
        try:
            asked = []

            def answer(dialog):
                asked.append(dialog.message)
                dialog.accept("s3cret-t0ken")

            page.on("dialog", answer)
            page.set_input_files("#file-input", str(lund / "23.jpg"))
            page.wait_for_url("**token=s3cret-t0ken**", timeout=TIMEOUT_MS)
            assert asked and "token" in asked[0]
        finally:
            context.close()

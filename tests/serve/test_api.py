"""The HTTP API of `placeprint serve` on a small real index (Lund photos, tiny describer)."""

import base64
import io
import json
import shutil
import time
import warnings

import numpy as np
import pytest
from conftest import LUND_HELD_OUT, assert_one_line_error, run_cli
from PIL import Image

import placeprint
from placeprint.errors import PlaceprintError
from placeprint.geo.distance import haversine_km
from placeprint.geo.exif import read_gps

warnings.filterwarnings("ignore", message=".*httpx.*", category=DeprecationWarning)
TestClient = pytest.importorskip("fastapi.testclient").TestClient

HELD_OUT = LUND_HELD_OUT
SEQUENCE = ("04", "05", "06", "07", "08")  # consecutive photos, all in the database


@pytest.fixture(scope="module")
def lund(lund_tiny_index):
    """Lund index of 26 photos (03, 13, 23 held out) with its place store, and the app."""
    from placeprint.serve.app import create_app
    from placeprint.serve.store import store_path_for

    idx = lund_tiny_index.index
    assert store_path_for(idx).is_file()  # index build writes the place store
    app = create_app(idx)
    client = TestClient(app, raise_server_exceptions=False)
    root, photos = lund_tiny_index.root, lund_tiny_index.photos
    return {"root": root, "idx": idx, "photos": photos, "app": app, "client": client}


def _upload(client, payload: bytes, name: str = "photo.jpg", **kw):
    return client.post("/locate", files={"file": (name, payload, "image/jpeg")}, **kw)


def _assert_error(resp, status: int) -> str:
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in resp.text and "\n" not in body["error"]
    return body["error"]


def _still_serving(client) -> None:
    resp = client.get("/health")
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}


# ------------------------------------------------------------------ basics
def test_health_and_stats_match_the_index(lund):
    from placeprint.index import OverloadedIndex
    from placeprint.locate import load_geolocator

    c = lund["client"]
    _still_serving(c)
    stats = c.get("/stats").json()
    index = OverloadedIndex.load(lund["idx"])
    info = index.info()
    geo, _ = load_geolocator(lund["idx"])
    assert stats["places"] == info["places"] == 26
    assert stats["bytes_per_place"] == pytest.approx(info["bytes_per_place"], rel=1e-6)
    assert stats["index_bytes"] == lund["idx"].stat().st_size
    assert stats["describer"] == info["describer"] and stats["describer"]["name"] == "tiny"
    assert stats["geolocator"] == {"photos": len(geo.lat_), "cells": None}
    assert stats["version"] == placeprint.__version__


def test_openapi_description_lists_the_endpoints(lund):
    c = lund["client"]
    spec = c.get("/openapi.json").json()
    for path in ("/health", "/stats", "/locate", "/sequence", "/places/{place_id}"):
        assert path in spec["paths"], path
    seq = spec["paths"]["/sequence"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(seq)
    assert c.get("/docs").status_code == 200


def test_api_docs_are_served_locally(lund):
    """/docs is Swagger UI from the npm copy: every asset URL is on this server."""
    import re

    from placeprint.serve.app import swagger_dir

    if swagger_dir() is None:
        pytest.skip("Swagger UI not installed (make web)")
    c = lund["client"]
    page = c.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert urls and all(u.startswith(("/", "data:")) for u in urls), urls
    assert "https://" not in page.text and "http://" not in page.text
    assert c.get("/vendor/swagger/swagger-ui-bundle.js").status_code == 200
    assert c.get("/vendor/swagger/../../package.json").status_code == 404


def test_missing_index_is_a_clear_error(tmp_path):
    from placeprint.serve.app import create_app

    with pytest.raises(PlaceprintError, match="no index at"):
        create_app(tmp_path / "none.idx")
    assert_one_line_error(run_cli("serve", "--index", tmp_path / "none.idx"), "no index at")


def test_is_loopback():
    from placeprint.serve.app import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    assert not is_loopback("example.org")


# ------------------------------------------------------------------ /locate
@pytest.mark.parametrize("name", HELD_OUT)
def test_locate_held_out_photo(lund, name):
    from placeprint.serve.store import PlaceStore, store_path_for

    c = lund["client"]
    photo = lund["photos"] / f"{name}.jpg"
    truth = read_gps(photo)
    resp = _upload(c, photo.read_bytes(), f"{name}.jpg", params={"top": 3})
    assert resp.status_code == 200, resp.text
    out = resp.json()
    best = out["modes"][0]
    assert haversine_km(best["lat"], best["lon"], truth.lat, truth.lon) < 1.0
    assert "Lund" in best["name"]
    assert 0 < out["confidence"] <= 1 and out["confidence"] == best["probability"]
    # 26 photos, each located from the others, calibrate the probabilities
    assert out["calibrated"] is True and out["calibration_photos"] == 26
    # checked against the matched database photos: the held-out photos share facades
    assert out["verification"]["verified"] and best["verified"] and best["inliers"] >= 15
    # a verified answer's levels come from the collection's photos that verified
    assert out["calibrated_on"]["answers"] == "verified" and out["calibrated_on"]["photos"] >= 10
    assert haversine_km(best["lat"], best["lon"], truth.lat, truth.lon) < 0.05
    assert 1 <= len(out["modes"]) <= 3 and 1 <= len(out["matches"]) <= 3
    assert set(out["timing_ms"]) >= {"decode", "describe", "locate", "total"}
    weights = [m["weight"] for m in out["matches"]]
    assert weights == sorted(weights, reverse=True)
    with PlaceStore.open(store_path_for(lund["idx"])) as store:
        for m in out["matches"]:
            place = store.get(m["id"])
            assert (m["lat"], m["lon"], m["path"]) == (place["lat"], place["lon"], place["path"])
            img = c.get(m["image_url"])
            assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
            assert img.content == (lund["root"] / place["path"]).read_bytes()
            with Image.open(io.BytesIO(img.content)) as im:
                assert im.format == "JPEG"


def test_heatmap_overlay_peaks_at_the_best_mode(lund):
    from placeprint.serve.render import mercator_lats

    out = _upload(lund["client"], (lund["photos"] / "13.jpg").read_bytes()).json()
    (lat0, lon0), (lat1, lon1) = out["heatmap"]["bounds"]
    best = out["modes"][0]
    assert lat0 < best["lat"] < lat1 and lon0 < best["lon"] < lon1
    head, data = out["heatmap"]["png"].split(",", 1)
    assert head == "data:image/png;base64"
    with Image.open(io.BytesIO(base64.b64decode(data))) as im:
        assert im.mode == "RGBA"
        rgba = np.asarray(im)
    alpha = rgba[..., 3]
    assert alpha[0, 0] == 0 and alpha[-1, -1] == 0  # transparent far from the guess
    assert alpha.max() > 150
    # the most opaque pixel, mapped back through Web Mercator rows, is at the best mode
    r, col = np.unravel_index(np.argmax(alpha), alpha.shape)
    lat = mercator_lats(lat0, lat1, alpha.shape[0])[r]
    lon = lon0 + (lon1 - lon0) * (col + 0.5) / alpha.shape[1]
    size_km = haversine_km(lat0, lon0, lat1, lon1)
    assert haversine_km(lat, lon, best["lat"], best["lon"]) < 0.05 * size_km


def test_mercator_rows_are_even_in_projected_y():
    from placeprint.serve.render import mercator_lats

    lat = mercator_lats(-60.0, 70.0, 5)
    assert lat[0] == pytest.approx(70.0) and lat[-1] == pytest.approx(-60.0)
    y = np.log(np.tan(np.pi / 4 + np.radians(lat) / 2))  # textbook Mercator y
    assert np.allclose(np.diff(y), np.diff(y)[0])


# ------------------------------------------------------------------ /places
def test_places_equal_the_store_rows(lund):
    from placeprint.serve.store import PlaceStore, store_path_for

    c = lund["client"]
    with PlaceStore.open(store_path_for(lund["idx"])) as store:
        for pid in (0, 7, len(store) - 1):
            assert c.get(f"/places/{pid}").json() == store.get(pid)
            img = c.get(f"/places/{pid}/image")
            assert img.content == store.image_file(pid).read_bytes()
        _assert_error(c.get(f"/places/{len(store)}"), 404)


@pytest.mark.parametrize(
    "url",
    [
        "/places/..%2F..%2Fetc%2Fpasswd",
        "/places/..%2F..%2Fetc%2Fpasswd/image",
        "/places/-1",
        "/places/abc",
        "/places/1e3",
        "/places/99999999999999999999999",
        "/static/..%2F..%2F..%2Fpyproject.toml",
        "/vendor/leaflet/..%2F..%2F..%2F..%2Fpyproject.toml",
    ],
)
def test_paths_never_leave_their_folders(lund, url):
    resp = lund["client"].get(url)
    assert resp.status_code in (400, 404, 422), (url, resp.status_code)
    _assert_error(resp, resp.status_code)
    assert "root:" not in resp.text and "[project]" not in resp.text
    _still_serving(lund["client"])


# ------------------------------------------------------------------ bad input
def _bomb_png() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, "PNG")  # 400 megapixels in a few KB
    return buf.getvalue()


def _truncated_jpeg(lund) -> bytes:
    data = (lund["photos"] / "13.jpg").read_bytes()
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("case", "status", "words"),
    [
        ("empty", 400, "empty"),
        ("text", 415, "not an image"),
        ("truncated", 400, "truncated"),
        ("bomb", 413, "megapixels"),
        ("gif", 415, "not an image"),
    ],
)
def test_bad_uploads_get_a_clear_4xx(lund, case, status, words):
    if case == "empty":
        data = b""
    elif case == "text":
        data = b"this is not a photo, whatever its name says\n" * 20
    elif case == "truncated":
        data = _truncated_jpeg(lund)
    elif case == "bomb":
        data = _bomb_png()
        assert len(data) < 200_000  # small on the wire, huge once decoded
    else:
        buf = io.BytesIO()
        Image.new("RGB", (32, 32)).save(buf, "GIF")
        data = buf.getvalue()
    t0 = time.perf_counter()
    msg = _assert_error(_upload(lund["client"], data, "photo.jpg"), status)
    assert words in msg, msg
    assert time.perf_counter() - t0 < 5  # refused without decoding the pixels
    _still_serving(lund["client"])


def test_form_errors_are_422_sentences(lund):
    c = lund["client"]
    assert "file" in _assert_error(c.post("/locate"), 415)  # no multipart body at all
    no_photo = c.post("/locate", files={"other": ("a.txt", b"x", "text/plain")})
    assert "unknown form field" in _assert_error(no_photo, 400)
    photo = (lund["photos"] / "13.jpg").read_bytes()
    assert "top" in _assert_error(_upload(c, photo, params={"top": "0"}), 422)
    assert "top" in _assert_error(_upload(c, photo, params={"top": "many"}), 422)
    assert "unknown form field" in _assert_error(_upload(c, photo, data={"top": "3"}), 400)


def test_oversize_uploads_are_refused_while_reading(lund):
    from placeprint.serve.app import create_app

    small = TestClient(create_app(lund["idx"], max_upload_bytes=50_000))
    photo = (lund["photos"] / "13.jpg").read_bytes()
    assert len(photo) > 100_000
    assert "limit" in _assert_error(_upload(small, photo), 413)
    # no content-length: the limit must hold while the body arrives (raw ASGI, to count reads)
    import anyio

    app = small.app
    reads, sent = [], []

    async def receive():
        if not reads:
            reads.append(1)
            head = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
            return {"type": "http.request", "body": head, "more_body": True}
        reads.append(1)
        if len(reads) > 1000:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": b"\xff" * 10_000, "more_body": True}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/locate",
        "raw_path": b"/locate",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"multipart/form-data; boundary=xyz")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    anyio.run(app, scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert start["status"] == 413 and "limit" in json.loads(body)["error"]
    assert len(reads) < 20  # stopped soon after 50 KB, not after the 10 MB on offer
    _still_serving(small)
    _still_serving(lund["client"])


def test_token_guards_everything_but_health_and_pages(lund):
    from placeprint.serve.app import create_app

    c = TestClient(create_app(lund["idx"], token="s3cret"))
    assert c.get("/health").status_code == 200
    assert c.get("/").status_code != 401 and c.get("/static/app.js").status_code != 401
    assert "token" in _assert_error(c.get("/stats"), 401)
    _assert_error(c.get("/stats", headers={"Authorization": "Bearer wrong"}), 401)
    _assert_error(c.get("/places/0/image?token=s3cre"), 401)
    _assert_error(_upload(c, (lund["photos"] / "13.jpg").read_bytes()), 401)
    assert c.get("/stats", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert c.get("/places/0/image?token=s3cret").status_code == 200
    _still_serving(c)


def test_unexpected_errors_are_500_without_details(lund, monkeypatch):
    from placeprint.serve.app import create_app

    app = create_app(lund["idx"])

    def boom(*args):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(app.state.service, "locate", boom)
    c = TestClient(app, raise_server_exceptions=False)
    resp = _upload(c, (lund["photos"] / "13.jpg").read_bytes())
    assert _assert_error(resp, 500) == "internal error" and "secret" not in resp.text
    _still_serving(c)


def test_slow_requests_time_out_and_the_service_keeps_serving(lund, monkeypatch):
    from placeprint.serve.app import create_app

    app = create_app(lund["idx"], request_timeout_s=0.2)
    monkeypatch.setattr(app.state.service, "locate", lambda *a: time.sleep(1.0))
    c = TestClient(app)
    t0 = time.perf_counter()
    assert "0.2 s" in _assert_error(_upload(c, (lund["photos"] / "13.jpg").read_bytes()), 504)
    assert time.perf_counter() - t0 < 0.9
    _still_serving(c)


# ------------------------------------------------------------------ uploads module
def test_decode_applies_exif_orientation_and_accepts_the_listed_types():
    from placeprint.serve.uploads import UploadError, decode_image

    im = Image.new("RGB", (40, 20), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif)
    pixels = decode_image(buf.getvalue())
    assert pixels.shape == (40, 20, 3) and pixels.dtype == np.uint8
    for fmt in ("PNG", "WEBP", "BMP", "TIFF"):
        buf = io.BytesIO()
        Image.new("L", (30, 10), 77).save(buf, fmt)
        out = decode_image(buf.getvalue())
        assert out.shape == (10, 30, 3) and abs(int(out[5, 5, 0]) - 77) <= 2
    buf = io.BytesIO()
    Image.new("RGB", (3000, 2000)).save(buf, "PNG")
    with pytest.raises(UploadError, match="3000 x 2000") as err:
        decode_image(buf.getvalue(), max_pixels=1e6)
    assert err.value.status_code == 413


# ------------------------------------------------------------------ /sequence
def test_sequence_of_photos_ends_at_the_last_photo(lund):
    c = lund["client"]
    files = [
        ("files", (f"{n}.jpg", (lund["photos"] / f"{n}.jpg").read_bytes(), "image/jpeg"))
        for n in SEQUENCE
    ]
    resp = c.post("/sequence", files=files)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["frames"] == 5 and out["ops"] > 0 and out["position"] == out["positions"][0]
    last = read_gps(lund["photos"] / f"{SEQUENCE[-1]}.jpg")
    place = out["place"]
    assert place["id"] == out["position"]
    assert haversine_km(place["lat"], place["lon"], last.lat, last.lon) < 0.1


def test_sequence_of_descriptors_and_bad_descriptors(lund):
    from placeprint.index import OverloadedIndex
    from placeprint.sources import make_describer

    c = lund["client"]
    index = OverloadedIndex.load(lund["idx"])
    describer = make_describer(index.describer)
    X = describer([str(lund["photos"] / f"{n}.jpg") for n in SEQUENCE])
    resp = c.post("/sequence", json={"descriptors": X.tolist()})
    assert resp.status_code == 200, resp.text
    last = read_gps(lund["photos"] / f"{SEQUENCE[-1]}.jpg")
    place = resp.json()["place"]
    assert haversine_km(place["lat"], place["lon"], last.lat, last.lon) < 0.1
    d = X.shape[1]
    assert f"(L, {d})" in _assert_error(
        c.post("/sequence", json={"descriptors": [[0.0] * (d - 1)] * 3}), 400
    )
    bad = X.tolist()
    bad[1][0] = float("nan")
    body = json.dumps({"descriptors": bad})  # Python writes NaN, which JSON readers accept
    assert "NaN" in body
    assert "finite" in _assert_error(
        c.post("/sequence", content=body, headers={"content-type": "application/json"}), 400
    )
    _assert_error(c.post("/sequence", json={"descriptors": [[1.0, 2.0], [1.0]]}), 400)
    _assert_error(c.post("/sequence", json={"frames": []}), 400)
    _assert_error(
        c.post("/sequence", content=b"{not json", headers={"content-type": "application/json"}),
        400,
    )
    _assert_error(c.post("/sequence", content=b"x", headers={"content-type": "text/plain"}), 415)
    _assert_error(c.post("/sequence", files=[("other", ("a.jpg", b"x", "image/jpeg"))]), 400)
    _still_serving(c)


# ------------------------------------------------------------------ pages and assets
def test_outlines_are_geojson_polygons(lund):
    out = lund["client"].get("/api/outlines").json()
    assert out["type"] == "FeatureCollection" and len(out["features"]) > 150
    ring = np.asarray(out["features"][0]["geometry"]["coordinates"][0])
    assert ring.shape[1] == 2 and np.abs(ring[:, 0]).max() <= 180 and np.abs(ring[:, 1]).max() <= 90


def test_leaflet_missing_says_run_make_web(lund, monkeypatch):
    from placeprint.serve import app as app_module

    monkeypatch.setattr(app_module, "leaflet_dir", lambda: None)
    c = TestClient(app_module.create_app(lund["idx"]))
    assert "make web" in _assert_error(c.get("/vendor/leaflet/leaflet.js"), 404)


def test_leaflet_dir_follows_the_environment(tmp_path, monkeypatch):
    from placeprint.serve.app import leaflet_dir

    (tmp_path / "leaflet.js").write_text("/* leaflet */")
    monkeypatch.setenv("PLACEPRINT_LEAFLET", str(tmp_path))
    assert leaflet_dir() == tmp_path.resolve()


def test_geolocator_only_index_serves_locate_but_not_sequences(lund, tmp_path):
    from placeprint.locate import geo_path_for
    from placeprint.serve.app import create_app

    shutil.copy(geo_path_for(lund["idx"]), tmp_path / "only.idx.geo")  # an index-less legacy set
    c = TestClient(create_app(tmp_path / "only.idx"))
    stats = c.get("/stats").json()
    assert stats["places"] == 26 and stats["bytes_per_place"] is None
    assert stats["index_bytes"] is None and stats["describer"]["name"] == "tiny"
    out = _upload(c, (lund["photos"] / "13.jpg").read_bytes()).json()
    assert all(m["image_url"] is None for m in out["matches"])  # no store: no images
    assert "route index" in _assert_error(c.post("/sequence", json={"descriptors": [[0.0]]}), 400)
    assert "place store" in _assert_error(c.get("/places/0"), 404)


# ------------------------------------------------ hostile requests (issue 11)
def test_deeply_nested_json_is_a_400_and_the_next_request_works(lund):
    c = lund["client"]
    body = '{"descriptors": ' + "[" * 3000 + "]" * 3000 + "}"
    resp = c.post("/sequence", content=body, headers={"content-type": "application/json"})
    assert "nested too deeply" in _assert_error(resp, 400)
    body = '{"descriptors": ' + "[" * 200 + "1" + "]" * 200 + "}"  # parses, but not (L, d)
    resp = c.post("/sequence", content=body, headers={"content-type": "application/json"})
    _assert_error(resp, 400)
    _still_serving(c)


def test_place_ids_are_plain_decimal_numbers(lund):
    c = lund["client"]
    assert c.get("/places/1").status_code == 200
    for bad in ("1.0", "%20%31", "+1", "1e0", "0x1", "-1", "1%20"):
        assert c.get(f"/places/{bad}").status_code in (404, 422), bad
    assert c.get("/places/1.0/image").status_code in (404, 422)


def test_no_server_path_leaves_the_service(lund):
    c = lund["client"]
    place = c.get("/places/0").json()
    assert not place["path"].startswith("/")  # relative to the index's folder
    out = _upload(c, (lund["photos"] / "13.jpg").read_bytes()).json()
    assert all(not (m["path"] or "").startswith("/") for m in out["matches"])
    from placeprint.serve.app import shown_path

    assert shown_path("/srv/secret/photos/a.jpg") == "a.jpg"
    assert shown_path("db/a.jpg") == "db/a.jpg" and shown_path(None) is None


def test_two_photos_in_one_locate_request_are_refused(lund):
    c = lund["client"]
    photo = (lund["photos"] / "13.jpg").read_bytes()
    files = [("file", ("a.jpg", photo, "image/jpeg")), ("file", ("b.jpg", photo, "image/jpeg"))]
    assert "exactly one photo" in _assert_error(c.post("/locate", files=files), 400)


def test_token_mode_guards_the_api_description_and_keeps_tokens_out_of_logs(lund):
    import logging

    from placeprint.serve.app import RedactToken, create_app

    c = TestClient(create_app(lund["idx"], token="s3cret"))
    _assert_error(c.get("/openapi.json"), 401)
    assert c.get("/openapi.json?token=s3cret").status_code == 200
    assert c.get("/docs").status_code == 401
    # uvicorn's access-log record: (client, method, path with query, http version, status)
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/stats?a=1&token=s3cret&b=2", "1.1", 200),
        None,
    )
    assert RedactToken().filter(record)
    assert "s3cret" not in record.getMessage() and "token=***" in record.getMessage()
    assert any(isinstance(f, RedactToken) for f in logging.getLogger("uvicorn.access").filters)


def test_the_page_icon_is_served(lund):
    resp = lund["client"].get("/favicon.ico")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("image/svg+xml")
    assert resp.content.startswith(b"<svg")


def test_map_places_for_the_offline_base_map(lund):
    c = lund["client"]
    resp = c.get("/api/places", params={"bbox": "13.0,55.6,13.4,55.8", "limit": 50})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/geo")
    features = resp.json()["features"]
    names = {f["properties"]["name"] for f in features}
    assert "Lund" in names and len(features) <= 50
    for f in features:
        lon, lat = f["geometry"]["coordinates"]
        assert 13.0 <= lon <= 13.4 and 55.6 <= lat <= 55.8
    assert _assert_error(c.get("/api/places", params={"bbox": "1,2,3"}), 422)
    assert _assert_error(c.get("/api/places", params={"bbox": "1.,2,3,4"}), 422)
    empty = c.get("/api/places", params={"bbox": "5,5,1,1"})  # an empty box: no place
    assert empty.status_code == 200 and empty.json()["features"] == []

"""The HTTP API and web page of ``placeprint serve`` (FastAPI).

:func:`create_app` loads an index once (the compact route index, its geolocator and its
place store, whichever exist) and answers ``/locate`` (one photo), ``/sequence`` (an
ordered batch of frames or descriptors), ``/places/{id}``, ``/stats`` and ``/health``,
and serves the pages under ``static/`` and Leaflet (installed by ``make web``).

Safety: request bodies are limited while they arrive, uploads are checked by content and
pixel count before decoding (:mod:`placeprint.serve.uploads`), heavy work runs in worker
threads under a deadline, errors are ``{"error": "<one sentence>"}`` JSON (never a
traceback), files are only ever served from the index's folder (place images through
:meth:`PlaceStore.image_file`) or from the static and Leaflet folders, and an optional
token guards everything but ``/health``, the pages and their assets.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Annotated

import anyio
import anyio.to_thread
import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from placeprint.errors import PlaceprintError
from placeprint.serve.budget import AbandonedError, Job, PixelBudget
from placeprint.serve.contract import (
    error_responses,
    geojson_responses,
    locate_body,
    sequence_body,
)
from placeprint.serve.uploads import UploadError, decode_image, image_pixels, read_limited

log = logging.getLogger("placeprint.serve")

STATIC_DIR = Path(__file__).resolve().parent / "static"
MIB = 1 << 20
#: frames described together in /sequence (bounds the memory of decoded images and how
#: long an abandoned request runs on: its cancellation is checked between batches)
_BATCH = 4
#: paths anyone may read when a token is set (liveness, the pages and their assets); the
#: API description (/docs, /openapi.json) needs the token like the API itself
_OPEN_PATHS = {"/health", "/", "/favicon.ico"}
_OPEN_PREFIXES = ("/static/", "/vendor/")
PlaceId = Annotated[
    str,
    PathParam(
        pattern=r"^[0-9]{1,18}$",
        description="Place id (route position): decimal digits only.",
        examples=["0"],
    ),
]
_TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&\s]*")


class RedactToken(logging.Filter):
    """Hide ``?token=...`` in access-log lines (uvicorn logs the full path with its query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_IN_QUERY.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args
            )
        if isinstance(record.msg, str) and "token=" in record.msg:
            record.msg = _TOKEN_IN_QUERY.sub(r"\1***", record.msg)
        return True


def install_log_redaction() -> None:
    """Put :class:`RedactToken` on uvicorn's access and error loggers (once)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactToken) for f in logger.filters):
            logger.addFilter(RedactToken())


def shown_path(path: str | None) -> str | None:
    """A place's image path as the API shows it: relative to the index's folder, or only
    the file name when it lies outside (a client never learns the server's folders)."""
    if not path:
        return path
    p = Path(path)
    return p.name if p.is_absolute() else path


_FAVICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    b'<circle cx="8" cy="6" r="4.5" fill="#1565c0"/><path d="M8 16 3.5 8h9z" fill="#1565c0"/>'
    b'<circle cx="8" cy="6" r="1.8" fill="#fff"/></svg>'
)


def repo_root() -> Path:
    """The checkout holding ``src/placeprint`` (for an editable install)."""
    import placeprint

    return Path(placeprint.__file__).resolve().parents[2]


def leaflet_dir() -> Path | None:
    """Folder holding ``leaflet.js``: ``$PLACEPRINT_LEAFLET``, else ``web/node_modules``."""
    candidates = []
    env = os.environ.get("PLACEPRINT_LEAFLET")
    if env:
        candidates.append(Path(env))
    candidates.append(repo_root() / "web" / "node_modules" / "leaflet" / "dist")
    for folder in candidates:
        if (folder / "leaflet.js").is_file():
            return folder.resolve()
    return None


def swagger_dir() -> Path | None:
    """Folder holding Swagger UI (``swagger-ui-bundle.js``) from npm, for ``/docs`` offline."""
    candidates = []
    env = os.environ.get("PLACEPRINT_SWAGGER")
    if env:
        candidates.append(Path(env))
    candidates.append(repo_root() / "web" / "node_modules" / "swagger-ui-dist")
    for folder in candidates:
        if (folder / "swagger-ui-bundle.js").is_file():
            return folder.resolve()
    return None


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (``127.0.0.1``, ``::1``, ``localhost``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _validation_sentence(errors: list) -> str:
    """One readable sentence from pydantic's list of request validation errors."""
    if not errors:
        return "the request is not valid"
    e = errors[0]
    loc = [str(x) for x in e.get("loc", ())]
    kind = {"path": "path parameter", "query": "query parameter", "body": "field"}.get(
        loc[0] if loc else "", "value"
    )
    name = ".".join(loc[1:]) or "body"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{kind} {name!r}: {e.get('msg', 'not valid')}{more}"


class _Service:
    """What one app loaded: route index, geolocator, place store, describers, limits."""

    def __init__(self, index_path: Path, limits: dict) -> None:
        from placeprint.locate import PhotoLocator, geo_path_for
        from placeprint.serve.store import PlaceStore, store_path_for

        self.index_path = index_path
        self.folder = index_path.resolve().parent
        self.limits = limits
        self.pixels = PixelBudget(limits["decode_budget_pixels"])
        geo_file = geo_path_for(index_path)
        if not index_path.is_file() and not geo_file.is_file():
            raise PlaceprintError(
                f"no index at {index_path} (nor {geo_file.name}): build one with "
                f"`placeprint index build DIR_OR_MANIFEST -o {index_path}`"
            )
        self.index = self.matcher = None
        self.index_bytes = None
        self.route_describer = None
        self.route_describer_error = None
        if index_path.is_file():
            from placeprint.index import OverloadedIndex
            from placeprint.sequence.matcher import SequenceMatcher

            self.index = OverloadedIndex.load(index_path)
            self.index_bytes = index_path.stat().st_size
            self.matcher = SequenceMatcher(self.index)
        self.locator = (
            PhotoLocator(index_path, verify=limits.get("verify", True))
            if geo_file.is_file()
            else None
        )
        self.route_rows = None
        self.geo_paths: list[str] = []
        if self.locator is not None:
            meta = self.locator.geo.user_meta_
            self.route_rows = meta.get("route_rows")
            self.geo_paths = list(meta.get("paths", []))
        self.store = None
        store_file = store_path_for(index_path)
        if store_file.is_file():
            self.store = PlaceStore.open(store_file)
        if self.index is not None:  # never serve a mixed set of files
            from placeprint.indexfiles import check_generation

            if self.store is not None:
                check_generation(store_file, self.store.generation, self.index.generation)
            if self.locator is not None:
                found = self.locator.geo.user_meta_.get("generation")
                check_generation(self.locator.path, found, self.index.generation)
        if self.index is not None:
            self._load_route_describer()

    def _load_route_describer(self) -> None:
        from placeprint.sources import make_describer, state_path_for

        config = self.index.describer or None
        if self.locator is not None and config == self.locator.geo.user_meta_.get("describer"):
            self.route_describer = self.locator.describer  # one model in memory, not two
            return
        try:
            self.route_describer = make_describer(config, state_path_for(self.index_path))
        except PlaceprintError as err:
            self.route_describer_error = str(err)

    def warm_up(self) -> None:
        """Load lazily built parts (place names, compiled kernels) before the first request."""
        from placeprint.serve.render import heatmap_overlay

        grey = np.full((64, 64, 3), 128, np.uint8)
        try:
            if self.locator is not None:
                heatmap_overlay(self.locator.predict(self.locator.describer([grey]))[0])
            if self.matcher is not None and self.index.ntotal >= 2:
                X = np.zeros((2, self.index.codec.input_dim), np.float32)
                self.matcher.match(X, k=1)
        except Exception:  # noqa: BLE001 - warming is best effort; requests report errors
            log.warning("warm-up failed", exc_info=True)

    # ------------------------------------------------------------------ stats
    def stats(self) -> dict:
        from placeprint import __version__

        geo = self.locator.geo if self.locator is not None else None
        if self.index is not None:
            places = int(self.index.ntotal)
        elif self.store is not None:
            places = len(self.store)
        else:
            places = len(geo.lat_)
        describer = (self.index.describer if self.index is not None else None) or (
            geo.user_meta_.get("describer") if geo is not None else None
        )
        cells = getattr(geo, "cells", None) if geo is not None else None
        return {
            "places": places,
            "bytes_per_place": (
                float(self.index.bytes_per_place()) if self.index is not None else None
            ),
            "index_bytes": self.index_bytes,
            "describer": describer or {},
            "geolocator": (
                None
                if geo is None
                else {
                    "photos": int(len(geo.lat_)),
                    "cells": int(cells.n_cells) if cells is not None else None,
                }
            ),
            "version": __version__,
        }

    # ----------------------------------------------------------------- locate
    def decode(self, data: bytes, name: str, job: Job) -> np.ndarray:
        """Decode one upload within the server's pixel budget (waits for room, or gives up)."""
        n = image_pixels(data, self.limits["max_pixels"], name)
        with self.pixels.hold(n, job):
            return decode_image(data, self.limits["max_pixels"], name)

    def locate(self, data: bytes, top: int, job: Job) -> dict:
        """The full /locate answer for one uploaded image (runs in a worker thread)."""
        from placeprint.serve.render import heatmap_overlay

        t0 = time.perf_counter()
        pixels = self.decode(data, "the upload", job)
        t1 = time.perf_counter()
        job.check()
        X = self.locator.describer([pixels])
        t2 = time.perf_counter()
        job.check()
        pred = self.locator.predict(X, images=[pixels])[0]
        t3 = time.perf_counter()
        job.check()
        heat = heatmap_overlay(pred)
        t4 = time.perf_counter()
        return {
            "modes": [m.to_dict() for m in pred.modes[:top]],
            "confidence": round(float(pred.best.probability), 6) if pred.modes else None,
            # whether database photos, each held out in turn, recalibrated the
            # probabilities (fewer than 10 photos cannot), and how many
            "calibrated": self.locator.geo.calibrated,
            "calibration_photos": self.locator.geo.calibration_count,
            # the held-out photos this answer's levels come from: verified ones, ones that
            # failed verification as this answer did, or all of them
            "calibrated_on": self.locator.geo.calibration_of(pred),
            # geometric verification against the matched database photos (None: turned off)
            "verification": pred.verification.to_dict() if pred.verification else None,
            "matches": self.matches(pred, top),
            "heatmap": heat,
            "timing_ms": {
                "decode": round(1e3 * (t1 - t0), 2),
                "describe": round(1e3 * (t2 - t1), 2),
                "locate": round(1e3 * (t3 - t2), 2),
                "heatmap": round(1e3 * (t4 - t3), 2),
            },
        }

    def matches(self, pred, top: int) -> list[dict]:
        """The best-weighted database photos that voted, as places with image URLs."""
        geo = self.locator.geo
        rows = np.asarray(pred.neighbours, dtype=np.int64)
        weights = np.asarray(pred.neighbour_weights, dtype=np.float64)
        best: dict[int, float] = {}
        for r, w in zip(rows.tolist(), weights.tolist(), strict=True):
            best[r] = best.get(r, 0.0) + w
        order = sorted(best, key=lambda r: -best[r])[:top]
        ids = [int(self.route_rows[r]) if self.route_rows is not None else int(r) for r in order]
        places = {}
        if self.store is not None:
            places = {p["id"]: p for p in self.store.many(ids)}
        out = []
        for r, pid in zip(order, ids, strict=True):
            place = places.get(pid)
            path = shown_path(
                place["path"] if place else (self.geo_paths[r] if r < len(self.geo_paths) else None)
            )
            has_image = self.store is not None and self.store.image_file(pid) is not None
            out.append(
                {
                    "id": pid,
                    "lat": float(geo.lat_[r]),
                    "lon": float(geo.lon_[r]),
                    "weight": round(float(best[r]), 6),
                    "path": path,
                    "image_url": f"/places/{pid}/image" if has_image else None,
                }
            )
        return out

    # --------------------------------------------------------------- sequence
    def need_route_index(self) -> None:
        if self.index is None:
            raise PlaceprintError(
                "this index has no compact route index, so it cannot match sequences "
                "(build it from more images with `placeprint index build`)"
            )

    def describe_frames(self, frames: list[tuple[str, bytes]], job: Job) -> np.ndarray:
        """Decode and describe uploaded frames in small batches: ``(L, d)`` float32.

        The frames' pixels (from their headers) must fit the request's pixel budget before
        any is decoded; the job's cancellation is checked before every frame and batch.
        """
        if self.route_describer is None:
            raise PlaceprintError(
                self.route_describer_error or "this index cannot describe images: send descriptors"
            )
        total = sum(image_pixels(data, self.limits["max_pixels"], name) for name, data in frames)
        limit = self.limits["max_request_pixels"]
        if total > limit:
            raise UploadError(
                413,
                f"the frames hold {total / 1e6:.0f} megapixels; the limit per request is "
                f"{limit / 1e6:.0f} megapixels",
            )
        out = []
        for start in range(0, len(frames), _BATCH):
            batch = []
            for name, data in frames[start : start + _BATCH]:
                job.check()
                batch.append(self.decode(data, name, job))
            job.check()
            out.append(np.asarray(self.route_describer(batch), dtype=np.float32))
        return np.concatenate(out)

    def check_descriptors(self, value) -> np.ndarray:
        """JSON ``descriptors`` as ``(L, d)`` float32 matching the index, or a clear error."""
        if not isinstance(value, list) or not value:
            raise PlaceprintError("descriptors must be a non-empty list of rows (L, d)")
        try:
            X = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError, RecursionError):
            raise PlaceprintError("descriptors must be rows of numbers of equal length") from None
        d = int(self.index.codec.input_dim)
        if X.ndim != 2 or X.shape[1] != d:
            raise PlaceprintError(
                f"descriptors must be (L, {d}) for this index, got shape {tuple(X.shape)}"
            )
        if len(X) > self.limits["max_frames"]:
            raise PlaceprintError(
                f"{len(X)} frames are too many; the limit is {self.limits['max_frames']}"
            )
        if not np.isfinite(X).all() or np.abs(X).max() > 3e38:
            raise PlaceprintError("descriptors must be finite float32 numbers")
        return X.astype(np.float32)

    def sequence(self, X: np.ndarray, k: int, job: Job) -> dict:
        job.check()
        t0 = time.perf_counter()
        result = self.matcher.match(X, k=k)
        t1 = time.perf_counter()
        data = result.to_dict()
        best = int(result.best)
        place = self.store.get(best) if self.store is not None and best >= 0 else None
        if place is not None:
            place["path"] = shown_path(place["path"])
        return {
            "position": best,
            "confidence": data["confidence"],
            "ops": data["ops"],
            "positions": data["positions"],
            "scores": data["scores"],
            "place": place,
            "frames": int(len(X)),
            "timing_ms": {"match": round(1e3 * (t1 - t0), 2)},
        }


def create_app(
    index_path: str | Path,
    token: str | None = None,
    max_upload_bytes: int = 20 * MIB,
    max_pixels: float = 50e6,
    request_timeout_s: float = 30.0,
    max_frames: int = 500,
    max_sequence_bytes: int | None = None,
    workers: int | None = None,
    max_request_pixels: float = 100e6,
    decode_budget_pixels: float = 100e6,
    verify: bool = True,
):
    """The FastAPI app serving the index at ``index_path`` (loaded once, read-only).

    Limits: ``max_upload_bytes`` per image, ``max_pixels`` per image and
    ``max_request_pixels`` per request (both checked from the headers, before decoding),
    ``decode_budget_pixels`` decoded at once server-wide (requests queue for room),
    ``request_timeout_s`` (seconds) per request's heavy work, after which the work stops at
    its next frame or stage, ``max_frames`` and ``max_sequence_bytes`` (default 16 x the
    upload limit) per ``/sequence``; ``workers`` threads do heavy work at once (default: CPU
    count, at most 4). With ``token``, every
    route but ``/health``, the pages, their assets and the API docs needs it. ``verify``:
    geometric verification of ``/locate`` answers against the matched database photos.
    """
    from placeprint import __version__

    if token is not None and not token.strip():
        raise PlaceprintError("the token must not be empty")
    for name, value in (
        ("max_upload_bytes", max_upload_bytes),
        ("max_pixels", max_pixels),
        ("request_timeout_s", request_timeout_s),
        ("max_frames", max_frames),
        ("max_request_pixels", max_request_pixels),
        ("decode_budget_pixels", decode_budget_pixels),
    ):
        if not value > 0:
            raise PlaceprintError(f"{name} must be > 0, got {value}")
    max_sequence_bytes = int(max_sequence_bytes or 16 * max_upload_bytes)
    limits = {
        "max_upload_bytes": int(max_upload_bytes),
        "max_pixels": float(max_pixels),
        "request_timeout_s": float(request_timeout_s),
        "max_frames": int(max_frames),
        "max_sequence_bytes": max_sequence_bytes,
        "max_request_pixels": float(max_request_pixels),
        "decode_budget_pixels": float(decode_budget_pixels),
        "verify": bool(verify),
    }
    svc = _Service(Path(index_path), limits)
    install_log_redaction()
    n_workers = int(workers or min(4, os.cpu_count() or 1))
    state: dict = {}

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        await anyio.to_thread.run_sync(svc.warm_up)  # first answers as fast as the rest
        try:
            yield
        finally:
            if svc.store is not None:
                svc.store.close()

    app = FastAPI(
        lifespan=lifespan,
        title="placeprint",
        version=__version__,
        description="Where was this photo taken? Visual place recognition and geolocation.",
        docs_url=None,  # served below from the npm copy of Swagger UI, not from a CDN
        redoc_url=None,
    )
    app.state.service = svc

    # ------------------------------------------------------------ middleware
    body_limits = {
        "/locate": limits["max_upload_bytes"] + 64 * 1024,
        "/sequence": max_sequence_bytes,
    }
    secret = token.encode() if token else None

    def _json_error(status: int, message: str, headers: dict | None = None):
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    def _authorised(request: Request) -> bool:
        given = ""
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        elif "token" in request.query_params:
            given = request.query_params["token"]
        return hmac.compare_digest(given.encode(), secret)

    def _too_large(limit: int) -> str:
        return f"the request body is larger than the limit of {limit / MIB:.1f} MiB"

    class _Guard:
        """Token check, and the body size limit both up front and while the body arrives.

        Plain ASGI (not ``BaseHTTPMiddleware``) so that the 413 raised from ``receive``
        reaches the exception handlers as itself.
        """

        def __init__(self, inner) -> None:
            self.inner = inner

        async def __call__(self, scope, receive, send) -> None:
            if scope["type"] != "http":
                await self.inner(scope, receive, send)
                return
            request = Request(scope)
            path, method = scope.get("path", ""), scope.get("method", "GET")
            is_open = (
                path in _OPEN_PATHS
                or path.startswith(_OPEN_PREFIXES)
                or (path == "/sequence" and method in ("GET", "HEAD"))
            )
            if secret is not None and not is_open and not _authorised(request):
                missing = (
                    "authorization" not in request.headers and "token" not in request.query_params
                )
                msg = (
                    "this service needs a token: send the header `Authorization: Bearer <token>`"
                    if missing
                    else "the token is wrong"
                )
                response = _json_error(401, msg, {"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
            if method not in ("POST", "PUT", "PATCH"):
                await self.inner(scope, receive, send)
                return
            limit = body_limits.get(path, 64 * 1024)
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) > limit:
                await _json_error(413, _too_large(limit))(scope, receive, send)
                return
            seen = 0

            async def limited():
                nonlocal seen
                message = await receive()
                if message["type"] == "http.request":
                    seen += len(message.get("body", b""))
                    if seen > limit:
                        raise HTTPException(413, _too_large(limit))
                return message

            await self.inner(scope, limited, send)

    # --------------------------------------------------------------- errors
    @app.exception_handler(PlaceprintError)
    async def _placeprint_error(request: Request, exc: PlaceprintError):
        return _json_error(400, str(exc))

    @app.exception_handler(UploadError)
    async def _upload_error(request: Request, exc: UploadError):
        return _json_error(exc.status_code, exc.message)

    def _allowed_methods(path: str) -> str:
        """Every method some route of ``path`` answers (Starlette lists only the first)."""
        methods: set[str] = set()
        for route in app.routes:
            regex = getattr(route, "path_regex", None)
            if regex is not None and regex.match(path) and getattr(route, "methods", None):
                methods |= set(route.methods)
        return ", ".join(sorted(methods))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request.url.path)
        return _json_error(exc.status_code, detail, headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        return _json_error(422, _validation_sentence(list(exc.errors())))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return _json_error(500, "internal error")

    async def work(fn, *args, job: Job | None = None):
        """Run ``fn(*args)`` (``fn(*args, job)`` with a job) in a worker thread under the
        request deadline; past it the client gets a 504 and the job is cancelled, so the
        worker stops at its next check instead of running on."""
        if "limiter" not in state:
            state["limiter"] = anyio.CapacityLimiter(n_workers)
        timeout = limits["request_timeout_s"]
        call = (lambda: fn(*args, job)) if job is not None else (lambda: fn(*args))
        try:
            with anyio.fail_after(job.left() if job is not None else timeout):
                return await anyio.to_thread.run_sync(
                    call, limiter=state["limiter"], abandon_on_cancel=True
                )
        except (TimeoutError, AbandonedError):
            if job is not None:
                job.cancel()
            raise HTTPException(
                504, f"the request took longer than the limit of {timeout:g} s"
            ) from None
        except (PlaceprintError, UploadError, HTTPException):
            raise
        except MemoryError:
            raise HTTPException(503, "the server ran out of memory for this request") from None
        except Exception:
            log.exception("internal error in %s", getattr(fn, "__name__", fn))
            raise HTTPException(500, "internal error") from None

    # ---------------------------------------------------------------- routes
    @app.get("/health", summary="Liveness check", responses=error_responses(500))
    async def health() -> dict:
        return {"status": "ok"}

    @app.get(
        "/stats",
        summary="Index size, places, describer, version",
        responses=error_responses(401, 500),
    )
    async def stats() -> dict:
        return svc.stats()

    def _need_store():
        if svc.store is None:
            raise HTTPException(
                404, "this index has no place store (INDEX.places.sqlite): rebuild the index"
            )
        return svc.store

    @app.get(
        "/places/{place_id}",
        summary="One place: image path, position, time, sequence",
        responses=error_responses(401, 404, 422, 500),
    )
    async def place(place_id: PlaceId) -> dict:
        found = _need_store().get(int(place_id))
        if found is None:
            raise HTTPException(404, f"no place {place_id} (this index has {len(svc.store)})")
        found["path"] = shown_path(found["path"])
        return found

    @app.get(
        "/places/{place_id}/image",
        summary="The image of one place",
        response_class=FileResponse,
        responses={
            200: {
                "description": "The image file",
                "content": {
                    t: {"schema": {"type": "string", "format": "binary"}}
                    for t in ("image/jpeg", "image/png", "image/webp", "image/bmp", "image/tiff")
                },
            },
            **error_responses(401, 404, 422, 500),
        },
    )
    async def place_image(place_id: PlaceId):
        store = _need_store()
        file = store.image_file(int(place_id))
        if file is None or not file.resolve().is_relative_to(svc.folder):
            raise HTTPException(404, f"place {place_id} has no image in the index's folder")
        return FileResponse(file)

    @app.post(
        "/locate",
        summary="Where was this photo taken?",
        openapi_extra={"requestBody": locate_body()},
        responses=error_responses(400, 401, 413, 415, 422, 500, 503, 504),
    )
    async def locate(
        request: Request,
        top: Annotated[int, Query(ge=1, le=50, description="Guesses and matches to return.")] = 5,
    ) -> dict:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "multipart/form-data":
            raise HTTPException(415, "send multipart/form-data with one photo in `file`")
        t0 = time.perf_counter()
        form = await request.form(max_files=2, max_fields=16)
        try:
            unknown = sorted(set(form.keys()) - {"file"})
            if unknown:
                raise PlaceprintError(
                    f"unknown form field {unknown[0]!r}: send the photo in `file` "
                    "(and `top` in the query: /locate?top=3)"
                )
            files = form.getlist("file")
            if len(files) != 1 or not hasattr(files[0], "read"):
                raise PlaceprintError("send exactly one photo in the field `file`")
            if svc.locator is None:
                raise PlaceprintError(
                    "this index has no geolocator (INDEX.geo): build it from geotagged photos"
                )
            data = await read_limited(files[0], limits["max_upload_bytes"])
        finally:
            await form.close()
        job = Job(limits["request_timeout_s"])
        out = await work(svc.locate, data, top, job=job)
        out["timing_ms"]["total"] = round(1e3 * (time.perf_counter() - t0), 2)
        return out

    @app.post(
        "/sequence",
        summary="Where along the route was the last frame taken?",
        openapi_extra={
            "requestBody": sequence_body(
                int(svc.index.codec.input_dim) if svc.index is not None else None,
                # a query is at most as long as the route it is matched against
                min(limits["max_frames"], svc.index.ntotal if svc.index is not None else 1),
            )
        },
        responses=error_responses(400, 401, 413, 415, 422, 500, 503, 504),
    )
    async def sequence(
        request: Request,
        k: Annotated[int, Query(ge=1, le=50, description="Distinct answers to return.")] = 5,
    ) -> dict:
        t0 = time.perf_counter()
        job = Job(limits["request_timeout_s"])
        svc.need_route_index()
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":
            try:
                body = json.loads(await request.body())
            except (ValueError, UnicodeDecodeError):
                raise PlaceprintError("the body is not valid JSON") from None
            except RecursionError:
                raise PlaceprintError("the JSON body is nested too deeply") from None
            if not isinstance(body, dict) or set(body) != {"descriptors"}:
                raise PlaceprintError('the JSON body must be {"descriptors": [[...], ...]}')
            X = svc.check_descriptors(body["descriptors"])
            t1 = time.perf_counter()
            decode_ms = 0.0
        elif kind == "multipart/form-data":
            form = await request.form(max_files=limits["max_frames"], max_fields=16)
            try:
                unknown = sorted(set(form.keys()) - {"files"})
                if unknown:
                    raise PlaceprintError(f"unknown form field {unknown[0]!r}: send `files`")
                items = form.getlist("files")
                if not items:
                    raise PlaceprintError(
                        "send the frames as images in the multipart field `files`"
                    )
                if not all(hasattr(f, "read") and hasattr(f, "filename") for f in items):
                    raise PlaceprintError("every `files` entry must be an uploaded image")
                frames = []
                for i, f in enumerate(items, 1):
                    name = f"frame {i} ({f.filename or 'unnamed'})"
                    frames.append((name, await read_limited(f, limits["max_upload_bytes"], name)))
            finally:
                await form.close()
            t1 = time.perf_counter()
            X = await work(svc.describe_frames, frames, job=job)
            decode_ms = round(1e3 * (time.perf_counter() - t1), 2)
        else:
            raise HTTPException(
                415,
                "send multipart/form-data with images in `files`, or application/json with "
                "`descriptors`",
            )
        out = await work(svc.sequence, X, k, job=job)
        out["timing_ms"]["describe"] = decode_ms
        out["timing_ms"]["total"] = round(1e3 * (time.perf_counter() - t0), 2)
        return out

    @app.get(
        "/api/places",
        summary="Named places inside a box (GeoJSON points) for the offline base map",
        response_class=Response,
        responses=geojson_responses(
            "A GeoJSON FeatureCollection of points with a `name`", 400, 401, 422, 500, 504
        ),
    )
    async def map_places(
        bbox: Annotated[
            str,
            Query(
                pattern=r"^-?[0-9]{1,3}(\.[0-9]{1,8})?(,-?[0-9]{1,3}(\.[0-9]{1,8})?){3}$",
                max_length=80,
                description="lon0,lat0,lon1,lat1 (degrees)",
            ),
        ],
        limit: Annotated[int, Query(ge=1, le=500, description="Places at most.")] = 150,
    ):
        from placeprint.geo.names import places_in

        try:
            box = tuple(float(v) for v in bbox.split(","))
        except ValueError:
            raise PlaceprintError("bbox must be four numbers: lon0,lat0,lon1,lat1") from None
        found = await work(places_in, box, limit)
        body = {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [p["lon"], p["lat"]]},
                    "properties": {"name": p["name"], "country_code": p["country_code"]},
                }
                for p in found
            ],
        }
        return Response(json.dumps(body).encode(), media_type="application/geo+json")

    @app.get(
        "/api/outlines",
        summary="Country outlines (GeoJSON) for the offline base map",
        response_class=Response,
        responses=geojson_responses("A GeoJSON FeatureCollection (RFC 7946)", 401, 500, 504),
    )
    async def outlines():
        if "outlines" not in state:
            state["outlines"] = await work(_outlines_json)
        return Response(state["outlines"], media_type="application/geo+json")

    # ------------------------------------------------------------------ pages
    def _page(name: str):
        file = STATIC_DIR / name
        if not file.is_file():
            raise HTTPException(404, f"the web page {name} is not installed")
        return FileResponse(file, media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        return Response(_FAVICON, media_type="image/svg+xml")

    @app.get("/", include_in_schema=False)
    async def index_page():
        return _page("index.html")

    @app.get(
        "/sequence",
        summary="The web page for sequences",
        response_class=Response,
        responses={
            200: {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}},
            **error_responses(404),
        },
    )
    async def sequence_page():
        return _page("sequence.html")

    @app.get("/docs", include_in_schema=False)
    async def api_docs(request: Request):
        from urllib.parse import quote

        from fastapi.openapi.docs import get_swagger_ui_html

        if swagger_dir() is None:
            raise HTTPException(
                404,
                "Swagger UI is not installed: run `make web`; the OpenAPI description is "
                "at /openapi.json",
            )
        given = request.query_params.get("token")
        return get_swagger_ui_html(
            # with a token, the page fetches the description with it (the page itself
            # was only served to a client that gave it)
            openapi_url="/openapi.json" + (f"?token={quote(given)}" if given else ""),
            title="placeprint API",
            swagger_js_url="/vendor/swagger/swagger-ui-bundle.js",
            swagger_css_url="/vendor/swagger/swagger-ui.css",
            swagger_favicon_url="data:,",
            swagger_ui_parameters={"validatorUrl": None},  # no online validator badge
        )

    @app.get("/vendor/swagger/{asset:path}", include_in_schema=False)
    async def swagger_asset(asset: str):
        root = swagger_dir()
        if root is None:
            raise HTTPException(404, "Swagger UI is not installed: run `make web`")
        return FileResponse(_vendor_file(root, asset, "Swagger UI"))

    @app.get("/vendor/leaflet/{asset:path}", include_in_schema=False)
    async def leaflet_asset(asset: str):
        root = state.get("leaflet") or leaflet_dir()
        if root is None:
            raise HTTPException(
                404, "Leaflet is not installed: run `make web` (it installs it from npm)"
            )
        state["leaflet"] = root
        return FileResponse(_vendor_file(root, asset, "Leaflet"))

    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")
    app.add_middleware(_Guard)
    return app


def _vendor_file(root: Path, asset: str, what: str) -> Path:
    """The file ``asset`` inside the front-end package folder ``root`` (else a 404)."""
    try:
        file = (root / asset).resolve()
    except (OSError, RuntimeError, ValueError):
        file = None
    if file is None or not file.is_relative_to(root) or not file.is_file():
        raise HTTPException(404, f"no {what} file {asset!r}")
    return file


def _outlines_json() -> bytes:
    """Country outlines as a GeoJSON FeatureCollection of polygons (bytes, coordinates 3 dp)."""
    from placeprint.geo.maps import country_outlines

    features = [
        {
            "type": "Feature",
            "properties": {},
            "geometry": {
                "type": "Polygon",
                "coordinates": [np.round(np.asarray(ring, float), 3).tolist()],
            },
        }
        for ring in country_outlines()
        if len(ring) >= 4
    ]
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()

"""The OpenAPI description of the service's request bodies and errors, as they are checked.

Clients generated from ``/openapi.json`` and outside fuzzers (schemathesis) read this;
every rule the handlers enforce that a JSON Schema can state is stated here.
"""

from __future__ import annotations

IMAGE_TYPES = "image/jpeg, image/png, image/webp, image/bmp, image/tiff"
ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string", "description": "One sentence."}},
    "required": ["error"],
}
ERROR_TEXT = {
    400: "Bad request: the body or a value is not what this index can use",
    401: "The token is missing or wrong (only when the service runs with a token)",
    404: "No such place, image or part of the index",
    413: "Too large: the body, an image or a request's pixels over the limit",
    415: "Not an accepted content type or image format",
    422: "A parameter is out of range or of the wrong type",
    500: "Internal error (no details are given)",
    503: "The server ran out of memory for this request",
    504: "The request took longer than the limit; its work was stopped",
}


def error_responses(*codes: int) -> dict:
    """OpenAPI ``responses`` for the error statuses ``codes`` (``{"error": sentence}`` JSON)."""
    return {
        code: {
            "description": ERROR_TEXT[code],
            "content": {"application/json": {"schema": ERROR_SCHEMA}},
        }
        for code in codes
    }


def geojson_responses(description: str, *codes: int) -> dict:
    """OpenAPI ``responses`` of a GeoJSON answer and the error statuses ``codes``."""
    return {
        200: {
            "description": description,
            "content": {"application/geo+json": {"schema": {"type": "object"}}},
        },
        **error_responses(*codes),
    }


def _one_field(name: str, schema: dict, encoding: dict | None = None) -> dict:
    """A body that is an object with exactly the field ``name`` (required)."""
    body = {
        "schema": {
            "type": "object",
            "properties": {name: schema},
            "required": [name],
            "additionalProperties": False,
        }
    }
    if encoding is not None:
        body["encoding"] = {name: encoding}
    return body


def locate_body() -> dict:
    """The ``/locate`` request body as it is checked: one photo in ``file``."""
    photo = {
        "type": "string",
        "format": "binary",
        "minLength": 1,
        "description": "One photo (JPEG, PNG, WebP, BMP or TIFF).",
    }
    return {
        "required": True,
        "content": {"multipart/form-data": _one_field("file", photo, {"contentType": IMAGE_TYPES})},
    }


def sequence_body(dims: int | None, max_frames: int) -> dict:
    """The ``/sequence`` request body as it is checked: images, or ``(L, dims)`` numbers."""
    row = {"type": "array", "items": {"type": "number", "minimum": -3e38, "maximum": 3e38}}
    if dims:
        row.update(minItems=dims, maxItems=dims)
    frames = {
        "type": "array",
        "items": {"type": "string", "format": "binary", "minLength": 1},
        "minItems": 1,
        "maxItems": max_frames,
        "description": "The frames (JPEG, PNG, WebP, BMP or TIFF images), oldest first.",
    }
    descriptors = {
        "type": "array",
        "items": row,
        "minItems": 1,
        "maxItems": max_frames,
        "description": f"(L, {dims or 'd'}) finite descriptors, oldest frame first.",
    }
    return {
        "required": True,
        "content": {
            "multipart/form-data": _one_field("files", frames, {"contentType": IMAGE_TYPES}),
            "application/json": _one_field("descriptors", descriptors),
        },
    }

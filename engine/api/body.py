"""Request bodies: read JSON (415/400) and validate one record against its schema (422)."""

from __future__ import annotations

import json
from typing import Any

import marshmallow as ma
from flask import request

from .errors import ApiError
from .resource import Resource


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_json() -> Any:
    """The request body as JSON; 415 for another content type, 400 when malformed."""
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ApiError(415, "send a JSON body with Content-Type: application/json, "
                       + (f"not {mimetype}" if mimetype else "not without a Content-Type"))
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise ApiError(400, "the request needs a JSON body")
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"malformed JSON body: {exc}") from None


def validate(res: Resource, data: Any, *, partial: bool = False) -> dict[str, Any]:
    """Validated input for one record; 422 with per-field messages."""
    fast = res.fast_load(data, partial)
    if fast is not None:
        return fast
    try:
        loaded: dict[str, Any] = res.schema.load(
            data, partial=tuple(res.entity.fields) if partial else False)
    except ma.ValidationError as err:
        messages = err.messages if isinstance(err.messages, dict) else {"_schema": err.messages}
        raise ApiError(422, "invalid input: " + ", ".join(str(k) for k in messages),
                       {"json": messages}) from None
    return loaded

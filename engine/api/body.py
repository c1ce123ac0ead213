"""Request bodies: read JSON (415/400) and validate one record against its schema (422)."""

from __future__ import annotations

import json
from typing import Any

import flask
import marshmallow as ma
from flask import request
from flask.json.provider import DefaultJSONProvider
from flask_smorest import Blueprint
from webargs import missing
from webargs.flaskparser import FlaskParser, is_json_request

from engine import jsonio

from .errors import ApiError
from .resource import Resource


def non_finite_errors(err: jsonio.NonFiniteNumber) -> dict[str, Any]:
    """Per-field messages for a number beyond a double: under the top-level key (a bulk
    body: under the row index, then the key), the rest of the path in the message."""
    path = [str(p) for p in err.path]
    if not path:
        return {"_schema": [str(err)]}
    depth = 2 if err.path and isinstance(err.path[0], int) and len(path) > 1 else 1
    inner = ".".join(path[depth:])
    message = str(err) + (f" (at {inner})" if inner else "")
    out: dict[str, Any] = {path[depth - 1]: [message]}
    return {path[0]: out} if depth == 2 else out


def read_json() -> Any:
    """The request body as JSON; 415 for another content type, 400 when malformed, 422
    naming the field for a number that is not a finite double (``1e400``)."""
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ApiError(415, "send a JSON body with Content-Type: application/json, "
                       + (f"not {mimetype}" if mimetype else "not without a Content-Type"))
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise ApiError(400, "the request needs a JSON body")
    try:
        return jsonio.loads(raw)
    except jsonio.NonFiniteNumber as err:
        errors = non_finite_errors(err)
        raise ApiError(422, "invalid input: " + ", ".join(errors), {"json": errors}) from None
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


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON (``request.get_json``, ``jsonify``, smorest answers) through
    :mod:`engine.jsonio`: finite numbers only, in and out."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("default", self.default)
        kwargs.setdefault("ensure_ascii", self.ensure_ascii)
        kwargs.setdefault("sort_keys", self.sort_keys)
        kwargs.setdefault("separators", (", ", ": "))  # json.dumps' own default
        return jsonio.dumps(obj, **kwargs)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return jsonio.loads(s)


class Parser(FlaskParser):
    """webargs bodies (``@blp.arguments(Schema)``) read with :func:`engine.jsonio.loads`:
    a number beyond a double is a 422 naming the field, other bad JSON webargs' 400."""

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req):
            return missing
        raw = req.get_data(cache=True)
        try:
            return jsonio.loads(raw)
        except jsonio.NonFiniteNumber as err:
            raise ma.ValidationError(non_finite_errors(err)) from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise
        except (ValueError, RecursionError) as exc:
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            raise json.JSONDecodeError(str(exc), text or " ", 0) from None


#: every flask-smorest Blueprint (the engine's and its plugins') parses bodies this way;
#: decorators bind the parser when they run, at app build time, after this import
Blueprint.ARGUMENTS_PARSER = Parser()

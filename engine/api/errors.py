"""One error shape for every answer that is not a success: flask-smorest's.

``{"code": 409, "status": "Conflict", "message": "...", "errors": {...}}``. ``errors`` maps
where the problem is (``json`` for the body, ``query`` for the query string) to per-field
messages; for bulk bodies the keys under ``json`` are row indexes.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from engine import jsonio

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answer: status code, message and optional per-field errors."""

    def __init__(self, status: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


def error_payload(status: int, message: str, errors: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
    """The JSON body of an error answer."""
    body: dict[str, Any] = {"code": status, "status": HTTP_STATUS_CODES.get(status, "Error"),
                            "message": message}
    if errors is not None:
        body["errors"] = errors
    return body


def json_response(body: Any, status: int = 200) -> Response:
    """A JSON answer; keys are str()-ed (row indexes) and non-ASCII text kept as is."""
    text = jsonio.dumps(body)  # never NaN/Infinity
    return Response(text, status=status, mimetype="application/json")


#: where webargs found bad arguments -> the status the rest of the API answers for them
_ARG_STATUS = {"query": 400, "path": 400, "headers": 400, "cookies": 400, "json": 422,
               "form": 422, "files": 422, "json_or_form": 422}


def http_error(err: HTTPException) -> Response:
    """Any HTTP error (routing, ``abort``, webargs' argument errors) in the common shape,
    with a ``message`` and the headers it carries (``Allow`` on 405, ``Retry-After``...).

    Arguments webargs refused answer like the generated views: 400 for the query string
    and the path, 422 for a body, each naming the fields.
    """
    data: dict[str, Any] = getattr(err, "data", None) or {}
    status = err.code or 500
    errors = data.get("errors") or data.get("messages")
    message = data.get("message")
    if message is None and isinstance(errors, dict) and status == 422:
        where = [loc for loc in errors if isinstance(errors[loc], dict)]
        status = max((_ARG_STATUS.get(loc, 422) for loc in where), default=422)
        named = [f"{loc}.{name}" if loc not in ("query", "json") else str(name)
                 for loc in where for name in errors[loc]]
        message = ("bad query parameter: " if status == 400 else "invalid input: ") + \
            ", ".join(named)
    if message is None:
        message = err.description if status != 500 else "internal server error"
    resp = json_response(error_payload(status, str(message), errors), status)
    for key, value in err.get_headers():
        if key.lower() != "content-type":
            resp.headers[key] = value
    for key, value in (data.get("headers") or {}).items():
        resp.headers[key] = value
    return resp


def register_error_handlers(app: Flask) -> None:
    """Answer :class:`ApiError`, HTTP errors and database failures in the common shape."""

    @app.errorhandler(ApiError)
    def _api_error(err: ApiError) -> Response:
        return json_response(error_payload(err.status, err.message, err.errors), err.status)

    app.register_error_handler(HTTPException, http_error)

    @app.errorhandler(sa.exc.IntegrityError)
    def _integrity(err: sa.exc.IntegrityError) -> Response:
        log.warning("integrity error not explained by a view: %s", err.orig)
        return json_response(error_payload(409, "the change conflicts with other records"),
                             409)

    @app.errorhandler(sa.exc.DataError)
    def _data(err: sa.exc.DataError) -> Response:
        log.warning("database refused a value: %s", str(err.orig).splitlines()[0])
        return json_response(error_payload(
            422, "the database refused a value: " + str(err.orig).splitlines()[0]), 422)

    @app.errorhandler(sa.exc.OperationalError)
    def _operational(err: sa.exc.OperationalError) -> Response:
        status, message = classify_operational(err)
        first = str(err.orig).splitlines()[0] if str(err.orig) else type(err.orig).__name__
        if status == 503:
            log.error("database unavailable: %s", first)
        else:
            log.warning("database refused a statement: %s", first)
        return json_response(error_payload(status, message), status)


#: SQLite errors that say the statement or its values are too much, not that the database is
#: down (sqlite3 raises them all as OperationalError)
_SQLITE_LIMITS = ("integer overflow", "too many sql variables", "too many terms",
                  "expression tree is too large", "string or blob too big",
                  "parser stack overflow", "too many columns", "query aborted")


def classify_operational(err: sa.exc.OperationalError) -> tuple[int, str]:
    """(status, message) for an ``OperationalError``: 503 only for a real outage (no
    connection, the file cannot be opened or written, the database is busy or shutting
    down); a statement the database cannot compute (an aggregate that overflows) is a 422
    that says so; anything else a 500."""
    text = str(err.orig).lower()
    if any(limit in text for limit in _SQLITE_LIMITS):
        reason = str(err.orig).splitlines()[0]
        return 422, (f"the database could not compute the result ({reason}); narrow the "
                     "request or use a type with a larger range")
    if err.connection_invalidated or _outage(err, text):
        return 503, "the database is unavailable; try again"
    return 500, "the database could not run the request"


def _outage(err: sa.exc.OperationalError, text: str) -> bool:
    orig = err.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str):  # PostgreSQL: connection (08), resources (53),
        return sqlstate[:2] in ("08", "53", "57", "58")  # operator intervention, system
    if sqlstate is None and type(orig).__module__.startswith("psycopg"):
        return True  # a psycopg OperationalError without a code: the connection failed
    return any(word in text for word in (
        "unable to open", "disk i/o", "database is locked", "readonly database",
        "no such table", "disk is full", "database or disk is full", "not a database",
        "malformed", "connection"))

"""One error shape for every answer that is not a success: flask-smorest's.

``{"code": 409, "status": "Conflict", "message": "...", "errors": {...}}``. ``errors`` maps
where the problem is (``json`` for the body, ``query`` for the query string) to per-field
messages; for bulk bodies the keys under ``json`` are row indexes.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response
from werkzeug.http import HTTP_STATUS_CODES

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
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Response(text, status=status, mimetype="application/json")


def register_error_handlers(app: Flask) -> None:
    """Answer :class:`ApiError` and database failures in the common shape."""

    @app.errorhandler(ApiError)
    def _api_error(err: ApiError) -> Response:
        return json_response(error_payload(err.status, err.message, err.errors), err.status)

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
    def _unavailable(err: sa.exc.OperationalError) -> Response:
        log.error("database unavailable: %s", str(err.orig).splitlines()[0])
        return json_response(error_payload(503, "the database is unavailable; try again"),
                             503)

"""Error replies in flask-smorest's shape ``{code, status, message[, errors]}``."""

from __future__ import annotations

from typing import Any, NoReturn

from flask_smorest import abort


def fail(status: int, message: str, *, field: str | None = None,
         headers: dict[str, str] | None = None, **kw: Any) -> NoReturn:
    """Abort the request; ``field`` adds ``errors: {json: {field: [message]}}``."""
    if field is not None:
        kw["errors"] = {"json": {field: [message]}}
    if headers:
        kw["headers"] = headers
    abort(status, message=message, **kw)
    raise AssertionError("unreachable")  # pragma: no cover - abort always raises

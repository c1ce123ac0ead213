"""Request ids: read ``X-Request-ID`` (when well-formed) or make one, and echo it back."""

from __future__ import annotations

import random
import re

from flask import Flask, Response, g, has_request_context, request

from .writer import REQUEST_ID_KEY

HEADER = "X-Request-ID"
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def current_request_id() -> str | None:
    """The id of the request being served, or ``None`` outside a request."""
    if not has_request_context():
        return None
    return getattr(g, REQUEST_ID_KEY, None)


def _assign() -> None:
    incoming = request.environ.get("HTTP_X_REQUEST_ID", "")
    # 32 random hex digits, as uuid4().hex gave: a correlation id, not a secret, so from
    # ``random`` (reseeded in each forked worker) instead of os.urandom, whose system call
    # let go of the GIL and had to queue for it again under load
    setattr(g, REQUEST_ID_KEY, incoming if _VALID.match(incoming)
            else f"{random.getrandbits(128):032x}")


def _echo(response: Response) -> Response:
    rid = getattr(g, REQUEST_ID_KEY, None)
    if rid:
        response.headers[HEADER] = rid
    return response


def install_request_id(app: Flask) -> None:
    """Give every request an id (``g``), echoed in the ``X-Request-ID`` response header.

    Install it before any other ``before_request`` hook so even early refusals carry it.
    """
    if app.extensions.get("campo_request_id"):
        return
    app.extensions["campo_request_id"] = True
    app.before_request_funcs.setdefault(None, []).insert(0, _assign)
    app.after_request(_echo)

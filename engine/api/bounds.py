"""Integers from the outside, bounded at the edge to what their column holds.

Every integer a request carries — record ids in URLs (items, actions, transitions), audit
row and user ids, ``offset``, ``limit``, ``?version=``, ``page`` — goes through
:func:`bounded` (or the :class:`Bounded` marshmallow validator and the ``<id:...>`` URL
converter, which call it). A value outside the range is a 400 naming the parameter, never an
``OverflowError`` from the driver (SQLite binds at most 64 bits) or a database error
(``version`` is a 32-bit column on both databases).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from werkzeug.exceptions import BadRequest
from werkzeug.routing import BaseConverter

from .errors import ApiError

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
#: an INTEGER column
INT32 = (-(2**31), INT32_MAX)
#: record and row ids (BIGINT / SQLite INTEGER)
ID = (1, INT64_MAX)
#: the ``version`` column (INTEGER)
VERSION = (1, INT32_MAX)
#: offsets and page numbers (the database multiplies and adds them: stay well inside 64 bits)
OFFSET = (0, INT32_MAX * 1024)
PAGE = (1, INT32_MAX)


def out_of_range(param: str, low: int, high: int) -> str:
    """The message for an integer outside ``low..high``."""
    return f"{param} must be an integer from {low} to {high}"


def check_range(param: str, value: int, low: int, high: int, location: str = "query") -> int:
    """``value`` when ``low <= value <= high``; else a 400 naming ``param``."""
    if not low <= value <= high:
        message = out_of_range(param, low, high)
        raise ApiError(400, message, {location: {param: [message]}})
    return value


def parse_int(param: str, text: str, low: int, high: int, location: str = "query") -> int:
    """An integer parameter written in ASCII digits (an optional leading ``-``), in range."""
    body = text[1:] if text.startswith("-") else text
    if not body or len(body) > 40 or not (body.isascii() and body.isdigit()):
        message = f"{param} must be an integer, not '{text[:40]}'"
        raise ApiError(400, message, {location: {param: [message]}})
    return check_range(param, int(text), low, high, location)


def bounded(param: str, text: str | None, low: int, high: int, *, default: int | None = None,
            location: str = "query") -> int | None:
    """An optional integer parameter: ``default`` when absent; empty text is an error."""
    if text is None:
        return default
    return parse_int(param, text, low, high, location)


class Bounded(ma.validate.Range):
    """The same bounds as a marshmallow validator (``Range`` so apispec documents them)."""

    def __init__(self, low: int, high: int) -> None:
        super().__init__(min=low, max=high)


class IntField(ma.fields.Integer):
    """A strict integer: ASCII digits only (no ``"１２"``, no ``"1.0"``), bounded."""

    def __init__(self, low: int, high: int, **kw: Any) -> None:
        super().__init__(strict=True, validate=Bounded(low, high), **kw)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kw: Any) -> int:
        if isinstance(value, str):
            body = value[1:] if value.startswith("-") else value
            if not body or len(body) > 40 or not (body.isascii() and body.isdigit()):
                raise self.make_error("invalid")
            value = int(value)
        return int(super()._deserialize(value, attr, data, **kw))


class _BadPath(BadRequest):
    """A 400 raised while matching the URL (answered in the common error shape)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.data = {"message": message, "errors": {"path": {param: [message]}}}


class IdConverter(BaseConverter):
    """``<id:record_id>``: a record id in a URL; digits match (also non-ASCII ones, to be
    refused by name), other text is no route (404)."""

    regex = r"\d+"
    weight = 50
    part_isolating = True

    def __init__(self, map: Any, param: str = "record_id") -> None:  # noqa: A002
        super().__init__(map)
        self.param = param

    def to_python(self, value: str) -> int:
        try:
            return parse_int(self.param, value, *ID, location="path")
        except ApiError as err:
            raise _BadPath(self.param, err.message) from None

    def to_url(self, value: Any) -> str:
        return str(int(value))

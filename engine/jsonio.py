"""JSON as the API reads and writes it: finite numbers only, both ways.

Python's ``json`` reads ``NaN``/``Infinity`` and turns a number literal beyond a double
(``1e400``) into ``inf``, and writes them back as bare ``Infinity``/``NaN``, which are not
JSON. Every JSON body the engine reads over HTTP goes through :func:`loads` (the generated
API's ``read_json``, Flask's ``request.get_json`` and webargs' bodies through
``engine.api.body``), and every answer through :func:`dumps` (``json_response``, Flask's
provider, exports), so a non-finite number is refused where it enters and never leaves.

Example::

    >>> loads(b'{"a": [1, 2.5]}')
    {'a': [1, 2.5]}
    >>> loads(b'{"attrs": {"x": 1e400}}')
    Traceback (most recent call last):
      ...
    engine.jsonio.NonFiniteNumber: 1e400 is beyond the range of a number (at most ±1.8e308)
    >>> dumps({"x": float("inf")})        # a value stored before this check existed
    '{"x":null}'
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

log = logging.getLogger(__name__)


class NonFiniteNumber(ValueError):
    """A number literal that is not a finite double; ``path`` locates it in the document
    (keys and list indexes from the top)."""

    def __init__(self, text: str, path: tuple[str | int, ...] = ()) -> None:
        super().__init__(f"{text} is beyond the range of a number (at most ±1.8e308)")
        self.text = text
        self.path = path


class _Huge:
    """Stands for a non-finite literal while :func:`loads` looks for where it is."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # a literal cannot be NaN; NaN/Infinity words go to _constant
        raise NonFiniteNumber(text)
    return value


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_float=_finite, parse_constant=_constant)
_LOCATOR = json.JSONDecoder(parse_float=lambda t: _Huge(t) if math.isinf(float(t))
                            else float(t), parse_constant=_constant)


def _find(value: Any, path: tuple[str | int, ...] = ()) -> NonFiniteNumber | None:
    if isinstance(value, _Huge):
        return NonFiniteNumber(value.text, path)
    items = (value.items() if isinstance(value, dict)
             else enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        found = _find(item, (*path, key))
        if found is not None:
            return found
    return None


def loads(raw: str | bytes) -> Any:
    """``raw`` decoded; ``ValueError`` when it is not JSON (``NaN``, ``Infinity`` included)
    and :class:`NonFiniteNumber` (a ``ValueError`` with the path) for a number that is
    not a finite double."""
    text = (raw.decode(json.detect_encoding(raw), "surrogatepass")  # as json.loads does
            if isinstance(raw, bytes | bytearray) else raw)
    try:
        return _DECODER.decode(text)
    except NonFiniteNumber as err:
        found = _find(_LOCATOR.decode(text))
        raise (found or err) from None


def _finite_only(value: Any, depth: int = 0) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth > 200:
        return value
    if isinstance(value, dict):
        return {k: _finite_only(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_only(v, depth + 1) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """``value`` as JSON text (compact, non-ASCII kept unless ``kwargs`` say otherwise).
    A non-finite float, which only a row stored before the checks can still hold, is
    written as ``null`` (and logged), never as ``Infinity``/``NaN``."""
    kwargs.setdefault("ensure_ascii", False)
    kwargs.setdefault("separators", (",", ":"))
    try:
        return json.dumps(value, allow_nan=False, **kwargs)
    except ValueError as err:
        if "Out of range float" not in str(err):
            raise
    log.warning("a non-finite number was written as null in a JSON answer")
    return json.dumps(_finite_only(value), allow_nan=False, **kwargs)

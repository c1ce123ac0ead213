"""A precompiled fast path for loading valid request bodies; marshmallow stays the authority.

:func:`compile_loader` turns an entity's fields into one function per field, built when the
app is built. The loader is *conservative*: it returns the loaded dict only when it is sure
the generated marshmallow schema would accept the body and produce the same values, and
returns None for anything else (a missing required field, an unknown key, a string where a
number goes, an unusual date format...). The caller then runs the marshmallow schema, which
produces the error messages. So the loader never decides what is an error; it only skips
marshmallow's per-field machinery (about 100 us per record) for the bodies that are fine.
``tests/unit/engine/test_api_fastload.py`` checks with generated inputs that whenever the
loader answers, marshmallow answers the same.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from metamodel import Entity, Model

from .bounds import INT32
from .codecs import INT64, DecimalDigits, _json_ok
from .schemas import CHILD_READ_ONLY, READ_ONLY

#: A field check: the loaded value, or _NO when the fast path is not sure.
Check = Callable[[Any], Any]
Loader = Callable[[Any, bool], dict[str, Any] | None]


class _No:
    """Marker: the fast path does not take this value (marshmallow decides)."""


_NO: Any = _No()
_DECIMAL_TEXT = re.compile(r"-?\d{1,40}(\.\d{1,40})?")
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME_TEXT = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?")


def _clean(text: str) -> bool:
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _in_range(value: Any, low: Any, high: Any) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def field_check(f: Any) -> Check:
    """The fast check of one stored field (None handling is done by the caller)."""
    t = f.type
    if t in ("string", "text"):
        low = getattr(f, "min_length", None)
        if low is None:
            low = 1 if f.required else 0
        high = getattr(f, "max_length", None)
        pattern = re.compile(f.pattern) if getattr(f, "pattern", None) else None

        def check_text(v: Any) -> Any:
            if type(v) is not str or len(v) < low or (high is not None and len(v) > high):
                return _NO
            if not _clean(v) or (pattern is not None and pattern.fullmatch(v) is None):
                return _NO
            return v

        return check_text
    if t == "enum":
        codes = frozenset(f.codes())
        return lambda v: v if type(v) is str and v in codes else _NO
    if t in ("int", "link"):
        lo, hi = (1 if t == "link" else INT64[0]), INT64[1]
        if getattr(f, "min", None) is not None:
            lo = max(lo, f.min)
        if getattr(f, "max", None) is not None:
            hi = min(hi, f.max)
        return lambda v: v if type(v) is int and lo <= v <= hi else _NO
    if t == "float":
        def check_float(v: Any) -> Any:
            if type(v) is not float and type(v) is not int:
                return _NO
            try:
                num = float(v)
            except OverflowError:
                return _NO
            if math.isinf(num) or math.isnan(num) or not _in_range(num, f.min, f.max):
                return _NO
            return num

        return check_float
    if t == "decimal":
        digits = DecimalDigits(f.precision, f.scale)

        def check_decimal(v: Any) -> Any:
            if type(v) is str:
                if _DECIMAL_TEXT.fullmatch(v) is None:
                    return _NO
            elif type(v) is not int:
                return _NO     # floats go through marshmallow (str(float) subtleties)
            num = decimal.Decimal(str(v))
            try:
                digits(num)
            except Exception:
                return _NO
            return num if _in_range(num, f.min, f.max) else _NO

        return check_decimal
    if t == "bool":
        return lambda v: v if v is True or v is False else _NO
    if t == "date":
        def check_date(v: Any) -> Any:
            if type(v) is not str or _DATE_TEXT.fullmatch(v) is None:
                return _NO
            try:
                day = dt.date.fromisoformat(v)
            except ValueError:
                return _NO
            return day if _in_range(day, f.min, f.max) else _NO

        return check_date
    if t == "datetime":
        def check_datetime(v: Any) -> Any:
            if type(v) is not str or _DATETIME_TEXT.fullmatch(v) is None:
                return _NO
            try:
                value = dt.datetime.fromisoformat(v)
                if value.tzinfo is None:
                    value = value.replace(tzinfo=dt.UTC)
                return value.astimezone(dt.UTC)
            except (ValueError, OverflowError):
                return _NO

        return check_datetime
    if t == "json":
        return lambda v: v if _json_ok(v) else _NO
    raise ValueError(f"field type {t!r} has no fast check")


def _record_loader(fields: Mapping[str, Any], extra: dict[str, Check], ignored: frozenset[str],
                   tables: dict[str, Loader]) -> Loader:
    checks: dict[str, tuple[Check, bool]] = {}
    required: list[str] = []
    for name, f in fields.items():
        if f.type == "table":
            continue
        checks[name] = (field_check(f), not f.required)
        if f.required and f.default is None:
            required.append(name)
    for name, check in extra.items():
        checks[name] = (check, True)

    def load(data: Any, partial: bool) -> dict[str, Any] | None:
        if type(data) is not dict:
            return None
        if not partial:
            for name in required:
                if name not in data:
                    return None
        out: dict[str, Any] = {}
        for key, value in data.items():
            entry = checks.get(key)
            if entry is None:
                if key in ignored:
                    continue
                table = tables.get(key)
                if table is None or type(value) is not list:
                    return None
                rows = []
                for row in value:
                    loaded = table(row, False)
                    if loaded is None:
                        return None
                    rows.append(loaded)
                out[key] = rows
                continue
            if value is None:
                if not entry[1]:
                    return None
                out[key] = None
                continue
            loaded_value = entry[0](value)
            if loaded_value is _NO:
                return None
            out[key] = loaded_value
        return out

    return load


def _optional_int(v: Any) -> Any:
    return v if type(v) is int and INT64[0] <= v <= INT64[1] else _NO


def _optional_int32(v: Any) -> Any:
    return v if type(v) is int and INT32[0] <= v <= INT32[1] else _NO


def compile_loader(model: Model, ent: Entity) -> Loader:
    """The fast loader of a top-level entity's input (see the module docstring)."""
    tables = {}
    for name, f in ent.fields.items():
        if f.type == "table":
            child = model.entity(ent.targets[name])
            tables[name] = _record_loader(child.stored_fields(), {"id": _optional_int},
                                          CHILD_READ_ONLY, {})
    return _record_loader(ent.fields, {"version": _optional_int32}, READ_ONLY, tables)

"""Per-field-type conversions: JSON output, query-string values and marshmallow input fields.

Everything here is computed once per field when the app is built; the request path only
calls the returned closures. Output conventions: dates and datetimes are ISO 8601 strings
(datetimes tz-aware, UTC), decimals are strings with exactly the field's scale (exact, no
float rounding), everything else is the plain JSON type.
"""

from __future__ import annotations

import copy
import datetime as dt
import decimal
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from marshmallow import fields as mf
from marshmallow import validate as mv

from metamodel.spec import labels_of

from .filestore import META_KEYS, is_meta

#: A context wide enough for NUMERIC(38, 38): quantize never raises for valid values.
DECIMAL_CONTEXT = decimal.Context(prec=80)

EQUALITY = frozenset({"eq", "ne", "in", "isnull"})
ORDERED = EQUALITY | {"gt", "gte", "lt", "lte"}
TEXTUAL = ORDERED | {"contains", "icontains"}
#: Every filter operator, in the order they are documented.
OPERATORS: tuple[str, ...] = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "contains",
                              "icontains", "isnull")


@dataclass(frozen=True)
class Codec:
    """How one column is read from the query string and written to JSON."""

    name: str
    type: str
    #: converts a non-null database value to its JSON form; None: the value is already JSON
    dump: Callable[[Any], Any] | None
    #: parses one query-string value; raises ValueError with a message for the client
    parse: Callable[[str], Any]
    ops: frozenset[str]
    nullable: bool

    @property
    def sortable(self) -> bool:
        return self.type not in ("json", "attachment")


# --------------------------------------------------------------------------- output


def dump_decimal(scale: int) -> Callable[[Any], str]:
    """A function formatting a decimal with exactly ``scale`` digits after the point."""
    quantum = decimal.Decimal(1).scaleb(-scale)

    def dump(value: Any) -> str:
        if not isinstance(value, decimal.Decimal):
            value = decimal.Decimal(str(value))
        return format(value.quantize(quantum, context=DECIMAL_CONTEXT), "f")

    return dump


def _isoformat(value: Any) -> str:
    return str(value.isoformat())


# --------------------------------------------------------------------------- query values


def parse_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"'{text}' is not an integer") from None
    if not INT64[0] <= value <= INT64[1]:
        raise ValueError(f"{text} is out of range for a 64-bit integer")
    return value


def parse_decimal(text: str) -> decimal.Decimal:
    try:
        value = decimal.Decimal(text)
    except decimal.InvalidOperation:
        raise ValueError(f"'{text}' is not a number") from None
    if not value.is_finite():
        raise ValueError(f"'{text}' is not a finite number")
    return value


def decimal_parser(precision: int, scale: int) -> Callable[[str], decimal.Decimal]:
    """Parse a filter value for NUMERIC(precision, scale); absurd magnitudes are refused
    (PostgreSQL cannot even compare them)."""

    def parse(text: str) -> decimal.Decimal:
        value = parse_decimal(text)
        if value and value.adjusted() >= precision - scale:
            raise ValueError(f"{text} is out of range (at most {precision - scale} digits "
                             "before the decimal point)")
        if value and value.as_tuple().exponent < -(scale + 30):  # type: ignore[operator]
            raise ValueError(f"{text} has too many digits after the decimal point")
        return value

    return parse


def parse_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"'{text}' is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"'{text}' is not a finite number")
    return value


def parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise ValueError(f"'{text}' is not a boolean (use true or false)")


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def parse_date(text: str) -> dt.date:
    try:
        if not _DATE.fullmatch(text.strip()):  # not the compact 20240101 Python also takes
            raise ValueError(text)
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"'{text}' is not a date (YYYY-MM-DD)") from None


def parse_datetime(text: str) -> dt.datetime:
    """An ISO 8601 instant; naive means UTC. A '+' decoded to ' ' by the URL is restored."""
    candidate = text.strip()
    try:
        value = dt.datetime.fromisoformat(candidate)
    except ValueError:
        fixed = re.sub(r" (\d\d:?\d\d)$", r"+\1", candidate)
        try:
            value = dt.datetime.fromisoformat(fixed)
        except ValueError:
            raise ValueError(f"'{text}' is not an ISO 8601 date and time "
                             "(e.g. 2024-05-01T08:00:00Z)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError(f"'{text}' is out of range in UTC") from None


def _parse_enum(codes: list[str]) -> Callable[[str], str]:
    allowed = set(codes)

    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"'{text}' is not one of {', '.join(codes)}")
        return text

    return parse


def clean_text(text: str) -> str:
    """``text`` unless it holds a NUL character (PostgreSQL refuses them in text columns)."""
    if "\x00" in text:
        raise ValueError("text must not contain NUL characters")
    return text


_parse_text = clean_text


def _parse_json(text: str) -> Any:
    raise ValueError("json fields can only be filtered with __isnull")


def _parse_attachment(text: str) -> Any:
    raise ValueError("attachment fields can only be filtered with __isnull")


def system_codecs(child: bool) -> list[Codec]:
    """Codecs of the system columns (and, for a child table, ``parent_id`` and ``idx``)."""
    codecs = [
        Codec("id", "int", None, parse_int, ORDERED - {"isnull"}, nullable=False),
        Codec("created_at", "datetime", _isoformat, parse_datetime, ORDERED - {"isnull"}, False),
        Codec("created_by", "string", None, _parse_text, TEXTUAL, nullable=True),
        Codec("updated_at", "datetime", _isoformat, parse_datetime, ORDERED - {"isnull"}, False),
        Codec("updated_by", "string", None, _parse_text, TEXTUAL, nullable=True),
        Codec("version", "int", None, parse_int, ORDERED - {"isnull"}, nullable=False),
    ]
    if child:
        codecs += [Codec("parent_id", "int", None, parse_int, ORDERED, False),
                   Codec("idx", "int", None, parse_int, ORDERED, False)]
    return codecs


# --------------------------------------------------------------------------- input fields


class _NotBool:
    """Reject JSON true/false where a number is expected (Python's bool is an int)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool):
            raise self.make_error("invalid")  # type: ignore[attr-defined]
        return super()._deserialize(value, attr, data, **kwargs)  # type: ignore[misc]


class StrictInteger(_NotBool, mf.Integer):
    """An integer given as a JSON integer (not a string, float or boolean)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)


class StrictFloat(_NotBool, mf.Float):
    """A finite number given as a JSON number."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class ExactDecimal(_NotBool, mf.Decimal):
    """A decimal given as a JSON number or a numeric string."""


class StrictBoolean(mf.Boolean):
    """``true`` or ``false`` only."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class CleanText(mv.Validator):
    """No NUL characters (PostgreSQL refuses them) and no lone surrogates (not UTF-8)."""

    def _repr_args(self) -> str:
        return ""

    def __call__(self, value: str) -> str:
        if "\x00" in value:
            raise ma.ValidationError("Must not contain NUL characters.")
        if not _encodable(value):
            raise ma.ValidationError("Must be valid Unicode (no lone surrogates).")
        return value


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_ok(value: Any, depth: int = 0) -> bool:
    if depth > 64:
        return False
    if isinstance(value, str):
        return _encodable(value)
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_json_ok(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(_encodable(k) and _json_ok(v, depth + 1) for k, v in value.items())
    return True


class JsonValue(mf.Raw):
    """Any JSON value whose strings are valid Unicode and numbers finite, nested at most
    64 deep."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if not _json_ok(value):
            raise ma.ValidationError("Must be JSON with valid Unicode text and finite "
                                     "numbers, nested at most 64 levels.")
        return value


class UTCDateTime(mf.AwareDateTime):
    """An ISO 8601 instant, naive meaning UTC, converted to UTC (refused if out of range)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> dt.datetime:
        ret = super()._deserialize(value, attr, data, **kwargs)
        try:
            return ret.astimezone(dt.UTC)
        except OverflowError:
            raise ma.ValidationError("Out of range once converted to UTC.") from None


class FullMatch(mv.Validator):
    """The whole string must match the pattern (as the model's ``pattern:`` means)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.regex = re.compile(pattern)

    def _repr_args(self) -> str:
        return f"pattern={self.pattern!r}"

    def __call__(self, value: str) -> str:
        if self.regex.fullmatch(value) is None:
            raise ma.ValidationError(f"Does not match pattern '{self.pattern}'.")
        return value


class DecimalDigits(mv.Validator):
    """At most ``scale`` digits after the point and ``precision - scale`` before it."""

    def __init__(self, precision: int, scale: int) -> None:
        self.precision = precision
        self.scale = scale

    def _repr_args(self) -> str:
        return f"precision={self.precision}, scale={self.scale}"

    def __call__(self, value: decimal.Decimal) -> decimal.Decimal:
        sign, digits, exponent = value.normalize(DECIMAL_CONTEXT).as_tuple()
        assert isinstance(exponent, int)  # finite: NaN and infinity are rejected earlier
        frac = max(0, -exponent)
        whole = max(0, len(digits) + exponent) if digits != (0,) else 0
        if frac > self.scale:
            raise ma.ValidationError(f"At most {self.scale} digits after the decimal point.")
        if whole > self.precision - self.scale:
            raise ma.ValidationError(
                f"At most {self.precision - self.scale} digits before the decimal point.")
        return value


class StrictDate(mf.Date):
    """A date written ``YYYY-MM-DD`` only (not the compact ``20240101`` Python also reads)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kw: Any) -> dt.date:
        if not isinstance(value, str) or not _DATE.fullmatch(value):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kw)  # type: ignore[no-any-return]


class DateBounds(mv.Validator):
    """A date range (not an ``mv.Range``, which apispec would document as numbers)."""

    def __init__(self, low: dt.date | None, high: dt.date | None) -> None:
        self.range = mv.Range(min=low, max=high)

    def _repr_args(self) -> str:
        return self.range._repr_args()

    def __call__(self, value: dt.date) -> dt.date:
        return self.range(value)


INT64 = (-(2**63), 2**63 - 1)


# --------------------------------------------------------------------------- fast checks


class _NotSure:
    """Marker: the fast path does not take this value (marshmallow decides)."""


#: what a fast check (:meth:`Kind.fast`) returns when it is not sure of a value
NOT_SURE: Any = _NotSure()
_FAST_DECIMAL = re.compile(r"-?\d{1,40}(\.\d{1,40})?")
_FAST_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_FAST_DATETIME = re.compile(
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


# --------------------------------------------------------------------------- kinds


class Kind:
    """Everything the API knows about one field kind, in one object: its filter operators,
    query-string parser, JSON output, marshmallow input and output fields, literal default
    and the check of values the server derives. :data:`KINDS` holds one per kind; the
    functions below (``field_codec``, ``input_field``, ...) only look the kind up.

    A subclass overrides what differs from these defaults (a kind with no filters, a JSON
    value that is already JSON, no derived-value check).
    """

    #: the ``type:`` of the YAML field
    name = ""
    #: filter operators (``field__op``)
    ops: frozenset[str] = EQUALITY
    #: aggregate functions the kind takes (``GET .../aggregate?sum=field``)
    aggregates: frozenset[str] = frozenset()

    def fast(self, f: Any) -> Callable[[Any], Any]:
        """The fast-path check of a JSON value for ``f`` (``engine.api.fastload``): the
        loaded value when marshmallow would surely load the same, else :data:`NOT_SURE`.
        The default is never sure."""
        return lambda v: NOT_SURE

    def parser(self, f: Any) -> Callable[[str], Any]:
        """Parses one query-string value for ``f``; raises ValueError with a message."""
        raise NotImplementedError(self.name)

    def dumper(self, f: Any) -> Callable[[Any], Any] | None:
        """Turns a non-null database value into JSON; None: it is JSON already."""
        return None

    def input(self, f: Any, opts: dict[str, Any], meta: dict[str, Any],
              nested: type[ma.Schema] | None) -> mf.Field[Any]:
        """The marshmallow field validating input (``opts``: required, allow_none,
        metadata; ``meta`` is ``opts["metadata"]``, for documentation extras)."""
        raise NotImplementedError(self.name)

    def output(self, f: Any, meta: dict[str, Any]) -> mf.Field[Any]:
        """A marshmallow field documenting the JSON output (OpenAPI only)."""
        return mf.Raw(allow_none=True, metadata=meta)

    def default(self, f: Any, value: Any, tz: dt.tzinfo) -> Any:
        """A literal default (not None) as the value a new record gets."""
        return value

    def fits(self, f: Any) -> Callable[[Any], str | None] | None:
        """A check that a derived value fits the column (the message when it does not)."""
        return None

    def meta(self, f: Any) -> dict[str, Any]:
        """Keys this kind adds to the field's entry in ``/api/meta``."""
        return {}

    def total(self, fn: str, f: Any) -> Callable[[Any], Any] | None:
        """Turns a database ``sum``/``avg`` of the field into JSON; None: a float (an
        overflow refused by the aggregate endpoint)."""
        return None

    def coerce(self, f: Any, value: Any) -> Any:
        """A value an expression computed (not None) in this kind's Python type; raises
        TypeError, ValueError or ArithmeticError when it cannot be (stored as null)."""
        return value


KINDS: dict[str, Kind] = {}


def register(kind: type[Kind]) -> type[Kind]:
    """Class decorator: one instance of ``kind`` in :data:`KINDS` under ``kind.name``."""
    KINDS[kind.name] = kind()
    return kind


def kind_of(f: Any) -> Kind:
    """The :class:`Kind` of a model field."""
    kind = KINDS.get(f.type)
    if kind is None:
        raise ValueError(f"field type {f.type!r} is not known to the API")
    return kind


@register
class StringKind(Kind):
    name = "string"
    ops = TEXTUAL

    def coerce(self, f: Any, value: Any) -> Any:
        return value if isinstance(value, str) else str(value)

    def fast(self, f: Any) -> Callable[[Any], Any]:
        low = getattr(f, "min_length", None)
        if low is None:
            low = 1 if f.required else 0
        high = getattr(f, "max_length", None)
        pattern = re.compile(f.pattern) if getattr(f, "pattern", None) else None

        def check_text(v: Any) -> Any:
            if type(v) is not str or len(v) < low or (high is not None and len(v) > high):
                return NOT_SURE
            if not _clean(v) or (pattern is not None and pattern.fullmatch(v) is None):
                return NOT_SURE
            return v

        return check_text

    def parser(self, f: Any) -> Callable[[str], Any]:
        return _parse_text

    def input(self, f: Any, opts: dict[str, Any], meta: dict[str, Any],
              nested: type[ma.Schema] | None) -> mf.Field[Any]:
        low = f.min_length if f.min_length is not None else (1 if f.required else None)
        validators: list[Any] = [mv.Length(min=low, max=f.max_length), CleanText()]
        if f.pattern:
            validators.append(FullMatch(f.pattern))
        return mf.String(validate=validators, **opts)

    def output(self, f: Any, meta: dict[str, Any]) -> mf.Field[Any]:
        return mf.String(allow_none=True, metadata=meta)

    def fits(self, f: Any) -> Callable[[Any], str | None] | None:
        if f.max_length is None:
            return None
        most = f.max_length

        def check_length(v: Any) -> str | None:
            if isinstance(v, str) and len(v) > most:
                return f"Longer than maximum length {most}."
            return None

        return check_length


@register
class TextKind(StringKind):
    """Long text: the string kind's checks, no length bound unless one is given."""

    name = "text"

    def input(self, f: Any, opts: dict[str, Any], meta: dict[str, Any],
              nested: type[ma.Schema] | None) -> mf.Field[Any]:
        validators: list[Any] = [CleanText()]
        if f.required:
            validators.append(mv.Length(min=1))
        return mf.String(validate=validators, **opts)

    def fits(self, f: Any) -> Callable[[Any], str | None] | None:
        return None  # an unbounded column


@register
class EnumKind(Kind):
    name = "enum"
    ops = TEXTUAL

    def coerce(self, f: Any, value: Any) -> Any:
        return value if isinstance(value, str) else str(value)

    def fast(self, f: Any) -> Callable[[Any], Any]:
        codes = frozenset(f.codes())
        return lambda v: v if type(v) is str and v in codes else NOT_SURE

    def parser(self, f: Any) -> Callable[[str], Any]:
        return _parse_enum(f.codes())

    def input(self, f: Any, opts: dict[str, Any], meta: dict[str, Any],
              nested: type[ma.Schema] | None) -> mf.Field[Any]:
        return mf.String(validate=[mv.OneOf(f.codes())], **opts)

    def output(self, f: Any, meta: dict[str, Any]) -> mf.Field[Any]:
        return mf.String(allow_none=True, validate=[mv.OneOf(f.codes())], metadata=meta)


@register
class IntKind(Kind):
    name = "int"
    ops = ORDERED
    aggregates = frozenset({"sum", "avg", "min", "max"})
    #: smallest value the column takes
    lowest = INT64[0]

    def coerce(self, f: Any, value: Any) -> Any:
        if isinstance(value, bool):
            raise TypeError("bool")
        return int(decimal.Decimal(str(value)).to_integral_value(decimal.ROUND_HALF_UP))

    def total(self, fn: str, f: Any) -> Callable[[Any], Any] | None:
        return (lambda v: int(decimal.Decimal(str(v)))) if fn == "sum" else None

    def fast(self, f: Any) -> Callable[[Any], Any]:
        lo, hi = self.lowest, INT64[1]
        if getattr(f, "min", None) is not None:
            lo = max(lo, f.min)
        if getattr(f, "max", None) is not None:
            hi = min(hi, f.max)
        return lambda v: v if type(v) is int and lo <= v <= hi else NOT_SURE

    def parser(self, f: Any) -> Callable[[str], Any]:
        return parse_int

    def input(self, f: Any, opts: dict[str, Any], meta: dict[str, Any],
              nested: type[ma.Schema] | None) -> mf.Field[Any]:
        lo, hi = self.lowest, INT64[1]
        lo = lo if getattr(f, "min", None) is None else max(lo, f.min)
        hi = hi if getattr(f, "max", None) is None else min(hi, f.max)
        return StrictInteger(validate=[mv.Range(min=lo, max=hi)], **opts)

    def output(self, f: Any, meta: dict[str, Any]) -> mf.Field[Any]:
        return mf.Integer(allow_none=True, metadata=meta)

    def fits(self, f: Any) -> Callable[[Any], str | None] | None:
        lo, hi = INT64

        def check_int(v: Any) -> str | None:
            if isinstance(v, int) and not lo <= v <= hi:
                return f"{v} is out of range for a 64-bit integer."
            return None

        return check_int


@register
class LinkKind(IntKind):
    name = "link"
    lowest = 1
    aggregates: frozenset[str] = frozenset()


@register
class DecimalKind(Kind):
    name = "decimal"
    ops = ORDERED
    aggregates = frozenset({"sum", "avg", "min", "max"})

    def coerce(self, f: Any, value: Any) -> Any:
        if isinstance(value, bool):
            raise TypeError("bool")
        d = value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value))
        try:
            return d.quantize(decimal.Decimal(1).scaleb(-f.scale), decimal.ROUND_HALF_UP,
                              context=DECIMAL_CONTEXT)
        except decimal.InvalidOperation:
            return d  # too many digits even for the context: fits() refuses it

    def total(self, fn: str, f: Any) -> Callable[[Any], Any] | None:
        return dump_decimal(getattr(f, "scale", None) or 0)

    def fast(self, f: Any) -> Callable[[Any], Any]:
        digits = DecimalDigits(f.precision, f.scale)

        def check_decimal(v: Any) -> Any:
            if type(v) is str:
                if _FAST_DECIMAL.fullmatch(v) is None:
                    return NOT_SURE
            elif type(v) is not int:
                return NOT_SURE     # floats go through marshmallow (str(float) subtleties)
            num = decimal.Decimal(str(v))
            try:
                digits(num)
            except Exception:
                return NOT_SURE
            return num if _in_range(num, f.min, f.max) else NOT_SURE

        return check_decimal

    def parser(self, f: Any) -> Callable[[str], Any]:
        return decimal_parser(f.precision, f.scale)

    def dumper(self, f: Any) -> Callable[[Any], Any] | None:
        return dump_decimal(f.scale)

    def input(self, f: Any, opts: dict[str, Any], meta: dict[str, Any],
              nested: type[ma.Schema] | None) -> mf.Field[Any]:
        validators: list[Any] = [DecimalDigits(f.precision, f.scale)]
        if f.min is not None or f.max is not None:
            validators.append(mv.Range(min=f.min, max=f.max))
        # apispec would write Decimal bounds as strings; document them as numbers
        meta.update({k: v for k, v in (("minimum", f.min), ("maximum", f.max)) if v is not None})
        meta.update({"x-precision": f.precision, "x-scale": f.scale})
        return ExactDecimal(allow_nan=False, validate=validators, **opts)

    def output(self, f: Any, meta: dict[str, Any]) -> mf.Field[Any]:
        meta["format"] = "decimal"
        return mf.String(allow_none=True, metadata=meta)

    def default(self, f: Any, value: Any, tz: dt.tzinfo) -> Any:
        return decimal.Decimal(str(value))

    def fits(self, f: Any) -> Callable[[Any], str | None] | None:
        whole, scale = f.precision - f.scale, f.scale

        def check_decimal(v: Any) -> str | None:
            if not isinstance(v, decimal.Decimal):
                return None  # None, or a value coerce() already judged
            if not v.is_finite():
                return "Not a finite number."
            exponent = v.as_tuple().exponent
            assert isinstance(exponent, int)
            if v and v.adjusted() >= whole:
                return (f"{v} does not fit: at most {whole} digits before the decimal "
                        f"point (precision {f.precision}, scale {scale}).")
            if -exponent > scale and v != v.quantize(decimal.Decimal(1).scaleb(-scale),
                                                      context=DECIMAL_CONTEXT):
                return f"{v} has more than {scale} digits after the decimal point."
            return None

        return check_decimal


@register
class FloatKind(Kind):
    name = "float"
    ops = ORDERED
    aggregates = frozenset({"sum", "avg", "min", "max"})

    def coerce(self, f: Any, value: Any) -> Any:
        if isinstance(value, bool):
            raise TypeError("bool")
        return float(value)

    def fast(self, f: Any) -> Callable[[Any], Any]:
        def check_float(v: Any) -> Any:
            if type(v) is not float and type(v) is not int:
                return NOT_SURE
            try:
                num = float(v)
            except OverflowError:
                return NOT_SURE
            if math.isinf(num) or math.isnan(num) or not _in_range(num, f.min, f.max):
                return NOT_SURE
            return num

        return check_float

    def parser(self, f: Any) -> Callable[[str], Any]:
        return parse_float

    def input(self, f: Any, opts: dict[str, Any], meta: dict[str, Any],
              nested: type[ma.Schema] | None) -> mf.Field[Any]:
        validators: list[Any] = []
        if f.min is not None or f.max is not None:
            validators.append(mv.Range(min=f.min, max=f.max))
        return StrictFloat(allow_nan=False, validate=validators, **opts)

    def output(self, f: Any, meta: dict[str, Any]) -> mf.Field[Any]:
        return mf.Float(allow_none=True, metadata=meta)

    def fits(self, f: Any) -> Callable[[Any], str | None] | None:
        def check_float(v: Any) -> str | None:
            if isinstance(v, float) and not math.isfinite(v):
                return "The value is beyond the range of a number (±1.8e308)."
            return None

        return check_float


@register
class BoolKind(Kind):
    name = "bool"
    ops = EQUALITY

    def coerce(self, f: Any, value: Any) -> Any:
        return bool(value)

    def fast(self, f: Any) -> Callable[[Any], Any]:
        return lambda v: v if v is True or v is False else NOT_SURE

    def parser(self, f: Any) -> Callable[[str], Any]:
        return parse_bool

    def input(self, f: Any, opts: dict[str, Any], meta: dict[str, Any],
              nested: type[ma.Schema] | None) -> mf.Field[Any]:
        return StrictBoolean(**opts)

    def output(self, f: Any, meta: dict[str, Any]) -> mf.Field[Any]:
        return mf.Boolean(allow_none=True, metadata=meta)


@register
class DateKind(Kind):
    name = "date"
    ops = ORDERED
    aggregates = frozenset({"min", "max"})

    def coerce(self, f: Any, value: Any) -> Any:
        return value.date() if isinstance(value, dt.datetime) else value

    def fast(self, f: Any) -> Callable[[Any], Any]:
        def check_date(v: Any) -> Any:
            if type(v) is not str or _FAST_DATE.fullmatch(v) is None:
                return NOT_SURE
            try:
                day = dt.date.fromisoformat(v)
            except ValueError:
                return NOT_SURE
            return day if _in_range(day, f.min, f.max) else NOT_SURE

        return check_date

    def parser(self, f: Any) -> Callable[[str], Any]:
        return parse_date

    def dumper(self, f: Any) -> Callable[[Any], Any] | None:
        return _isoformat

    def input(self, f: Any, opts: dict[str, Any], meta: dict[str, Any],
              nested: type[ma.Schema] | None) -> mf.Field[Any]:
        validators: list[Any] = []
        if f.min is not None or f.max is not None:
            validators.append(DateBounds(f.min, f.max))
            meta["description"] = " ".join(filter(None, [
                meta.get("description"), f"from {f.min}" if f.min else None,
                f"until {f.max}" if f.max else None]))
        return StrictDate(validate=validators, **opts)

    def output(self, f: Any, meta: dict[str, Any]) -> mf.Field[Any]:
        return mf.Date(allow_none=True, metadata=meta)

    def default(self, f: Any, value: Any, tz: dt.tzinfo) -> Any:
        if value == "today":
            return dt.datetime.now(dt.UTC).astimezone(tz).date()
        return value


@register
class DateTimeKind(Kind):
    name = "datetime"
    ops = ORDERED
    aggregates = frozenset({"min", "max"})

    def coerce(self, f: Any, value: Any) -> Any:
        if not isinstance(value, dt.datetime) and isinstance(value, dt.date):
            return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
        return value

    def fast(self, f: Any) -> Callable[[Any], Any]:
        def check_datetime(v: Any) -> Any:
            if type(v) is not str or _FAST_DATETIME.fullmatch(v) is None:
                return NOT_SURE
            try:
                value = dt.datetime.fromisoformat(v)
                if value.tzinfo is None:
                    value = value.replace(tzinfo=dt.UTC)
                return value.astimezone(dt.UTC)
            except (ValueError, OverflowError):
                return NOT_SURE

        return check_datetime

    def parser(self, f: Any) -> Callable[[str], Any]:
        return parse_datetime

    def dumper(self, f: Any) -> Callable[[Any], Any] | None:
        return _isoformat

    def input(self, f: Any, opts: dict[str, Any], meta: dict[str, Any],
              nested: type[ma.Schema] | None) -> mf.Field[Any]:
        return UTCDateTime(default_timezone=dt.UTC, **opts)

    def output(self, f: Any, meta: dict[str, Any]) -> mf.Field[Any]:
        return mf.AwareDateTime(allow_none=True, metadata=meta)

    def default(self, f: Any, value: Any, tz: dt.tzinfo) -> Any:
        if value == "now":
            return dt.datetime.now(dt.UTC)
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
        return value


@register
class JsonKind(Kind):
    name = "json"
    ops = frozenset({"isnull"})

    def fast(self, f: Any) -> Callable[[Any], Any]:
        return lambda v: v if _json_ok(v) else NOT_SURE

    def parser(self, f: Any) -> Callable[[str], Any]:
        return _parse_json

    def input(self, f: Any, opts: dict[str, Any], meta: dict[str, Any],
              nested: type[ma.Schema] | None) -> mf.Field[Any]:
        return JsonValue(**opts)

    def default(self, f: Any, value: Any, tz: dt.tzinfo) -> Any:
        return copy.deepcopy(value)


class AttachmentValue(mf.Dict):
    """An attachment's metadata as served (``name``, ``size``, ``type``, ``sha256``,
    ``key``); a write may send it back unchanged or null (the gate refuses any other
    value: a file is attached only by uploading it, :mod:`engine.api.attachments`)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if not is_meta(value):
            raise ma.ValidationError("An attachment is set by uploading the file to "
                                     "…/files/<field>; send null to remove it, or the "
                                     "value as served to keep it.")
        return value


ATTACHMENT_DOC = {
    "type": "object", "description": "The attached file (null: none); set by uploading to "
    "…/<id>/files/<field>, read with GET …/<id>/files/<field>.",
    "properties": {"name": {"type": "string"}, "size": {"type": "integer", "minimum": 0},
                   "type": {"type": "string"},
                   "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                   "key": {"type": "string"}},
    "required": list(META_KEYS), "additionalProperties": False,
}


@register
class AttachmentKind(Kind):
    """A file stored on disk; the column holds its metadata (JSON)."""

    name = "attachment"
    ops = frozenset({"isnull"})

    def parser(self, f: Any) -> Callable[[str], Any]:
        return _parse_attachment

    def input(self, f: Any, opts: dict[str, Any], meta: dict[str, Any],
              nested: type[ma.Schema] | None) -> mf.Field[Any]:
        meta.update(ATTACHMENT_DOC)
        return AttachmentValue(**opts)

    def output(self, f: Any, meta: dict[str, Any]) -> mf.Field[Any]:
        meta.update(ATTACHMENT_DOC)
        return mf.Dict(allow_none=True, metadata=meta)

    def meta(self, f: Any) -> dict[str, Any]:
        # max_size null: the server's max_upload_bytes (/api/desk/config)
        return {"attachment": {"accept": f.accept, "max_size": f.max_bytes}}


@register
class TableKind(Kind):
    """Child rows (no column of their own: no codec, filter or derived check)."""

    name = "table"

    def input(self, f: Any, opts: dict[str, Any], meta: dict[str, Any],
              nested: type[ma.Schema] | None) -> mf.Field[Any]:
        assert nested is not None
        opts["allow_none"] = False
        return mf.List(mf.Nested(nested), **opts)


# --------------------------------------------------------------------------- by kind


def field_codec(name: str, f: Any) -> Codec:
    """The codec of a model field (not a ``table`` field)."""
    kind = kind_of(f)
    return Codec(name, f.type, kind.dumper(f), kind.parser(f), kind.ops,
                 nullable=not f.required)


def fits(f: Any) -> Callable[[Any], str | None] | None:
    """A check that a value the server derived (computed, ``'='`` default, fetched) fits
    the column of ``f``: returns the message when it does not. None: nothing to check.

    Input is checked by the marshmallow fields; this is for values no client sent, which
    a database would otherwise store with other digits (SQLite) or refuse naming no field.
    """
    return kind_of(f).fits(f)


def input_field(name: str, f: Any, *, required: bool, nested: type[ma.Schema] | None = None
                ) -> mf.Field[Any]:
    """The marshmallow field validating input for model field ``f``."""
    meta: dict[str, Any] = {"title": labels_of(f.label, name).get("en")}
    if f.help is not None:
        meta["description"] = labels_of(f.help, name).get("en")
    if getattr(f, "unit", None):
        meta["x-unit"] = f.unit
    if f.default_expression is not None or (  # '=today()', today, now: evaluated per write
            f.type in ("date", "datetime") and f.default in ("today", "now")):
        meta["x-default-expression"] = f.default
    elif f.default is not None and f.type != "table":
        meta["default"] = (f.default.isoformat() if isinstance(f.default, dt.date)
                           else f.default)
    opts: dict[str, Any] = {"required": required, "allow_none": not f.required,
                            "metadata": meta}
    return kind_of(f).input(f, opts, meta, nested)


def output_field(name: str, f: Any) -> mf.Field[Any]:
    """A marshmallow field describing the JSON output of ``f`` (OpenAPI documentation only)."""
    meta: dict[str, Any] = {"title": labels_of(f.label, name).get("en")}
    if getattr(f, "unit", None):
        meta["x-unit"] = f.unit
    return kind_of(f).output(f, meta)


def default_value(f: Any, tz: dt.tzinfo = dt.UTC) -> Any:
    """The value a record gets for ``f`` when the input leaves it out (may be None).

    Only literal defaults: an expression default (``'=...'``) is not evaluated here.
    ``today`` is the date in ``tz`` (the site's time zone).
    """
    value = getattr(f, "literal_default", f.default)
    if value is None:
        return None
    return kind_of(f).default(f, value, tz)

"""Evaluation-time values: the context an expression reads, and the operators' semantics.

Values are plain Python: ``None`` (null), ``bool``, ``int``/``float``/``Decimal``
(number), ``str``, ``datetime.date``, ``datetime.datetime`` (aware; naive ones are taken
as UTC) and lists of those. Operators check their operands' run-time types (a caller may
hand a string where a number was declared), so a wrong value is an error with a place,
never a Python ``TypeError`` and never a silent ``'a' * 10**9``.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from .scope import Limits

EMPTY: Mapping[str, Any] = MappingProxyType({})
_NUMS = frozenset({int, float, Decimal})


def _empty() -> Mapping[str, Any]:
    return EMPTY


def utcnow() -> dt.datetime:
    """The current instant, timezone-aware, in UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass(slots=True)
class Context:
    """The values one evaluation reads.

    ``record`` is ``self`` (a row as a dict); ``parent`` the parent row of a child record;
    ``links`` maps a link field to the linked row (only those the expression reads, see
    :attr:`Expression.refs`); ``children`` maps a table field to its rows; ``user`` holds
    ``id``, ``username``, ``roles`` (expanded through inheritance) and ``sites``;
    ``variables`` the extra names of the scope. ``clock`` returns the current instant and
    ``tz`` is the site's time zone, used by ``today()`` and the date of a datetime.
    """

    record: Mapping[str, Any] = field(default_factory=_empty)
    parent: Mapping[str, Any] | None = None
    links: Mapping[str, Mapping[str, Any] | None] = field(default_factory=_empty)
    children: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=_empty)
    user: Mapping[str, Any] | None = None
    variables: Mapping[str, Any] = field(default_factory=_empty)
    clock: Callable[[], dt.datetime] = utcnow
    tz: dt.tzinfo = dt.UTC


class Fault(Exception):
    """Internal: a run-time type mismatch or bound, re-raised as EvalError with a place."""


def is_number(v: Any) -> bool:
    """Whether ``v`` is a number of the language (``bool`` is not)."""
    return type(v) in _NUMS or (isinstance(v, (int, float, Decimal)) and not isinstance(v, bool))


def type_name(v: Any) -> str:
    """The language's name for the type of a run-time value."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if is_number(v):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dt.datetime):
        return "datetime"
    if isinstance(v, dt.date):
        return "date"
    if isinstance(v, (list, tuple, set, frozenset)):
        return "list"
    return "value"


def aware(v: dt.datetime) -> dt.datetime:
    """``v`` with a time zone (naive datetimes are UTC)."""
    return v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v


def is_date(v: Any) -> bool:
    """A calendar date (not a datetime)."""
    return isinstance(v, dt.date) and not isinstance(v, dt.datetime)


# ------------------------------------------------------------------------------ arithmetic


def _need_numbers(sym: str, a: Any, b: Any) -> None:
    if not (is_number(a) and is_number(b)):
        raise Fault(f"'{sym}' needs numbers, got {type_name(a)} and {type_name(b)}")


def _mixed(op: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
    try:
        return op(a, b)
    except TypeError:  # Decimal with float: measurements are floats, so compute in float
        return op(float(a), float(b))


def _guard(op: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
    """Run ``op``; undefined results (x/0, 0/0) are null, overflow is a Fault."""
    try:
        r = _mixed(op, a, b)
    except (ZeroDivisionError, InvalidOperation):
        return None
    except ArithmeticError:
        raise Fault("number too large") from None
    if type(r) is complex:  # a negative number to a fractional power
        return None
    return r


def arithmetic(sym: str, limits: Limits) -> Callable[[Any, Any], Any]:
    """The function behind a binary operator; both operands are non-null."""
    max_bits, max_exp, max_str = limits.max_int_bits, limits.max_exponent, limits.max_string

    def add(a: Any, b: Any) -> Any:
        if isinstance(a, str) and isinstance(b, str):
            if len(a) + len(b) > max_str:
                raise Fault(f"text longer than {max_str} characters")
            return a + b
        _need_numbers("+", a, b)
        return _guard(operator.add, a, b)

    def mul(a: Any, b: Any) -> Any:
        _need_numbers("*", a, b)
        if type(a) is int and type(b) is int and a.bit_length() + b.bit_length() > max_bits:
            raise Fault("number too large")
        return _guard(operator.mul, a, b)

    def power(a: Any, b: Any) -> Any:
        _need_numbers("**", a, b)
        try:
            too_big = abs(b) > max_exp
        except InvalidOperation:
            return None
        if too_big:
            raise Fault(f"exponent {b} is too large (the limit is {max_exp})")
        if type(a) is int and type(b) is int and b > 0 and a.bit_length() * b > max_bits:
            raise Fault("number too large")
        return _guard(operator.pow, a, b)

    def simple(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        def run(a: Any, b: Any) -> Any:
            _need_numbers(sym, a, b)
            return _guard(op, a, b)
        return run

    table: dict[str, Callable[[Any, Any], Any]] = {
        "+": add, "*": mul, "**": power, "-": simple(operator.sub),
        "/": simple(operator.truediv), "//": simple(operator.floordiv),
        "%": simple(operator.mod),
    }
    return table[sym]


def negate(v: Any) -> Any:
    """Unary minus of a non-null value."""
    if not is_number(v):
        raise Fault(f"'-' needs a number, got {type_name(v)}")
    return -v


def plus(v: Any) -> Any:
    """Unary plus of a non-null value."""
    if not is_number(v):
        raise Fault(f"'+' needs a number, got {type_name(v)}")
    return v


# ------------------------------------------------------------------------------ comparison

ORDER_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


def order_slow(sym: str, a: Any, b: Any) -> bool:
    """Ordering after the fast path failed: mixed datetimes, NaN, or a type mismatch."""
    op = ORDER_OPS[sym]
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return bool(op(aware(a), aware(b)))
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        if is_number(a) and is_number(b):
            return False  # a NaN compares false
    raise Fault(f"cannot compare {type_name(a)} with {type_name(b)} using '{sym}'")


def contains(item: Any, coll: Any) -> bool:
    """``item in coll`` for a non-null ``coll``: a list or a text (substring)."""
    if isinstance(coll, str):
        if not isinstance(item, str):
            if item is None:
                return False
            raise Fault(f"'in' a text needs a text on its left, got {type_name(item)}")
        return item in coll
    if isinstance(coll, Collection) and not isinstance(coll, Mapping):
        try:
            return item in coll
        except TypeError:
            return any(item == x for x in coll)
    raise Fault(f"'in' needs a list or a text on its right, got {type_name(coll)}")


"""The built-in functions: each one's type check and the closure it compiles into.

A function is registered with :func:`function`; its builder receives a
:class:`~engine.expr.nodes.Call` (compiled arguments, the call's place, the limits) and
returns a :class:`~engine.expr.nodes.Node`. Builders reject wrong argument types they
can see; the closures check run-time values too. Scalar functions return null when an
argument is null; predicates (``contains``…) return false. Aggregates live in
:mod:`engine.expr.aggregates`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .errors import EvalError
from .nodes import NUMERIC, TEMPORAL, TEXT, Call, Node, constant
from .runtime import Context, Fault, aware, is_date, is_number, type_name
from .scope import Type

Builder = Callable[[Call], Node]


@dataclass(frozen=True)
class Function:
    """A built-in function: name, signature and summary (for docs and hints), builder."""

    name: str
    signature: str
    summary: str
    min_args: int
    max_args: int | None
    build: Builder
    #: the result depends only on the arguments (folded when they are all constant)
    pure: bool = True


FUNCTIONS: dict[str, Function] = {}


def function(signature: str, summary: str, min_args: int, max_args: int | None,
             pure: bool = True) -> Callable[[Builder], Builder]:
    """Register a builder as the function named by ``signature``."""
    def deco(build: Builder) -> Builder:
        name = signature.split("(", 1)[0]
        FUNCTIONS[name] = Function(name, signature, summary, min_args, max_args, build, pure)
        return build
    return deco


def scalar(call: Call, impl: Callable[..., Any], result: Type, *, on_null: Any = None,
           elem: Type = Type.ANY, with_ctx: bool = False, pure: bool = True) -> Node:
    """A node applying ``impl`` to the argument values; a null argument gives ``on_null``."""
    fns = tuple(a.fn for a in call.args)
    name, off = call.name, call.start
    fn: Callable[[Context], Any]
    if len(fns) == 1 and not with_ctx:
        f0 = fns[0]

        def fn(c: Context) -> Any:
            v = f0(c)
            if v is None:
                return on_null
            try:
                return impl(v)
            except Fault as exc:
                raise EvalError(f"{name}(): {exc}", off) from None
    else:
        def fn(c: Context) -> Any:
            vals = [f(c) for f in fns]
            for v in vals:
                if v is None:
                    return on_null
            try:
                return impl(c, *vals) if with_ctx else impl(*vals)
            except Fault as exc:
                raise EvalError(f"{name}(): {exc}", off) from None
    return Node(fn, result, call.start, call.end, call.text, elem=elem,
                boolean=isinstance(on_null, bool), pure=pure)


def text_of(v: Any) -> str:
    """The text form of a value: numbers plainly, dates in ISO 8601, true/false."""
    if isinstance(v, str):
        return v
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Decimal):
        return format(v, "f")
    if is_number(v):
        return repr(v) if isinstance(v, float) else str(v)
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    raise Fault(f"cannot turn {type_name(v)} into text")


def _need(v: Any, check: Callable[[Any], bool], what: str) -> None:
    if not check(v):
        raise Fault(f"expected {what}, got {type_name(v)}")


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


# ------------------------------------------------------------------------------ text


@function("len(x)", "length of a text, a list, or the number of rows of a child table", 1, 1)
def _len(call: Call) -> Node:
    call.need(call.args[0], {Type.STRING, Type.LIST, Type.ROWS}, "a text, a list or a table")

    def impl(v: Any) -> int:
        if isinstance(v, (str, list, tuple)) or (hasattr(v, "__len__") and not is_number(v)):
            return len(v)
        raise Fault(f"expected a text or a list, got {type_name(v)}")
    return scalar(call, impl, Type.NUMBER)


def _text_fn(signature: str, summary: str, method: Callable[[str], str]) -> None:
    @function(signature, summary, 1, 1)
    def build(call: Call) -> Node:
        call.need(call.args[0], TEXT, "a text")

        def impl(v: Any) -> str:
            _need(v, _is_str, "a text")
            return method(v)
        return scalar(call, impl, Type.STRING)


_text_fn("lower(s)", "the text in lower case", str.lower)
_text_fn("upper(s)", "the text in upper case", str.upper)
_text_fn("trim(s)", "the text without leading and trailing spaces", str.strip)


def _predicate(signature: str, summary: str, test: Callable[[str, str], bool]) -> None:
    @function(signature, summary, 2, 2)
    def build(call: Call) -> Node:
        for a in call.args:
            call.need(a, TEXT, "texts")

        def impl(s: Any, part: Any) -> bool:
            _need(s, _is_str, "a text")
            _need(part, _is_str, "a text")
            return test(s, part)
        return scalar(call, impl, Type.BOOL, on_null=False)


_predicate("contains(s, part)", "whether text s contains part (false when either is null)",
           lambda s, p: p in s)
_predicate("starts_with(s, prefix)", "whether text s starts with prefix", str.startswith)
_predicate("ends_with(s, suffix)", "whether text s ends with suffix", str.endswith)


@function("concat(a, ...)", "the texts of all arguments joined; null counts as empty", 1, None)
def _concat(call: Call) -> Node:
    for a in call.args:
        if a.type in (Type.LIST, Type.ROWS):
            raise call.error(f"concat() takes single values; {a.text} is a list", a)
    fns = tuple(a.fn for a in call.args)
    limit, off = call.limits.max_string, call.start

    def fn(c: Context) -> str:
        try:
            out = "".join([text_of(f(c)) for f in fns])
        except Fault as exc:
            raise EvalError(f"concat(): {exc}", off) from None
        if len(out) > limit:
            raise EvalError(f"concat(): text longer than {limit} characters", off)
        return out
    return Node(fn, Type.STRING, call.start, call.end, call.text)


@function("string(x)", "a number, date or boolean as text (null stays null)", 1, 1)
def _string(call: Call) -> Node:
    a = call.args[0]
    if a.type in (Type.LIST, Type.ROWS):
        raise call.error(f"string() takes a single value; {a.text} is a list", a)
    return scalar(call, text_of, Type.STRING)


def _parse_number(s: str) -> int | Decimal | None:
    s = s.strip()
    if not s or len(s) > 100:
        return None
    try:
        return int(s)
    except ValueError:
        pass
    try:
        d = Decimal(s)
    except decimal.InvalidOperation:
        return None
    return d if d.is_finite() else None


@function("number(x)", "a text as a number; null when it is not one", 1, 1)
def _number(call: Call) -> Node:
    a = call.args[0]
    call.need(a, {Type.STRING, Type.NUMBER}, "a text or a number")
    if a.const and isinstance(a.value, str) and _parse_number(a.value) is None:
        raise call.error(f"'{a.value}' is not a number", a)

    def impl(v: Any) -> Any:
        if is_number(v):
            return v
        _need(v, _is_str, "a text or a number")
        return _parse_number(v)
    return scalar(call, impl, Type.NUMBER)


# ------------------------------------------------------------------------------ numbers

_ROUNDING = decimal.Context(prec=1000, rounding=decimal.ROUND_HALF_UP, Emax=100_000,
                            Emin=-100_000)


def _round(x: Any, digits: Any = 0) -> Any:
    _need(x, is_number, "a number")
    if not is_number(digits) or not -20 <= digits <= 20 or digits != int(digits):
        raise Fault("digits must be a whole number from -20 to 20")
    n = int(digits)
    if isinstance(x, int) and n >= 0:
        return x
    if isinstance(x, float) and not math.isfinite(x):
        return x
    d = x if isinstance(x, Decimal) else Decimal(repr(x) if isinstance(x, float) else x)
    if not d.is_finite():
        return x
    try:
        q = d.quantize(Decimal(1).scaleb(-n), context=_ROUNDING)
    except decimal.InvalidOperation:
        raise Fault("number too large to round") from None
    if isinstance(x, Decimal):
        return q
    return int(q) if n <= 0 else float(q)


@function("round(x, digits=0)", "x rounded half away from zero (2.5 -> 3)", 1, 2)
def _round_fn(call: Call) -> Node:
    for a in call.args:
        call.need(a, NUMERIC, "numbers")
    return scalar(call, _round, Type.NUMBER)


def _num_fn(signature: str, summary: str, op: Callable[[Any], Any]) -> None:
    @function(signature, summary, 1, 1)
    def build(call: Call) -> Node:
        call.need(call.args[0], NUMERIC, "a number")

        def impl(v: Any) -> Any:
            _need(v, is_number, "a number")
            try:
                return op(v)
            except (OverflowError, ValueError, ArithmeticError):
                raise Fault(f"no whole number for {v}") from None
        return scalar(call, impl, Type.NUMBER)


_num_fn("abs(x)", "the absolute value", abs)
_num_fn("floor(x)", "the largest whole number <= x", math.floor)
_num_fn("ceil(x)", "the smallest whole number >= x", math.ceil)


# ------------------------------------------------------------------------------ booleans


@function("is_blank(x)", "whether x is null, an empty or all-space text, or an empty list", 1, 1)
def _is_blank(call: Call) -> Node:
    f0 = call.args[0].fn

    def fn(c: Context) -> bool:
        v = f0(c)
        if v is None:
            return True
        if isinstance(v, str):
            return not v.strip()
        if isinstance(v, (list, tuple, set, frozenset)):
            return not v
        return False
    return Node(fn, Type.BOOL, call.start, call.end, call.text, boolean=True)


@function("has_role(role)", "whether the current user has the role (inherited roles count)",
          1, 1, pure=False)
def _has_role(call: Call) -> Node:
    user = call.scope.user if call.scope is not None else None
    if user is None or "roles" not in user.fields:
        raise call.error("has_role() needs a signed-in user, and there is none here")
    call.need(call.args[0], TEXT, "a role name")
    call.uses.add("user.roles")
    f0, off = call.args[0].fn, call.start

    def fn(c: Context) -> bool:
        if c.user is None:
            raise EvalError("has_role(): no user was given to evaluate (Context.user)", off)
        role = f0(c)
        return role is not None and role in (c.user.get("roles") or ())
    return Node(fn, Type.BOOL, call.start, call.end, call.text, boolean=True, pure=False)


# ------------------------------------------------------------------------------ dates


@function("now()", "the current instant (a datetime, UTC)", 0, 0, pure=False)
def _now(call: Call) -> Node:
    call.uses.add("clock")

    def fn(c: Context) -> dt.datetime:
        return aware(c.clock())
    return Node(fn, Type.DATETIME, call.start, call.end, call.text, pure=False)


@function("today()", "the current date in the site's time zone", 0, 0, pure=False)
def _today(call: Call) -> Node:
    call.uses.add("clock")

    def fn(c: Context) -> dt.date:
        return aware(c.clock()).astimezone(c.tz).date()
    return Node(fn, Type.DATE, call.start, call.end, call.text, pure=False)


def parse_date(s: str) -> dt.date | None:
    """An ISO date (``2024-01-31``), or ``None``."""
    try:
        return dt.date.fromisoformat(s.strip()) if len(s) <= 40 else None
    except ValueError:
        return None


def parse_datetime(s: str) -> dt.datetime | None:
    """An ISO datetime (naive ones are UTC), or ``None``."""
    try:
        return aware(dt.datetime.fromisoformat(s.strip())) if len(s) <= 60 else None
    except ValueError:
        return None


def local_date(c: Context, v: Any) -> dt.date:
    """The date of a date or datetime value, in the site's time zone."""
    if isinstance(v, dt.datetime):
        return aware(v).astimezone(c.tz).date()
    if isinstance(v, dt.date):
        return v
    raise Fault(f"expected a date, got {type_name(v)}")


@function("date(x)", "a date from 'YYYY-MM-DD' text, or the (site-local) date of a datetime",
          1, 1, pure=False)
def _date(call: Call) -> Node:
    a = call.args[0]
    call.need(a, {Type.STRING, Type.DATE, Type.DATETIME}, "a text, a date or a datetime")
    if a.const and isinstance(a.value, str):
        d = parse_date(a.value)
        if d is None:
            raise call.error(f"'{a.value}' is not a date", a, "write dates as 'YYYY-MM-DD'")
        return constant(d, Type.DATE, call.start, call.end, call.text)

    def impl(c: Context, v: Any) -> dt.date | None:
        return parse_date(v) if isinstance(v, str) else local_date(c, v)
    return scalar(call, impl, Type.DATE, with_ctx=True, pure=False)


@function("datetime(x)", "a datetime from ISO text (no offset: UTC), or a date's local midnight",
          1, 1, pure=False)
def _datetime(call: Call) -> Node:
    a = call.args[0]
    call.need(a, {Type.STRING, Type.DATE, Type.DATETIME}, "a text, a date or a datetime")
    if a.const and isinstance(a.value, str):
        t = parse_datetime(a.value)
        if t is None:
            raise call.error(f"'{a.value}' is not a datetime", a,
                             "write instants as '2024-01-31T08:00:00-03:00'")
        return constant(t, Type.DATETIME, call.start, call.end, call.text)

    def impl(c: Context, v: Any) -> dt.datetime | None:
        if isinstance(v, str):
            return parse_datetime(v)
        if isinstance(v, dt.datetime):
            return aware(v)
        if isinstance(v, dt.date):
            return dt.datetime.combine(v, dt.time(), tzinfo=c.tz)
        raise Fault(f"expected a date or a text, got {type_name(v)}")
    return scalar(call, impl, Type.DATETIME, with_ctx=True, pure=False)


def _part_fn(signature: str, summary: str, part: Callable[[Context, Any], int],
             allowed: frozenset[Type]) -> None:
    @function(signature, summary, 1, 1, pure=False)
    def build(call: Call) -> Node:
        call.need(call.args[0], allowed, "a datetime" if Type.DATE not in allowed else
                  "a date or a datetime")
        return scalar(call, part, Type.NUMBER, with_ctx=True, pure=False)


_part_fn("year(d)", "the year of a date or datetime (site time zone)",
         lambda c, v: local_date(c, v).year, TEMPORAL)
_part_fn("month(d)", "the month (1-12)", lambda c, v: local_date(c, v).month, TEMPORAL)
_part_fn("day(d)", "the day of the month (1-31)", lambda c, v: local_date(c, v).day, TEMPORAL)


def _hour(c: Context, v: Any) -> int:
    if not isinstance(v, dt.datetime):
        raise Fault(f"expected a datetime, got {type_name(v)}")
    return aware(v).astimezone(c.tz).hour


_part_fn("hour(t)", "the hour (0-23) of a datetime in the site time zone", _hour,
         frozenset({Type.DATETIME}))


def _span_seconds(a: Any, b: Any) -> float | int:
    """Seconds from ``a`` to ``b`` (both dates, or both datetimes)."""
    if is_date(a) and is_date(b):
        return int((b - a).days) * 86400
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return float((aware(b) - aware(a)).total_seconds())
    raise Fault(f"expected two dates or two datetimes, got {type_name(a)} and {type_name(b)}")


def _between_fn(signature: str, summary: str, unit: int) -> None:
    @function(signature, summary, 2, 2)
    def build(call: Call) -> Node:
        a, b = call.args
        for x in (a, b):
            call.need(x, TEMPORAL, "two dates or two datetimes")
        if {a.type, b.type} == {Type.DATE, Type.DATETIME}:
            raise call.error(f"{call.name}() takes two dates or two datetimes; {a.text} is "
                             f"a {a.type} and {b.text} a {b.type}", b,
                             "take the date of a datetime with date(x)")

        def impl(x: Any, y: Any) -> float | int:
            secs = _span_seconds(x, y)
            if unit == 86400 and is_date(x):
                return secs // unit
            return secs / unit
        return scalar(call, impl, Type.NUMBER)


_between_fn("days_between(a, b)", "days from a to b (whole days for dates, fractional for "
            "datetimes; negative when b is earlier)", 86400)
_between_fn("hours_between(a, b)", "hours from a to b", 3600)


def _add_fn(signature: str, summary: str, unit: str, allowed: frozenset[Type]) -> None:
    @function(signature, summary, 2, 2)
    def build(call: Call) -> Node:
        d, n = call.args
        call.need(d, allowed, "a datetime" if Type.DATE not in allowed else
                  "a date or a datetime")
        call.need(n, NUMERIC, "a number")

        def impl(x: Any, k: Any) -> Any:
            if not (isinstance(x, dt.datetime) or (is_date(x) and unit == "days")):
                raise Fault(f"expected {'a date' if unit == 'days' else 'a datetime'}, "
                            f"got {type_name(x)}")
            _need(k, is_number, "a number")
            try:
                return x + dt.timedelta(**{unit: float(k)})
            except (OverflowError, ValueError):
                raise Fault("date out of range") from None
        return scalar(call, impl, d.type if d.type in TEMPORAL else Type.ANY)


_add_fn("add_days(d, n)", "the date or datetime n days later (n may be negative)", "days",
        TEMPORAL)
_add_fn("add_hours(t, n)", "the datetime n hours later", "hours", frozenset({Type.DATETIME}))

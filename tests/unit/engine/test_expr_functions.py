"""Every built-in function: results, null handling, type checks, run-time type errors."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.expr import (
    FUNCTIONS,
    Context,
    EvalError,
    ExprError,
    FieldType,
    ObjectType,
    Scope,
    Type,
    compile,
)

S, N, B, D, DT, A = Type.STRING, Type.NUMBER, Type.BOOL, Type.DATE, Type.DATETIME, Type.ANY
LINES = ObjectType("fin.line", {"amount": FieldType(N), "item": FieldType(S),
                                "on": FieldType(D)})
REC = ObjectType("fin.afe", {
    "s": FieldType(S), "n": FieldType(N), "d": FieldType(D), "t": FieldType(DT),
    "b": FieldType(B), "v": FieldType(A), "lines": FieldType(Type.ROWS, rows=LINES),
})
SCOPE = Scope(record=REC)
UTC3 = dt.timezone(dt.timedelta(hours=-3))
NOW = dt.datetime(2024, 6, 1, 2, 30, tzinfo=dt.UTC)  # 2024-05-31 23:30 at UTC-3
ROW: dict[str, Any] = {
    "s": "  Pozo Norte ", "n": -2.5, "d": dt.date(2024, 2, 28),
    "t": dt.datetime(2024, 3, 1, 6, 0, tzinfo=dt.UTC), "b": True, "v": None,
}
LINE_ROWS = [
    {"amount": Decimal("10.50"), "item": "pipe", "on": dt.date(2024, 1, 5)},
    {"amount": None, "item": None, "on": None},
    {"amount": 4, "item": "valve", "on": dt.date(2023, 12, 1)},
    {"amount": 2.25, "item": "bolt", "on": dt.date(2024, 2, 1)},
]
USER = {"id": 3, "username": "ana", "roles": frozenset({"operator", "viewer"}),
        "sites": ["pad7"]}


def ctx(record: dict[str, Any] | None = None, **kw: Any) -> Context:
    kw.setdefault("children", {"lines": LINE_ROWS})
    kw.setdefault("user", USER)
    return Context(record=ROW if record is None else record, clock=lambda: NOW, tz=UTC3,
                   **kw)


def ev(source: str, record: dict[str, Any] | None = None, **kw: Any) -> Any:
    return compile(source, SCOPE).evaluate(ctx(record, **kw))


CASES: list[tuple[str, Any]] = [
    # text
    ("len(self.s)", 13), ("len('')", 0), ("len([1, 2, 3])", 3), ("len(self.lines)", 4),
    ("len(self.lines.amount)", 4), ("lower('AbC')", "abc"), ("upper(self.s)", "  POZO NORTE "),
    ("trim(self.s)", "Pozo Norte"), ("contains(self.s, 'Norte')", True),
    ("contains(self.s, 'Sur')", False), ("starts_with(trim(self.s), 'Pozo')", True),
    ("starts_with(self.s, 'Pozo')", False), ("ends_with(self.s, 'te ')", True),
    ("ends_with('abc', 'x')", False), ("concat('a', 1, null, true, self.d)", "a1true2024-02-28"),
    ("concat(self.n, '/', 1.5, '/', self.lines.amount == null)", "-2.5/1.5/false"),
    ("concat(self.t)", "2024-03-01T06:00:00+00:00"), ("string(12)", "12"),
    ("string(false)", "false"), ("string(self.d)", "2024-02-28"),
    ("number('42')", 42), ("number(' 4.50 ')", Decimal("4.50")), ("number(7)", 7),
    ("number('-1e3')", Decimal("-1E+3")),
    # numbers
    ("round(2.5)", 3), ("round(-2.5)", -3), ("round(2.4)", 2), ("round(1.005, 2)", 1.01),
    ("round(1234, -2)", 1200), ("round(self.n)", -3), ("round(7)", 7),
    ("round(number('2.345'), 2)", Decimal("2.35")), ("round(1.25, 1)", 1.3),
    ("abs(self.n)", 2.5), ("abs(-3)", 3), ("floor(self.n)", -3), ("floor(2.7)", 2),
    ("ceil(self.n)", -2), ("ceil(2.1)", 3),
    ("exp(0)", 1.0), ("exp(1)", 2.718281828459045), ("exp(100000)", None),
    ("ln(1)", 0.0), ("ln(exp(2))", 2.0), ("ln(0)", None), ("ln(-1)", None),
    ("sqrt(6.25)", 2.5), ("sqrt(-1)", None), ("sqrt(self.v)", None),
    ("pseudo_random('w1', 3) == pseudo_random('w1', 3)", True),
    ("pseudo_random('w1', 3) == pseudo_random('w1', 4)", False),
    ("pseudo_random('w1') >= 0 and pseudo_random('w1') < 1", True),
    # booleans
    ("is_blank(null)", True), ("is_blank('  ')", True), ("is_blank('x')", False),
    ("is_blank([])", True), ("is_blank([1])", False), ("is_blank(0)", False),
    ("has_role('operator')", True), ("has_role('admin')", False),
    # dates (the clock says 2024-06-01 02:30 UTC; the site is at UTC-3)
    ("now()", NOW), ("today()", dt.date(2024, 5, 31)), ("date('2024-01-31')", dt.date(2024, 1, 31)),
    ("date(self.t)", dt.date(2024, 3, 1)), ("date(now())", dt.date(2024, 5, 31)),
    ("date(self.d)", dt.date(2024, 2, 28)),
    ("datetime('2024-01-31T08:00:00-03:00')", dt.datetime(2024, 1, 31, 11, 0, tzinfo=dt.UTC)),
    ("datetime('2024-01-31T08:00')", dt.datetime(2024, 1, 31, 8, 0, tzinfo=dt.UTC)),
    ("datetime(self.d)", dt.datetime(2024, 2, 28, 3, 0, tzinfo=dt.UTC)),
    ("datetime(self.t)", dt.datetime(2024, 3, 1, 6, 0, tzinfo=dt.UTC)),
    ("year(self.d)", 2024), ("month(self.d)", 2), ("day(self.d)", 28), ("day(self.t)", 1),
    ("day(now())", 31), ("month(now())", 5), ("year(now())", 2024), ("hour(self.t)", 3),
    ("hour(now())", 23), ("days_between(self.d, date('2024-03-01'))", 2),
    ("days_between(date('2024-03-01'), self.d)", -2),
    ("days_between(self.t, now())", 91 + 20.5 / 24), ("hours_between(self.t, now())", 2204.5),
    ("hours_between(self.d, date('2024-02-29'))", 24.0),
    ("add_days(self.d, 2)", dt.date(2024, 3, 1)), ("add_days(self.d, -28)", dt.date(2024, 1, 31)),
    ("add_days(self.t, 0.5)", dt.datetime(2024, 3, 1, 18, 0, tzinfo=dt.UTC)),
    ("add_hours(self.t, -6)", dt.datetime(2024, 3, 1, 0, 0, tzinfo=dt.UTC)),
    ("days_between(self.d, today()) > 90", True),
    # aggregates
    ("sum(self.lines.amount)", 16.75), ("sum([1, 2, null])", 3), ("sum([])", 0),
    ("avg(self.lines.amount)", 16.75 / 3), ("avg([])", None), ("avg([2, 4])", 3.0),
    ("count(self.lines)", 4), ("count(self.lines.item)", 3), ("count([null, 1])", 1),
    ("min(self.lines.amount)", 2.25), ("max(self.lines.amount)", Decimal("10.50")),
    ("min(self.lines.on)", dt.date(2023, 12, 1)), ("max(self.lines.item)", "valve"),
    ("min(3, 1, 2)", 1), ("max(3, null, 2)", 3), ("min(null, null)", None),
    ("max(self.n, 0)", 0), ("min([])", None), ("max('a', 'b')", "b"),
    ("coalesce(self.v, self.n, 0)", -2.5), ("coalesce(null, null)", None),
    ("coalesce(self.v, 'x')", "x"), ("coalesce(self.b, false)", True),
]


@pytest.mark.parametrize(("source", "expected"), CASES, ids=[c[0] for c in CASES])
def test_function(source: str, expected: Any) -> None:
    got = ev(source)
    if isinstance(expected, float):
        assert got == pytest.approx(expected)
    else:
        assert got == expected
        assert type(got) is type(expected)


def test_every_function_is_tested_and_documented() -> None:
    called = {m for src, _ in CASES for m in re.findall(r"([a-z_]+)\(", src)}
    assert set(FUNCTIONS) <= called, set(FUNCTIONS) - called
    doc = (Path(__file__).resolve().parents[3] / "docs" / "expressions.md").read_text()
    for name, f in FUNCTIONS.items():
        assert f"`{f.signature}`" in doc, f"docs/expressions.md does not document {name}"


NULL_IN_NULL_OUT = [
    "len(self.v)", "lower(self.v)", "upper(self.v)", "trim(self.v)", "string(self.v)",
    "number(self.v)", "round(self.v)", "round(1.5, self.v)", "abs(self.v)", "floor(self.v)",
    "ceil(self.v)", "date(self.v)", "datetime(self.v)", "year(self.v)", "month(self.v)",
    "day(self.v)", "hour(self.v)", "days_between(self.v, self.d)", "hours_between(self.t, self.v)",
    "add_days(self.v, 1)", "add_days(self.d, self.v)", "add_hours(self.v, 1)",
    "avg(self.v)", "min(self.v)", "max(self.v)", "coalesce(self.v)",
]


@pytest.mark.parametrize("source", NULL_IN_NULL_OUT)
def test_null_argument_gives_null(source: str) -> None:
    assert ev(source) is None


@pytest.mark.parametrize(("source", "expected"), [
    ("contains(self.v, 'a')", False), ("starts_with('a', self.v)", False),
    ("ends_with(self.v, self.v)", False), ("is_blank(self.v)", True), ("sum(self.v)", 0),
    ("count(self.v)", 0), ("concat(self.v)", ""), ("has_role(self.v)", False),
])
def test_null_argument_of_predicates_and_aggregates(source: str, expected: Any) -> None:
    assert ev(source) == expected


@pytest.mark.parametrize(("source", "value", "message"), [
    ("len(self.v)", 5, "len(): expected a text or a list, got number"),
    ("lower(self.v)", 5, "lower(): expected a text, got number"),
    ("contains(self.v, 'a')", [1], "contains(): expected a text, got list"),
    ("string(self.v)", {"a": 1}, "string(): cannot turn value into text"),
    ("number(self.v)", True, "number(): expected a text or a number, got bool"),
    ("round(self.v)", "1", "round(): expected a number, got string"),
    ("round(1.5, self.v)", 1.5, "round(): digits must be a whole number from -20 to 20"),
    ("round(1.5, self.v)", 99, "round(): digits must be a whole number from -20 to 20"),
    ("abs(self.v)", "x", "abs(): expected a number, got string"),
    ("floor(self.v)", float("inf"), "floor(): no whole number for inf"),
    ("date(self.v)", 5, "date(): expected a date, got number"),
    ("datetime(self.v)", 5, "datetime(): expected a date or a text, got number"),
    ("year(self.v)", "2024", "year(): expected a date, got string"),
    ("hour(self.v)", dt.date(2024, 1, 1), "hour(): expected a datetime, got date"),
    ("days_between(self.v, self.d)", NOW, "days_between(): expected two dates or two "
     "datetimes, got datetime and date"),
    ("add_days(self.v, 1)", 3, "add_days(): expected a date, got number"),
    ("add_days(self.d, self.v)", "1", "add_days(): expected a number, got string"),
    ("add_days(self.d, self.v)", 10**9, "add_days(): date out of range"),
    ("add_hours(self.v, 1)", dt.date(2024, 1, 1), "add_hours(): expected a datetime, got date"),
    ("sum(self.v)", ["a"], "sum(): expected numbers, got string"),
    ("sum(self.v)", "abc", "sum(): expected a list, got string"),
    ("avg(self.v)", [1, "a"], "avg(): expected numbers, got string"),
    ("avg(self.v)", [10**400], "avg(): number too large"),
    ("count(self.v)", 3, "count(): expected a list, got number"),
    ("min(self.v)", [1, "a"], "min(): cannot compare string with number"),
    ("max(self.v)", [True], "max(): cannot order bool values"),
    ("max(self.v, 1)", "a", "max(): cannot compare number with string"),
    ("concat(self.v)", [1], "concat(): cannot turn list into text"),
])
def test_wrong_runtime_type_is_a_located_eval_error(source: str, value: Any,
                                                     message: str) -> None:
    expr = compile(source, SCOPE)
    with pytest.raises(EvalError) as info:
        expr.evaluate(ctx({**ROW, "v": value}))
    assert info.value.message == message
    assert info.value.offset == 0


@pytest.mark.parametrize(("source", "message"), [
    ("lower(1)", "lower() takes a text; 1 is a number"),
    ("contains(self.s, 1)", "contains() takes texts; 1 is a number"),
    ("round('1')", "round() takes numbers; '1' is a string"),
    ("abs(self.d)", "abs() takes a number; self.d is a date"),
    ("number(self.d)", "number() takes a text or a number; self.d is a date"),
    ("string(self.lines.item)", "string() takes a single value; self.lines.item is a list"),
    ("date(1)", "date() takes a text, a date or a datetime; 1 is a number"),
    ("year(self.s)", "year() takes a date or a datetime; self.s is a string"),
    ("hour(self.d)", "hour() takes a datetime; self.d is a date"),
    ("add_days(self.d, 'x')", "add_days() takes a number; 'x' is a string"),
    ("sum(self.lines.item)", "sum() adds numbers; self.lines.item holds strings"),
    ("sum(1)", "sum() takes a list of numbers (a column of a child table, or [a, b]); 1 is a "
     "number"),
    ("count(1)", "count() takes a child table or a list; 1 is a number"),
    ("max(self.lines)", "max() of a child table needs one of its columns"),
    ("min([true])", "min() compares numbers, texts or dates; [true] holds booleans"),
    ("len(self.b)", "len() takes a text, a list or a table; self.b is a boolean"),
    ("now(1)", "now() takes 0 arguments, got 1"),
    ("coalesce()", "coalesce() takes at least 1 argument, got 0"),
])
def test_argument_types_are_checked_at_compile_time(source: str, message: str) -> None:
    with pytest.raises(ExprError) as info:
        compile(source, SCOPE)
    assert type(info.value) is ExprError
    assert info.value.message == message


def test_constant_calls_are_folded_and_clock_calls_are_not() -> None:
    assert compile("upper('a') + lower('B')", SCOPE).constant
    assert compile("date('2024-01-01')", SCOPE).constant
    clock = compile("today() > date('2024-01-01')", SCOPE)
    assert not clock.constant
    assert clock.refs.clock
    later = Context(clock=lambda: dt.datetime(2023, 1, 1, tzinfo=dt.UTC))
    assert clock.evaluate(later) is False


def test_now_accepts_a_naive_clock_as_utc() -> None:
    expr = compile("hour(now())", SCOPE)
    assert expr.evaluate(Context(clock=lambda: dt.datetime(2024, 1, 1, 10, 0))) == 10


def test_runtime_text_conversions_of_bad_text_are_null() -> None:
    assert ev("number(self.v)", {**ROW, "v": "abc"}) is None
    assert ev("date(self.v)", {**ROW, "v": "31/01/2024"}) is None
    assert ev("datetime(self.v)", {**ROW, "v": "yesterday"}) is None
    assert ev("number(self.v)", {**ROW, "v": "nan"}) is None


def test_has_role_needs_a_user() -> None:
    with pytest.raises(ExprError, match="needs a signed-in user"):
        compile("has_role('admin')", Scope(record=REC, user=None))
    expr = compile("has_role('admin')", SCOPE)
    assert expr.refs.user == frozenset({"roles"})
    with pytest.raises(EvalError, match="no user was given"):
        expr.evaluate(Context(record=ROW))
    assert expr.evaluate(Context(user={"roles": ["admin"]})) is True


def test_scope_can_restrict_functions() -> None:
    narrow = Scope(record=REC, functions=frozenset({"abs", "round"}))
    assert compile("abs(self.n)", narrow).evaluate(Context(record=ROW)) == 2.5
    with pytest.raises(ExprError) as info:
        compile("now()", narrow)
    assert info.value.message == "function 'now' is not available here"
    assert info.value.hint == "functions: abs, round"


def test_concat_and_string_results_are_bounded() -> None:
    big = {**ROW, "s": "x" * 60_000}
    with pytest.raises(EvalError, match="text longer than 100000 characters"):
        ev("concat(self.s, self.s)", big)
    with pytest.raises(EvalError, match="text longer than 100000 characters"):
        ev("self.s + self.s", big)
    assert len(ev("self.s + 'y'", big)) == 60_001

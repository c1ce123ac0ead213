"""Grammar, operators, null rules and type inference of the expression language."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from engine.expr import (
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
PAD = ObjectType("prod.pad", {"name": FieldType(S), "site": FieldType(S)})
TESTS = ObjectType("prod.well_test", {"rate": FieldType(N), "ok": FieldType(B)})
WELL = ObjectType("prod.well", {
    "name": FieldType(S),
    "status": FieldType(S, enum=("planned", "drilling", "producing", "shut_in")),
    "depth_m": FieldType(N), "rate": FieldType(N), "active": FieldType(B),
    "spud_date": FieldType(D), "tested_at": FieldType(DT), "attrs": FieldType(A),
    "pad": FieldType(N, target=PAD), "tests": FieldType(Type.ROWS, rows=TESTS),
})
SCOPE = Scope(record=WELL, variables={"value": FieldType(N)})
ROW: dict[str, Any] = {
    "name": "X-1", "status": "producing", "depth_m": Decimal("1500.50"), "rate": 250.0,
    "active": True, "spud_date": dt.date(2020, 3, 1),
    "tested_at": dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC), "attrs": {"k": 1},
    "pad": None,
}
EMPTY: dict[str, Any] = {k: None for k in ROW}


def ev(source: str, record: dict[str, Any] | None = None, **ctx: Any) -> Any:
    """Compile against SCOPE and evaluate with ROW (or ``record``)."""
    return compile(source, SCOPE).evaluate(Context(record=ROW if record is None else record,
                                                   **ctx))


@pytest.mark.parametrize(("source", "expected"), [
    ("1", 1), ("-1", -1), ("1.5", 1.5), ("1_000", 1000), ("'a'", "a"), ('"b"', "b"),
    ("'it\\'s'", "it's"), ("'ñandú'", "ñandú"), ("true", True), ("True", True),
    ("false", False), ("False", False), ("null", None), ("None", None),
    ("[1, 2]", [1, 2]), ("(1, 2)", [1, 2]), ("[]", []), ("[1, null]", [1, None]),
])
def test_literals(source: str, expected: Any) -> None:
    expr = compile(source, SCOPE)
    assert expr.constant
    assert expr.evaluate(Context()) == expected


@pytest.mark.parametrize(("source", "expected"), [
    ("1 + 2 * 3", 7), ("(1 + 2) * 3", 9), ("2 ** 3 ** 2", 512), ("-2 ** 2", -4),
    ("7 // 2", 3), ("-7 // 2", -4), ("7 % 3", 1), ("7 / 2", 3.5), ("10 - 2 - 3", 5),
    ("+3", 3), ("- -3", 3), ("2 ** -1", 0.5), ("'ab' + 'cd'", "abcd"),
    ("1 < 2 < 3", True), ("1 < 3 < 2", False), ("3 >= 3", True), ("3 <= 2", False),
    ("1 == 1.0", True), ("1 != 2", True), ("'a' < 'b'", True),
    ("not true", False), ("not null", True), ("true and false", False),
    ("true or false", True), ("false or false or true", True),
    ("true and true and true and false", False), ("false or false or false or false", False),
    ("1 if true else 2", 1), ("1 if false else 2", 2), ("1 if null else 2", 2),
    ("2 in [1, 2]", True), ("3 not in [1, 2]", True), ("'b' in 'abc'", True),
    ("'z' not in 'abc'", True), ("null in [1, null]", True),
    ("1 / 0", None), ("1 // 0", None), ("1 % 0", None), ("(-8) ** 0.5", None),
    ("0 ** -1", None),
])
def test_constant_operators(source: str, expected: Any) -> None:
    assert ev(source) == expected


@pytest.mark.parametrize(("source", "expected"), [
    ("self.depth_m + 0.5", 1501.0), ("self.depth_m * 2", Decimal("3001.00")),
    ("self.depth_m / 2", Decimal("750.25")), ("self.depth_m - self.rate", 1250.5),
    ("self.rate % 7", 5.0), ("self.depth_m ** 2", Decimal("2251500.2500")),
    ("self.depth_m > 1500.4", True), ("self.depth_m == 1500.5", True),
    ("self.name + '/' + self.status", "X-1/producing"),
    ("self.status == 'producing' and self.spud_date != null and self.depth_m > 1000", True),
    ("self.status in ['planned', 'producing']", True),
    ("self.status not in ['planned', 'drilling']", True),
    ("0 < self.rate <= 250", True), ("0 < self.rate < 250", False),
    ("self.active", True), ("self.active == true", True),
    ("'high' if self.rate > 200 else 'low'", "high"),
    ("'deep' if self.depth_m > 3000 else 'mid' if self.depth_m > 1000 else 'shallow'", "mid"),
    ("self.pad == null", True), ("self.pad is null", True), ("self.pad is not null", False),
    ("self.attrs != null", True), ("self.tested_at > self.tested_at", False),
    ("self.spud_date <= self.spud_date", True),
])
def test_field_operators(source: str, expected: Any) -> None:
    got = ev(source)
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize(("source", "expected"), [
    # arithmetic with null is null
    ("self.rate + 1", None), ("self.rate * self.depth_m", None), ("-self.rate", None),
    ("self.name + 'x'", None), ("1 - self.rate", None),
    # ordering with null is false, both ways round, also when negated by the operator
    ("self.rate > 1", False), ("self.rate < 1", False), ("self.rate >= 1", False),
    ("1 <= self.rate", False), ("self.spud_date < self.spud_date", False),
    ("not (self.rate > 1)", True),
    # equality treats null as a value
    ("self.rate == null", True), ("self.rate != null", False), ("null == null", True),
    ("self.rate == 1", False), ("self.rate != 1", True), ("self.name == self.status", True),
    # null is false as a condition
    ("self.active and true", False), ("self.active or false", False), ("not self.active", True),
    ("1 if self.active else 2", 2),
    # membership
    ("self.status in ['planned']", False), ("self.status in [null]", True),
    ("'a' in self.name", False), ("self.name in 'abc'", False),
    ("self.status not in ['planned']", True),
])
def test_null_rules(source: str, expected: Any) -> None:
    assert ev(source, EMPTY) == expected


def test_boolean_result_is_never_null() -> None:
    rule = compile("self.active", SCOPE, expect=Type.BOOL)
    assert rule.type is Type.BOOL
    assert rule.evaluate(Context(record={"active": None})) is False
    assert rule.evaluate(Context(record={"active": True})) is True
    either = compile("self.active if self.rate > 1 else null", SCOPE)
    assert either.type is Type.BOOL
    assert either.evaluate(Context(record={"rate": 0})) is False


def test_any_is_accepted_where_a_boolean_is_expected() -> None:
    rule = compile("self.attrs", SCOPE, expect=Type.BOOL)
    assert rule.evaluate(Context(record={"attrs": {"a": 1}})) is True
    assert rule.evaluate(Context(record={"attrs": {}})) is False


def test_short_circuit_skips_unneeded_reads() -> None:
    # self.pad.name needs the linked record; with a pad id but no link loaded it would fail
    record = {**ROW, "pad": 7}
    assert ev("false and self.pad.name == 'x'", record) is False
    assert ev("true or self.pad.name == 'x'", record) is True
    assert ev("1 if true else len(self.pad.name)", record) == 1
    with pytest.raises(EvalError, match="was not given"):
        ev("true and self.pad.name == 'x'", record)


@pytest.mark.parametrize("source", [
    "self.active\n  and self.rate > 1",
    "self.active and  # a comment\n self.rate > 1",
    "self.active\r\n and self.rate > 1",
    "  self.active and self.rate > 1  ",
    "(self.active and\n\n self.rate > 1)",
    "self.active and self.rate > 1\n",
])
def test_layout_multiline_and_comments(source: str) -> None:
    assert ev(source) is True


@pytest.mark.parametrize(("source", "expected"), [
    ("1", N), ("'a'", S), ("true", B), ("null", Type.NULL), ("self.attrs", A),
    ("self.name", S), ("self.spud_date", D), ("self.tested_at", DT), ("self.pad", N),
    ("self.pad.name", S), ("self.tests", Type.ROWS), ("self.tests.rate", Type.LIST),
    ("[1, 2]", Type.LIST), ("self.rate + 1", N), ("'a' + self.name", S),
    ("self.attrs + self.attrs", A), ("self.attrs + 1", N), ("self.rate > 1", B),
    ("not self.active", B), ("self.rate if self.active else null", N),
    ("self.attrs if self.active else 1", A), ("coalesce(self.rate, 0)", N), ("value", N),
])
def test_type_inference(source: str, expected: Type) -> None:
    assert compile(source, SCOPE).type is expected


def test_list_element_type_and_refs() -> None:
    expr = compile("self.tests.rate", SCOPE)
    assert (expr.type, expr.elem) == (Type.LIST, N)
    assert compile("[self.name, null]", SCOPE).elem is S


def test_constant_folding_happens_once_at_compile_time() -> None:
    folded = compile("(2 + 3) * 4 > 10 and 'a' in ['a', 'b']", SCOPE)
    assert folded.constant
    assert folded.evaluate(Context()) is True
    assert not compile("self.rate > 1", SCOPE).constant


def test_constant_lists_are_fresh_and_compare_with_any_sequence() -> None:
    expr = compile("[1, 2]", SCOPE)
    first = expr.evaluate(Context())
    first.append(3)
    assert expr.evaluate(Context()) == [1, 2]
    assert ev("user.roles == ['a', 'b']", user={"roles": ("a", "b")}) is True
    assert ev("self.attrs != [1]", {"attrs": (1,)}) is False
    assert ev("self.tests.ok == [true, null]",
              children={"tests": [{"ok": True}, {"ok": None}]}) is True


def test_comment_only_source_is_empty() -> None:
    with pytest.raises(ExprError, match="expression is empty"):
        compile("# nothing here\n", SCOPE)
    assert compile("() == []", SCOPE).evaluate(Context()) is True


def test_lists_with_fields() -> None:
    assert ev("[self.name, self.status]") == ["X-1", "producing"]
    assert ev("self.name in [self.status, 'X-1']") is True
    assert ev("value in [1, 2]", variables={"value": 2}) is True


def test_expression_repr_and_source() -> None:
    expr = compile("self.rate > 1", SCOPE)
    assert expr.source == "self.rate > 1"
    assert repr(expr) == "<Expression 'self.rate > 1': bool>"


def test_mixed_datetimes_compare_naive_as_utc() -> None:
    naive = {"tested_at": dt.datetime(2024, 5, 1, 13, 0)}
    rule = compile("self.tested_at > datetime('2024-05-01T12:00:00+00:00')", SCOPE)
    assert rule.evaluate(Context(record=naive)) is True


def test_date_and_datetime_values_do_not_compare_at_run_time() -> None:
    rule = compile("self.attrs < self.spud_date", SCOPE)
    with pytest.raises(EvalError, match="cannot compare datetime with date"):
        rule.evaluate(Context(record={"attrs": dt.datetime(2024, 1, 1),
                                      "spud_date": dt.date(2024, 1, 1)}))


def test_in_with_runtime_values() -> None:
    expr = compile("self.attrs in self.tests.rate", SCOPE)
    rows = [{"rate": 1}, {"rate": 2}]
    assert expr.evaluate(Context(record={"attrs": 2}, children={"tests": rows})) is True
    unhashable = compile("self.attrs in [1, 2]", SCOPE)
    assert unhashable.evaluate(Context(record={"attrs": [1]})) is False
    bad = compile("'x' in self.attrs", SCOPE)
    with pytest.raises(EvalError, match="'in' needs a list or a text on its right, got number"):
        bad.evaluate(Context(record={"attrs": 5}))
    assert bad.evaluate(Context(record={"attrs": None})) is False


def test_null_literal_in_arithmetic_is_allowed_and_null() -> None:
    assert ev("self.rate + null") is None
    with pytest.raises(ExprError, match="always false"):
        compile("null < 1", SCOPE)

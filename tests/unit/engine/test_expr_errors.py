"""Error messages and their places: the text, 0-based offset and hint are the contract."""

from __future__ import annotations

from pathlib import Path

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
    location_in_yaml,
)
from metamodel.errors import Problems
from metamodel.source import read_yaml

S, N, B, D, DT, A = Type.STRING, Type.NUMBER, Type.BOOL, Type.DATE, Type.DATETIME, Type.ANY
PAD = ObjectType("prod.pad", {"name": FieldType(S), "site": FieldType(S), "capacity": FieldType(N)})
TESTS = ObjectType(
    "prod.well_test",
    {"rate": FieldType(N), "taken_on": FieldType(D), "ok": FieldType(B), "note": FieldType(S)},
)
WELL = ObjectType(
    "prod.well",
    {
        "name": FieldType(S),
        "status": FieldType(S, enum=("planned", "drilling", "producing", "shut_in")),
        "depth_m": FieldType(N),
        "rate": FieldType(N),
        "active": FieldType(B),
        "spud_date": FieldType(D),
        "tested_at": FieldType(DT),
        "attrs": FieldType(A),
        "pad": FieldType(N, target=PAD),
        "tests": FieldType(Type.ROWS, rows=TESTS),
    },
)
TAG = ObjectType("tag", {"value": FieldType(N), "quality": FieldType(S)})
SCOPE = Scope(
    record=WELL,
    parent=ObjectType("prod.field", {"name": FieldType(S), "budget": FieldType(N)}),
    variables={"value": FieldType(N), "tag": FieldType(A, target=TAG)},
)

# (source, message, offset, hint); a source starting with '?' is compiled with expect=BOOL
CASES = [
    (
        "self.depht_m > 3",
        "unknown field 'depht_m' of self (prod.well)",
        5,
        "did you mean 'depth_m'?",
    ),
    (
        "self.name + 1",
        "cannot use '+' with a string and a number",
        10,
        "convert with string(x) or number(x), or join with concat(a, b)",
    ),
    (
        "len(self.depth_m)",
        "len() takes a text, a list or a table; self.depth_m is a number",
        4,
        "convert with string(x)",
    ),
    (
        "self.status == 'producting'",
        "'producting' is not a value of self.status",
        15,
        "did you mean 'producing'?",
    ),
    (
        "self.status in ['planned', 'drillng']",
        "'drillng' is not a value of self.status",
        15,
        "did you mean 'drilling'?",
    ),
    (
        "'x' == self.status",
        "'x' is not a value of self.status",
        0,
        "expected one of planned, drilling, producing, shut_in",
    ),
    ("self.pad.nme", "unknown field 'nme' of self.pad (prod.pad)", 9, "did you mean 'name'?"),
    ("self.pad.name.x", "self.pad.name is a string; it has no fields", 14, None),
    (
        "self.tests.rte",
        "unknown field 'rte' of self.tests (prod.well_test)",
        11,
        "did you mean 'rate'?",
    ),
    (
        "sum(self.tests)",
        "sum() of a child table needs one of its columns",
        4,
        "for example sum(self.tests.<column>)",
    ),
    ("sum(self.tests.note)", "sum() adds numbers; self.tests.note holds strings", 4, None),
    ("self.tests > 3", "cannot order child tables with '>'", 11, None),
    ("self.tests.rate > 3", "cannot order lists with '>'", 16, None),
    (
        "self.name.upper()",
        "methods are not supported",
        10,
        "call the function with the value inside: upper(self.name)",
    ),
    (
        "self.active and self.name",
        "'and' needs a true/false value; self.name is a string",
        16,
        "compare it, e.g. not is_blank(self.name)",
    ),
    (
        "not self.rate",
        "'not' needs a true/false value; self.rate is a number",
        4,
        "compare it, e.g. self.rate > 0",
    ),
    (
        "self.rate if self.name else 0",
        "'if' needs a true/false value; self.name is a string",
        13,
        "compare it, e.g. not is_blank(self.name)",
    ),
    (
        "1 if self.active else 'a'",
        "both results of 'if … else' must have one type; 1 is a number, 'a' is a string",
        22,
        None,
    ),
    (
        "self.depth_m > null",
        "'>' with null is always false",
        13,
        "test for a missing value with x == null",
    ),
    (
        "self.depth_m is 3",
        "'is' only tests for null",
        13,
        "write x is null, or compare values with ==",
    ),
    (
        "self.spud_date < self.tested_at",
        "cannot compare self.spud_date (date) with self.tested_at (datetime)",
        15,
        "take the date of a datetime with date(x)",
    ),
    (
        "self.spud_date - self.spud_date",
        "cannot use '-' with a date and a date",
        15,
        "use days_between(a, b) or hours_between(a, b)",
    ),
    (
        "self.spud_date + 1",
        "cannot use '+' with a date and a number",
        15,
        "use add_days(d, n) or add_hours(t, n)",
    ),
    ("depth_m > 3", "unknown name 'depth_m'", 0, "fields are read through self: self.depth_m"),
    ("nul", "unknown name 'nul'", 0, "did you mean 'null'?"),
    ("sefl.depth_m", "unknown name 'sefl'", 0, "did you mean 'self'?"),
    ("lenn(self.name)", "unknown function 'lenn'", 0, "did you mean 'len'?"),
    ("round()", "round() takes 1 to 2 arguments, got 0", 0, "usage: round(x, digits=0)"),
    ("round(1, 2, 3)", "round() takes 1 to 2 arguments, got 3", 0, "usage: round(x, digits=0)"),
    ("parent.name.x", "parent.name is a string; it has no fields", 12, None),
    ("user.roles.x", "user.roles is a list; it has no fields", 11, None),
    (
        "user",
        "'user' is a record; name one of its fields",
        0,
        "for example user.id, user.roles, user.sites, user.username",
    ),
    ("len", "'len' is a function; call it: len(...)", 0, None),
    ("tag", "'tag' is a record; name one of its fields", 0, "for example tag.quality, tag.value"),
    ("tag.valu", "unknown field 'valu' of tag", 4, "did you mean 'value'?"),
    ("value.x", "'value' is a number; it has no fields", 6, None),
    ("self.rate +", "the expression ends too early", 11, None),
    ("(self.rate", "'(' was never closed", 0, "every '(' needs a ')'"),
    ("self.rate)", "unmatched ')'", 9, None),
    ("self.rate > 3)", "unmatched ')'", 13, None),
    ("self.x && self.y", "invalid syntax", 8, "use 'and'"),
    ("!self.active", "invalid syntax", 0, "use 'not' (and != for 'not equal')"),
    ("lambda: 1", "lambda functions are not allowed", 0, None),
    (
        "[x for x in self.tests]",
        "comprehensions are not allowed",
        0,
        "use sum(), min(), max() or count()",
    ),
    ("{'a': 1}", "dictionary literals are not allowed", 0, "write a list: [a, b]"),
    (
        "self.tests[0]",
        "indexing with [...] is not allowed",
        0,
        "read fields as self.field; aggregate child rows with sum(), count()...",
    ),
    ("f'{self.name}'", "f-strings are not allowed", 0, "join text with + or concat(a, b)"),
    (
        "len(self.name, key=1)",
        "keyword arguments are not allowed",
        15,
        "pass arguments by position: round(x, 2)",
    ),
    ("(x := 1)", "assignment (:=) is not allowed", 1, "compare with =="),
    ("self.rate @ 2", "operator '@' is not supported", 10, None),
    ("self.rate & 1", "operator '&' is not supported", 10, "use 'and'"),
    ("~self.rate", "operator '~' is not supported", 0, "use 'not'"),
    ("1 + (2 << 3)", "operator '<<' is not supported", 7, None),
    (
        "b'x'",
        "bytes literals are not allowed",
        0,
        "literals are numbers, 'text', true, false and null",
    ),
    (
        "1j",
        "complex literals are not allowed",
        0,
        "literals are numbers, 'text', true, false and null",
    ),
    (
        "99999999999999999999",
        "number literal is too large",
        0,
        "whole numbers go up to 9223372036854775807",
    ),
    ("1e999", "number literal is too large", 0, None),
    ("_x", "names starting with '_' are not allowed ('_x')", 0, None),
    ("self._private", "names starting with '_' are not allowed ('_private')", 5, None),
    (
        "?self.rate",
        "expected a boolean expression, but this is a number",
        0,
        "a rule must be true or false: compare the value, e.g. x > 0 or x != null",
    ),
    ("?null", "expected a boolean expression, but this is null", 0, None),
    (
        "'a' in self.rate",
        "'in' needs a list or a text on its right; self.rate is a number",
        4,
        "write a list as [a, b]",
    ),
    ("self.rate in 'abc'", "'in' a text looks for a text; self.rate is a number", 10, None),
    ("[1, 'a']", "list items must have one type; 'a' is a string, the others are numbers", 4, None),
    ("[[1]]", "lists cannot hold lists", 1, None),
    (
        "min(1, 'a')",
        "min() needs values of one type; 'a' is a string, the others are numbers",
        7,
        None,
    ),
    (
        "min(self.active, self.active)",
        "min() compares numbers, texts or dates; self.active is a boolean",
        4,
        None,
    ),
    (
        "coalesce(1, 'a')",
        "coalesce() needs values of one type; 'a' is a string, the others are numbers",
        12,
        None,
    ),
    ("date('2024-13-01')", "'2024-13-01' is not a date", 5, "write dates as 'YYYY-MM-DD'"),
    (
        "datetime('nope')",
        "'nope' is not a datetime",
        9,
        "write instants as '2024-01-31T08:00:00-03:00'",
    ),
    ("number('abc')", "'abc' is not a number", 7, None),
    (
        "days_between(self.spud_date, self.tested_at)",
        "days_between() takes two dates or two datetimes; self.spud_date is a date and "
        "self.tested_at a datetime",
        29,
        "take the date of a datetime with date(x)",
    ),
    (
        "add_hours(self.spud_date, 1)",
        "add_hours() takes a datetime; self.spud_date is a date",
        10,
        None,
    ),
    ("has_role(1)", "has_role() takes a role name; 1 is a number", 9, "convert with string(x)"),
    ("concat(self.tests)", "concat() takes single values; self.tests is a list", 7, None),
    (
        "self.rate > 'a'",
        "cannot compare self.rate (number) with 'a' (string)",
        10,
        "convert with number(x) or string(x)",
    ),
    ("self.active < true", "cannot order booleans with '<'", 12, None),
    ("[1] < [2]", "cannot order lists with '<'", 4, None),
    (
        "self.x\n  and self.y",
        "unknown field 'x' of self (prod.well)",
        5,
        "fields: active, attrs, depth_m, name, pad, rate, spud_date, status, tested_at, tests",
    ),
    (
        "self.rate\n > 'x'",
        "cannot compare self.rate (number) with 'x' (string)",
        11,
        "convert with number(x) or string(x)",
    ),
    (
        "  self.rate > 'x'",
        "cannot compare self.rate (number) with 'x' (string)",
        12,
        "convert with number(x) or string(x)",
    ),
    (
        "'é' + 1",
        "cannot use '+' with a string and a number",
        4,
        "convert with string(x) or number(x), or join with concat(a, b)",
    ),
    (
        "'ñandú' + 1",
        "cannot use '+' with a string and a number",
        8,
        "convert with string(x) or number(x), or join with concat(a, b)",
    ),
    ("2 ** 10000", "exponent 10000 is too large (the limit is 1024)", 2, None),
    (
        "'a' * 10**9",
        "cannot use '*' with a string and a number",
        4,
        "repeating text is not supported",
    ),
]


@pytest.mark.parametrize(
    ("source", "message", "offset", "hint"), CASES, ids=[c[0][:40] for c in CASES]
)
def test_compile_error(source: str, message: str, offset: int, hint: str | None) -> None:
    expect = Type.BOOL if source.startswith("?") else None
    with pytest.raises(ExprError) as info:
        compile(source.lstrip("?"), SCOPE, expect=expect)
    err = info.value
    assert type(err) is ExprError
    assert (err.message, err.offset, err.hint) == (message, offset, hint)
    assert 0 <= err.offset <= len(source)


def test_str_and_excerpt_point_at_the_mistake() -> None:
    source = "self.status == 'producing'\n  and self.depht_m > 1000"
    with pytest.raises(ExprError) as info:
        compile(source, SCOPE)
    err = info.value
    assert str(err) == (
        "unknown field 'depht_m' of self (prod.well) (at character 39); "
        "hint: did you mean 'depth_m'?"
    )
    assert err.excerpt(source) == (
        "  and self.depht_m > 1000\n"
        "           ^\n"
        "unknown field 'depht_m' of self (prod.well)\n"
        "hint: did you mean 'depth_m'?"
    )


def test_evaluation_errors_are_located() -> None:
    expr = compile("self.rate > 0 and self.attrs * 2 > 1", SCOPE)
    with pytest.raises(EvalError) as info:
        expr.evaluate(Context(record={"rate": 1, "attrs": "text"}))
    assert info.value.message == "'*' needs numbers, got string and number"
    assert info.value.offset == 29
    assert isinstance(info.value, ExprError)


def test_wrong_runtime_type_for_declared_field_is_an_eval_error() -> None:
    expr = compile("self.rate > 10", SCOPE)
    with pytest.raises(EvalError, match="cannot compare string with number using '>'"):
        expr.evaluate(Context(record={"rate": "12"}))
    with pytest.raises(EvalError, match="'-' needs a number, got string"):
        compile("-self.rate", SCOPE).evaluate(Context(record={"rate": "12"}))


def test_source_must_be_text_and_not_empty() -> None:
    with pytest.raises(ExprError, match="must be text"):
        compile(12, SCOPE)  # type: ignore[arg-type]
    with pytest.raises(ExprError, match="empty"):
        compile("   \n ", SCOPE)
    with pytest.raises(ExprError, match="invalid character") as info:
        compile("self.rate\0 > 1", SCOPE)
    assert info.value.offset == 9


@pytest.mark.parametrize(
    ("base", "offset", "source", "style", "indent", "expected"),
    [
        ((12, 18), 5, "self.x > 1", "", None, (12, 23)),
        ((12, 18), 0, "self.x > 1", "'", None, (12, 19)),
        ((12, 18), 5, "self.x > 1", '"', None, (12, 24)),
        ((4, 5), 15, "self.a > 1 and\nself.b < 2", "|", 7, (6, 7)),
        ((4, 5), 3, "self.a > 1", "|", None, (5, 9)),
        ((4, 5), 99, "abc", "", None, (4, 8)),
    ],
)
def test_location_in_yaml(
    base: tuple[int, int],
    offset: int,
    source: str,
    style: str,
    indent: int | None,
    expected: tuple[int, int],
) -> None:
    assert location_in_yaml(*base, offset, source, style, indent) == expected


def test_location_in_yaml_from_a_real_error() -> None:
    source = "self.rate > 1 and self.nmae == 'x'"
    with pytest.raises(ExprError) as info:
        compile(source, SCOPE)
    # the scalar started at line 7, column 16 of the YAML file (1-based, as the loader keeps)
    assert location_in_yaml(7, 16, info.value.offset, source) == (7, 16 + 23)


YAML = """\
rules:
  plain: self.rate > 1 and self.nmae == 'x'
  quoted: "self.rate > 1 and self.nmae == 'x'"
  single: 'self.rate > 1 and self.nmae == ''x'''
  block: |
    self.rate > 1
      and self.nmae == 'x'
"""


@pytest.mark.parametrize(("key", "style", "indent"), [
    ("plain", "", None), ("quoted", '"', None), ("single", "'", None), ("block", "|", 5),
])
def test_location_in_yaml_points_into_the_file(tmp_path: Path, key: str, style: str,
                                               indent: int | None) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(YAML, encoding="utf-8")
    problems = Problems()
    doc = read_yaml(path, "rules.yaml", problems)
    assert doc is not None and not problems
    source = doc.value["rules"][key]
    base = doc.where(("rules", key))
    with pytest.raises(ExprError) as info:
        compile(source, SCOPE)
    line, col = location_in_yaml(base.line, base.column, info.value.offset, source, style,
                                 indent)
    text_line = YAML.splitlines()[line - 1]
    assert text_line[col - 1:].startswith("nmae"), (key, line, col, text_line)
    assert f"rules.yaml:{line}:{col}" == {
        "plain": "rules.yaml:2:33", "quoted": "rules.yaml:3:35",
        "single": "rules.yaml:4:35", "block": "rules.yaml:7:16"}[key]

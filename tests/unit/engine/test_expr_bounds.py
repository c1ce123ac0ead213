"""Pathological expressions are rejected quickly, at load time or with a bounded run."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from engine.expr import (
    Context,
    EvalError,
    ExprError,
    FieldType,
    Limits,
    ObjectType,
    Scope,
    Type,
    compile,
)

ROWS = ObjectType("t.row", {"x": FieldType(Type.NUMBER)})
SCOPE = Scope(record=ObjectType("t.rec", {
    "n": FieldType(Type.NUMBER), "s": FieldType(Type.STRING), "v": FieldType(Type.ANY),
    "rows": FieldType(Type.ROWS, rows=ROWS),
}))
#: a bound on this thread's CPU time, not wall time: it catches a runaway evaluation (each
#: case takes milliseconds) without failing when other processes load the machine
FAST_S = 5.0


@contextmanager
def quickly() -> Iterator[None]:
    t0 = time.thread_time()
    yield
    assert time.thread_time() - t0 < FAST_S


def rejected(source: str, match: str, limits: Limits | None = None) -> ExprError:
    with quickly(), pytest.raises(ExprError, match=match) as info:
        compile(source, SCOPE, limits=limits or Limits())
    return info.value


@pytest.mark.parametrize(("source", "match"), [
    ("1 + " * 2000 + "1", "too long"),
    ("self.n + " * 400 + "1", "too large|too deeply nested"),
    ("(" * 250 + "1" + ")" * 250, "too many nested parentheses"),
    ("-" * 3990 + "1", "too deeply nested"),
    ("not " * 990 + "true", "too deeply nested"),
    ("[" + "1, " * 1300 + "1]", "too large"),
    ("f(" * 60 + ")" * 60, "too deeply nested|unknown function"),
    ("9" * 3000, "number literal is too large"),
    ("2 ** 10000", "exponent 10000 is too large"),
    ("2 ** 1000 * 2 ** 1000", "number too large"),
    ("10 ** 300 * 10 ** 300", "number too large"),
    ("1e308 * 10 > 1 or 10.0 ** 400 > 1", "number too large"),
    ("'a' * 10 ** 9", "cannot use '\\*' with a string and a number"),
    ("'a' * self.n", "cannot use '\\*' with a string and a number"),
    ("[1, 2] * 10 ** 9", "cannot use '\\*' with a list and a number"),
    ("self.s.__class__", "names starting with '_'"),
    ("date('9999-99-99')", "is not a date"),
])
def test_pathological_source_is_rejected_fast(source: str, match: str) -> None:
    rejected(source, match)


def test_limits_are_configurable() -> None:
    tight = Limits(max_source=20, max_nodes=5, max_depth=3)
    rejected("self.n + self.n + self.n + 1", "too long", tight)
    rejected("self.n + 1 + 2", "too large", Limits(max_nodes=5))
    rejected("-(-(-(-1)))", "too deeply nested", Limits(max_depth=3))
    assert compile("self.n + 1", SCOPE, limits=tight).evaluate(Context(record={"n": 1})) == 2


@pytest.mark.parametrize(("source", "value", "match"), [
    ("self.v * self.v", 2**200, "number too large"),
    ("self.v ** 3", 2**100, "number too large"),
    ("self.v ** self.v", 5000, "exponent 5000 is too large"),
    ("self.v ** 2", 1e200, "number too large"),
    ("self.v * 3", "abc", "'\\*' needs numbers, got string and number"),
    ("self.v * 3", [1, 2], "'\\*' needs numbers, got list and number"),
    ("self.v + self.v", "x" * 60_000, "text longer than 100000 characters"),
    ("self.v + self.v", [1], "'\\+' needs numbers, got list and list"),
])
def test_runtime_bounds_stop_with_an_eval_error(source: str, value: Any, match: str) -> None:
    expr = compile(source, SCOPE)
    with quickly(), pytest.raises(EvalError, match=match):
        expr.evaluate(Context(record={"v": value}))


def test_rows_visited_by_aggregates_are_bounded() -> None:
    limits = Limits(max_rows=100)
    expr = compile("sum(self.rows.x)", SCOPE, limits=limits)
    ok = [{"x": 1}] * 100
    assert expr.evaluate(Context(children={"rows": ok})) == 100
    with pytest.raises(EvalError, match="self.rows has 101 rows; the limit is 100"):
        expr.evaluate(Context(children={"rows": ok + [{"x": 1}]}))
    count = compile("count(self.rows)", SCOPE, limits=limits)
    with pytest.raises(EvalError, match="the limit is 100"):
        count.evaluate(Context(children={"rows": ok * 2}))


def test_default_row_bound_costs_linear_time() -> None:
    expr = compile("sum(self.rows.x) + avg(self.rows.x) + max(self.rows.x)", SCOPE)
    rows = [{"x": i} for i in range(100_000)]
    with quickly():
        assert expr.evaluate(Context(children={"rows": rows})) == 4999950000 + 49999.5 + 99999


def test_largest_accepted_expression_compiles_and_runs_fast() -> None:
    # many clauses of the usual kind, just under the default limits
    source = " and ".join(f"self.n != {i}" for i in range(220))
    assert len(source) < Limits().max_source
    with quickly():
        expr = compile(source, SCOPE)
        for _ in range(1000):
            assert expr.evaluate(Context(record={"n": -1})) is True


def test_long_chains_of_arithmetic_are_flat_enough() -> None:
    source = " + ".join(["self.n"] * 90)
    with quickly():
        assert compile(source, SCOPE).evaluate(Context(record={"n": 1})) == 90


def test_compile_never_uses_code_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    import builtins

    real: dict[str, Callable[..., Any]] = {n: getattr(builtins, n) for n in ("eval", "exec")}
    for name, fn in real.items():
        def spy(*a: Any, _n: str = name, _f: Callable[..., Any] = fn, **k: Any) -> Any:
            calls.append(_n)
            return _f(*a, **k)
        monkeypatch.setattr(builtins, name, spy)
    expr = compile("self.n * 2 > 3 and lower(self.s) in ['a', 'b']", SCOPE)
    assert expr.evaluate(Context(record={"n": 2, "s": "A"})) is True
    assert calls == []

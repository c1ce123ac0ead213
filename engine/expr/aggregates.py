"""Functions over several values: sum, avg, count, min, max and coalesce.

``sum``, ``avg`` and ``count`` take a list (a child table's column such as
``self.lines.amount``, or a literal ``[a, b]``); ``count`` also takes the table itself.
``min`` and ``max`` take one list or several values. All of them skip nulls. The number of
rows they visit is bounded by :attr:`Limits.max_rows` where the rows are read.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

from .errors import EvalError
from .functions import function
from .nodes import LOOSE, ORDERED, Call, Node, a_type, plural, unify
from .runtime import Context, Fault, _guard, is_number, type_name
from .scope import Type


def _values(v: Any, name: str) -> Sequence[Any]:
    if isinstance(v, (list, tuple)):
        return v
    raise Fault(f"expected a list, got {type_name(v)}")


def _list_arg(call: Call, what: str) -> Node:
    a = call.args[0]
    if a.type is Type.ROWS:
        raise call.error(f"{call.name}() of a child table needs one of its columns", a,
                         f"for example {call.name}({a.text}.<column>)")
    call.need(a, {Type.LIST}, what)
    return a


def _numeric_list(call: Call) -> Node:
    a = _list_arg(call, "a list of numbers (a column of a child table, or [a, b])")
    if a.type is Type.LIST and a.elem not in LOOSE | {Type.NUMBER}:
        raise call.error(f"{call.name}() adds numbers; {a.text} holds {plural(a.elem)}", a)
    return a


def _total(vals: Sequence[Any]) -> tuple[Any, int]:
    total: Any = 0
    n = 0
    for v in vals:
        if v is None:
            continue
        if not is_number(v):
            raise Fault(f"expected numbers, got {type_name(v)}")
        total = _guard(operator.add, total, v)
        n += 1
    return total, n


@function("sum(list)", "the sum of the non-null numbers (0 for none): sum(self.lines.amount)",
          1, 1)
def _sum(call: Call) -> Node:
    f0, off = _numeric_list(call).fn, call.start

    def fn(c: Context) -> Any:
        vals = f0(c)
        if vals is None:
            return 0
        try:
            return _total(_values(vals, "sum"))[0]
        except Fault as exc:
            raise EvalError(f"sum(): {exc}", off) from None
    return Node(fn, Type.NUMBER, call.start, call.end, call.text)


@function("avg(list)", "the mean of the non-null numbers (null for none)", 1, 1)
def _avg(call: Call) -> Node:
    f0, off = _numeric_list(call).fn, call.start

    def fn(c: Context) -> Any:
        vals = f0(c)
        if vals is None:
            return None
        try:
            total, n = _total(_values(vals, "avg"))
            return _guard(operator.truediv, total, n) if n else None
        except Fault as exc:
            raise EvalError(f"avg(): {exc}", off) from None
    return Node(fn, Type.NUMBER, call.start, call.end, call.text)


@function("count(x)", "the number of rows of a child table, or of non-null items of a list",
          1, 1)
def _count(call: Call) -> Node:
    a = call.args[0]
    call.need(a, {Type.LIST, Type.ROWS}, "a child table or a list")
    f0, off, rows = a.fn, call.start, a.type is Type.ROWS

    def fn(c: Context) -> int:
        vals = f0(c)
        if vals is None:
            return 0
        if rows:
            return len(vals)
        try:
            return sum(1 for v in _values(vals, "count") if v is not None)
        except Fault as exc:
            raise EvalError(f"count(): {exc}", off) from None
    return Node(fn, Type.NUMBER, call.start, call.end, call.text)


def _pick(vals: Sequence[Any], better: Callable[[Any, Any], bool]) -> Any:
    best = None
    for v in vals:
        if v is None:
            continue
        if isinstance(v, bool) or not (is_number(v) or isinstance(v, (str,)) or
                                       hasattr(v, "isoformat")):
            raise Fault(f"cannot order {type_name(v)} values")
        try:
            if best is None or better(v, best):
                best = v
        except (TypeError, ArithmeticError):
            raise Fault(f"cannot compare {type_name(v)} with {type_name(best)}") from None
    return best


def _extreme(call: Call, better: Callable[[Any, Any], bool]) -> Node:
    name, off = call.name, call.start
    fn: Callable[[Context], Any]
    if len(call.args) == 1:
        a = _list_arg(call, "a list (a column of a child table, or [a, b]) or several values")
        result = a.elem if a.type is Type.LIST else Type.ANY
        if result not in ORDERED | LOOSE:
            raise call.error(f"{name}() compares numbers, texts or dates; {a.text} holds "
                             f"{plural(result)}", a)
        f0 = a.fn

        def fn(c: Context) -> Any:
            vals = f0(c)
            if vals is None:
                return None
            try:
                return _pick(_values(vals, name), better)
            except Fault as exc:
                raise EvalError(f"{name}(): {exc}", off) from None
    else:
        result = Type.NULL
        for a in call.args:
            if a.type not in ORDERED | LOOSE:
                raise call.error(f"{name}() compares numbers, texts or dates; {a.text} is "
                                 f"{a_type(a.type)}", a)
            joined = unify(result, a.type)
            if joined is None:
                raise call.error(f"{name}() needs values of one type; {a.text} is "
                                 f"{a_type(a.type)}, the others are {plural(result)}", a)
            result = joined
        fns = tuple(a.fn for a in call.args)

        def fn(c: Context) -> Any:
            try:
                return _pick([f(c) for f in fns], better)
            except Fault as exc:
                raise EvalError(f"{name}(): {exc}", off) from None
    return Node(fn, result, call.start, call.end, call.text)


@function("min(list) / min(a, b, ...)", "the smallest non-null value", 1, None)
def _min(call: Call) -> Node:
    return _extreme(call, operator.lt)


@function("max(list) / max(a, b, ...)", "the largest non-null value", 1, None)
def _max(call: Call) -> Node:
    return _extreme(call, operator.gt)


@function("coalesce(a, b, ...)", "the first argument that is not null", 1, None)
def _coalesce(call: Call) -> Node:
    result = Type.NULL
    for a in call.args:
        joined = unify(result, a.type)
        if joined is None:
            raise call.error(f"coalesce() needs values of one type; {a.text} is "
                             f"{a_type(a.type)}, the others are {plural(result)}", a)
        result = joined
    fns = tuple(a.fn for a in call.args)

    def fn(c: Context) -> Any:
        for f in fns:
            v = f(c)
            if v is not None:
                return v
        return None
    elem = next((a.elem for a in call.args if a.type is Type.LIST), Type.ANY)
    return Node(fn, result, call.start, call.end, call.text, elem=elem,
                boolean=all(a.boolean for a in call.args))

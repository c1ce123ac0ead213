"""Operators: ``and or not``, arithmetic, comparisons, ``in``, ``is null``, ``x if c else y``.

Null rules (two-valued, documented in docs/expressions.md): arithmetic with null is null;
``<``, ``<=``, ``>``, ``>=`` with null are false; ``==`` and ``!=`` treat null as a value
(``x == null`` is true when x is missing); null is false as a condition. Comparisons that
read a ``self`` field against a constant get a closure of their own, the common case in
validation rules.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import EvalError, ExprError, did_you_mean
from .nodes import LOOSE, NUMERIC, ORDERED, TEMPORAL, Node, a_type, plural, unify
from .runtime import ORDER_OPS, Context, Fault, arithmetic, contains, negate, order_slow, plus
from .scope import Type

if TYPE_CHECKING:
    from .compiler import Compiler

Fn = Callable[[Context], Any]

_ARITH = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
          ast.Mod: "%", ast.Pow: "**"}
_COMPARE = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
            ast.GtE: ">=", ast.In: "in", ast.NotIn: "not in", ast.Is: "is",
            ast.IsNot: "is not"}


def _condition(node: Node, word: str) -> Fn:
    """``node`` used as a condition: its closure, returning a real bool."""
    if node.type not in (Type.BOOL, Type.ANY, Type.NULL):
        example = {Type.NUMBER: f"{node.text} > 0",
                   Type.STRING: f"not is_blank({node.text})"}.get(node.type,
                                                                  f"{node.text} != null")
        raise ExprError(f"'{word}' needs a true/false value; {node.text} is "
                        f"{a_type(node.type)}", node.start, f"compare it, e.g. {example}")
    if node.boolean:
        return node.fn
    f = node.fn

    def truthy(c: Context) -> bool:
        return bool(f(c))
    return truthy


def _all_of(fns: list[Fn]) -> Fn:
    if len(fns) == 2:
        a, b = fns
        return lambda c: a(c) and b(c)
    if len(fns) == 3:
        a, b, d = fns
        return lambda c: a(c) and b(c) and d(c)

    def every(c: Context) -> bool:
        for f in fns:
            if not f(c):
                return False
        return True
    return every


def _any_of(fns: list[Fn]) -> Fn:
    if len(fns) == 2:
        a, b = fns
        return lambda c: a(c) or b(c)

    def some(c: Context) -> bool:
        for f in fns:
            if f(c):
                return True
        return False
    return some


def _finish(comp: Compiler, node: Node, parts: list[Node]) -> Node:
    return comp.fold(node) if all(p.const for p in parts) else node


def boolean(comp: Compiler, tree: ast.BoolOp) -> Node:
    """``a and b and …`` / ``a or b or …``; always true or false."""
    word = "and" if isinstance(tree.op, ast.And) else "or"
    parts = [comp.compile(v) for v in tree.values]
    fns = [_condition(p, word) for p in parts]
    fn = _all_of(fns) if word == "and" else _any_of(fns)
    start, end, text = comp.span(tree)
    return _finish(comp, Node(fn, Type.BOOL, start, end, text, boolean=True), parts)


def unary(comp: Compiler, tree: ast.UnaryOp) -> Node:
    """``not x``, ``-x``, ``+x``."""
    part = comp.compile(tree.operand)
    start, end, text = comp.span(tree)
    if isinstance(tree.op, ast.Not):
        f = _condition(part, "not")
        return _finish(comp, Node(lambda c: not f(c), Type.BOOL, start, end, text,
                                  boolean=True), [part])
    sym = "-" if isinstance(tree.op, ast.USub) else "+"
    if part.type not in NUMERIC | LOOSE:
        raise ExprError(f"'{sym}' needs a number; {part.text} is {a_type(part.type)}", start)
    op, g = (negate if sym == "-" else plus), part.fn

    def fn(c: Context) -> Any:
        v = g(c)
        if v is None:
            return None
        try:
            return op(v)
        except Fault as exc:
            raise EvalError(str(exc), start) from None
    return _finish(comp, Node(fn, Type.NUMBER, start, end, text), [part])


def _arith_hint(sym: str, lt: Type, rt: Type) -> str | None:
    types = {lt, rt}
    if sym == "-" and types <= TEMPORAL:
        return "use days_between(a, b) or hours_between(a, b)"
    if sym in "+-" and types & TEMPORAL:
        return "use add_days(d, n) or add_hours(t, n)"
    if Type.STRING in types and sym == "+":
        return "convert with string(x) or number(x), or join with concat(a, b)"
    if Type.STRING in types and sym == "*":
        return "repeating text is not supported"
    return None


def binary(comp: Compiler, tree: ast.BinOp) -> Node:
    """Arithmetic; ``+`` also joins two texts."""
    sym = _ARITH[type(tree.op)]
    left, right = comp.compile(tree.left), comp.compile(tree.right)
    at = comp.src.find(sym, left.end, right.start)
    start, end, text = comp.span(tree)
    lt, rt = left.type, right.type
    if {lt, rt} <= NUMERIC | LOOSE:
        result = Type.ANY if {lt, rt} <= LOOSE else Type.NUMBER
    elif sym == "+" and {lt, rt} <= {Type.STRING} | LOOSE:
        result = Type.STRING
    else:
        raise ExprError(f"cannot use '{sym}' with {a_type(lt)} and {a_type(rt)}", at,
                        _arith_hint(sym, lt, rt))
    op, lf, rf = arithmetic(sym, comp.limits), left.fn, right.fn

    def fn(c: Context) -> Any:
        a = lf(c)
        if a is None:
            return None
        b = rf(c)
        if b is None:
            return None
        try:
            return op(a, b)
        except Fault as exc:
            raise EvalError(str(exc), at) from None
    return _finish(comp, Node(fn, result, start, end, text), [left, right])


def conditional(comp: Compiler, tree: ast.IfExp) -> Node:
    """``a if cond else b``."""
    test = comp.compile(tree.test)
    tf = _condition(test, "if")
    body, orelse = comp.compile(tree.body), comp.compile(tree.orelse)
    result = unify(body.type, orelse.type)
    if result is None:
        raise ExprError(f"both results of 'if … else' must have one type; {body.text} is "
                        f"{a_type(body.type)}, {orelse.text} is {a_type(orelse.type)}",
                        orelse.start)
    if test.const:
        return body if test.value else orelse
    bf, of = body.fn, orelse.fn
    start, end, text = comp.span(tree)
    elem = body.elem if body.type is Type.LIST else orelse.elem
    return Node(lambda c: bf(c) if tf(c) else of(c), result, start, end, text, elem=elem,
                boolean=body.boolean and orelse.boolean, enum=body.enum or orelse.enum)


# ------------------------------------------------------------------------------ comparisons


def compare(comp: Compiler, tree: ast.Compare) -> Node:
    """``a == b``, ``a < b < c``, ``x in [..]``, ``x is null``…; always true or false."""
    parts = [comp.compile(x) for x in [tree.left, *tree.comparators]]
    fns = []
    for i, op in enumerate(tree.ops):
        a, b = parts[i], parts[i + 1]
        sym = _COMPARE[type(op)]
        at = comp.src.find(sym.split()[0], a.end, b.start)
        fns.append(_pair(sym, a, b, at))
    start, end, text = comp.span(tree)
    fn = fns[0] if len(fns) == 1 else _all_of(fns)
    return _finish(comp, Node(fn, Type.BOOL, start, end, text, boolean=True), parts)


def _compare_hint(a: Type, b: Type) -> str | None:
    types = {a, b}
    if Type.STRING in types and types & TEMPORAL:
        return "write a date as date('2024-01-31'), an instant as datetime('2024-01-31T08:00Z')"
    if types == TEMPORAL:
        return "take the date of a datetime with date(x)"
    if types == {Type.STRING, Type.NUMBER}:
        return "convert with number(x) or string(x)"
    return None


def _check_enum(coded: Node, other: Node) -> None:
    codes = coded.enum
    if not codes or not other.const:
        return
    values = other.value if isinstance(other.value, tuple) else (other.value,)
    for v in values:
        if isinstance(v, str) and v not in codes:
            hint = did_you_mean(v, codes) or "expected one of " + ", ".join(codes[:12])
            raise ExprError(f"'{v}' is not a value of {coded.text}", other.start, hint)


def _pair(sym: str, a: Node, b: Node, at: int) -> Fn:
    if sym in ("is", "is not"):
        if not (b.const and b.value is None):
            raise ExprError(f"'{sym}' only tests for null", at,
                            f"write x {sym} null, or compare values with ==")
        return _null_test(a, sym == "is")
    if sym in ("==", "!="):
        if unify(a.type, b.type) is None:
            raise ExprError(f"cannot compare {a.text} ({a.type}) with {b.text} ({b.type})", at,
                            _compare_hint(a.type, b.type))
        _check_enum(a, b)
        _check_enum(b, a)
        if b.const and b.value is None:
            return _null_test(a, sym == "==")
        if a.const and a.value is None:
            return _null_test(b, sym == "==")
        return _equality(a, b, sym == "==")
    if sym in ("in", "not in"):
        return _membership(a, b, sym, at)
    return _ordering(a, b, sym, at)


def _null_test(a: Node, is_null: bool) -> Fn:
    f, key = a.fn, a.field
    if key is not None:
        if is_null:
            return lambda c: c.record.get(key) is None
        return lambda c: c.record.get(key) is not None
    if is_null:
        return lambda c: f(c) is None
    return lambda c: f(c) is not None


def _same(x: Any, y: Any) -> bool:
    """Equality where a list equals a tuple with the same items."""
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        return list(x) == list(y)
    return bool(x == y)


def _equality(a: Node, b: Node, equal: bool) -> Fn:
    if a.const and not b.const:
        a, b = b, a
    f, g, key = a.fn, b.fn, a.field
    if {a.type, b.type} & {Type.LIST, Type.ANY}:
        if equal:
            return lambda c: _same(f(c), g(c))
        return lambda c: not _same(f(c), g(c))
    if b.const:
        v = b.value
        if key is not None:
            if equal:
                return lambda c: c.record.get(key) == v
            return lambda c: c.record.get(key) != v
        if equal:
            return lambda c: f(c) == v
        return lambda c: f(c) != v
    if equal:
        return lambda c: f(c) == g(c)
    return lambda c: f(c) != g(c)


def _ordering(a: Node, b: Node, sym: str, at: int) -> Fn:
    if Type.NULL in (a.type, b.type):
        raise ExprError(f"'{sym}' with null is always false", at,
                        "test for a missing value with x == null")
    for x in (a, b):
        if x.type not in ORDERED | {Type.ANY}:
            raise ExprError(f"cannot order {plural(x.type)} with '{sym}'", at)
    if unify(a.type, b.type) is None:
        raise ExprError(f"cannot compare {a.text} ({a.type}) with {b.text} ({b.type})", at,
                        _compare_hint(a.type, b.type))
    _check_enum(a, b)
    _check_enum(b, a)
    op, f, g, key = ORDER_OPS[sym], a.fn, b.fn, a.field

    def slow(x: Any, y: Any) -> bool:
        try:
            return order_slow(sym, x, y)
        except Fault as exc:
            raise EvalError(str(exc), at) from None

    if key is not None and b.const:
        v = b.value

        def field_vs_const(c: Context) -> bool:
            x = c.record.get(key)
            if x is None:
                return False
            try:
                return op(x, v)
            except (TypeError, ArithmeticError):
                return slow(x, v)
        return field_vs_const

    def general(c: Context) -> bool:
        x = f(c)
        if x is None:
            return False
        y = g(c)
        if y is None:
            return False
        try:
            return op(x, y)
        except (TypeError, ArithmeticError):
            return slow(x, y)
    return general


def _membership(a: Node, b: Node, sym: str, at: int) -> Fn:
    negate_result = sym == "not in"
    if b.type is Type.ROWS:
        raise ExprError(f"'{sym}' needs a list or a text on its right; {b.text} is a child "
                        "table", at, "test one of its columns: x in self.table.column")
    if b.type is Type.LIST:
        if unify(a.type, b.elem) is None:
            raise ExprError(f"{a.text} is {a_type(a.type)} but {b.text} holds "
                            f"{plural(b.elem)}", at, _compare_hint(a.type, b.elem))
    elif b.type is Type.STRING:
        if a.type not in {Type.STRING} | LOOSE:
            raise ExprError(f"'{sym}' a text looks for a text; {a.text} is {a_type(a.type)}",
                            at)
    elif b.type not in LOOSE:
        raise ExprError(f"'{sym}' needs a list or a text on its right; {b.text} is "
                        f"{a_type(b.type)}", at, "write a list as [a, b]")
    _check_enum(a, b)
    f, g = a.fn, b.fn
    if b.const and isinstance(b.value, tuple):
        try:
            members: Any = frozenset(b.value)
        except TypeError:  # pragma: no cover - literals are hashable
            members = b.value

        def in_literal(c: Context) -> bool:
            x = f(c)
            try:
                found = x in members
            except TypeError:
                found = any(x == m for m in members)
            return not found if negate_result else found
        return in_literal

    def general(c: Context) -> bool:
        y = g(c)
        if y is None:
            found = False
        else:
            try:
                found = contains(f(c), y)
            except Fault as exc:
                raise EvalError(str(exc), at) from None
        return not found if negate_result else found
    return general

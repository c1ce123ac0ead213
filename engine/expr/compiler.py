"""Checked syntax tree -> typed closures (phase 2 of compiling an expression).

Each node is type-checked against the :class:`~engine.expr.scope.Scope` and turned into a
closure ``fn(ctx)``; sub-expressions made only of constants are computed here, once, so
``2 ** 10000`` or ``date('2024-02-30')`` fail at load time. References to fields, links,
child tables and the user are recorded in :class:`Refs` so callers load only what an
expression reads. :mod:`engine.expr.operators` compiles operators and comparisons.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from . import aggregates as _aggregates  # noqa: F401  (registers sum, min, ...)
from . import operators
from .errors import EvalError, ExprError, did_you_mean
from .functions import FUNCTIONS
from .nodes import Call, Node, a_type, constant, plural, unify
from .parser import Source
from .references import resolve
from .runtime import Context
from .scope import FieldType, Limits, ObjectType, Scope, Type

NAMED_CONSTANTS: dict[str, Any] = {"null": None, "None": None, "true": True, "True": True,
                                   "false": False, "False": False}
MAX_INT_LITERAL = 2**63 - 1
_FOLD_CONTEXT = Context()


@dataclass(frozen=True)
class Refs:
    """What an expression reads: load these (and only these) before evaluating it."""

    #: fields of ``self``
    fields: frozenset[str] = frozenset()
    #: link field of ``self`` -> fields read from the linked record
    links: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: table field of ``self`` -> columns read from its rows (empty for just ``count``)
    children: Mapping[str, frozenset[str]] = field(default_factory=dict)
    parent: frozenset[str] = frozenset()
    user: frozenset[str] = frozenset()
    variables: frozenset[str] = frozenset()
    #: whether ``now()``/``today()`` are used (the result changes with time)
    clock: bool = False


class _RefsBuilder:
    def __init__(self) -> None:
        self.fields: set[str] = set()
        self.links: dict[str, set[str]] = defaultdict(set)
        self.children: dict[str, set[str]] = defaultdict(set)
        self.parent: set[str] = set()
        self.user: set[str] = set()
        self.variables: set[str] = set()
        self.clock = False

    def freeze(self) -> Refs:
        return Refs(frozenset(self.fields),
                    MappingProxyType({k: frozenset(v) for k, v in self.links.items()}),
                    MappingProxyType({k: frozenset(v) for k, v in self.children.items()}),
                    frozenset(self.parent), frozenset(self.user), frozenset(self.variables),
                    self.clock)


class Compiler:
    """Compiles one expression's tree; holds its source, scope, limits and references."""

    def __init__(self, src: Source, scope: Scope, limits: Limits) -> None:
        self.src = src
        self.scope = scope
        self.limits = limits
        self.refs = _RefsBuilder()

    # ------------------------------------------------------------------ helpers

    def text(self, node: ast.AST) -> str:
        """The source text of ``node`` (shortened for messages)."""
        t = " ".join(self.src.text[self.src.start(node):self.src.end(node)].split())
        return t if len(t) <= 40 else t[:37] + "..."

    def span(self, node: ast.AST) -> tuple[int, int, str]:
        return self.src.start(node), self.src.end(node), self.text(node)

    def fold(self, node: Node) -> Node:
        """Compute a node made only of constants now; errors become compile errors."""
        try:
            value = node.fn(_FOLD_CONTEXT)
        except EvalError as exc:
            raise ExprError(exc.message, exc.offset, exc.hint) from None
        if isinstance(value, list):
            value = tuple(value)
        folded = constant(value, node.type, node.start, node.end, node.text, elem=node.elem)
        folded.enum = node.enum
        return folded

    # ------------------------------------------------------------------ dispatch

    def compile(self, node: ast.AST) -> Node:
        """Compile ``node`` (any whitelisted expression node)."""
        if isinstance(node, ast.Constant):
            return self.literal(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.Attribute):
            return self.attribute(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, (ast.List, ast.Tuple)):
            return self.sequence(node)
        if isinstance(node, ast.BoolOp):
            return operators.boolean(self, node)
        if isinstance(node, ast.UnaryOp):
            return operators.unary(self, node)
        if isinstance(node, ast.BinOp):
            return operators.binary(self, node)
        if isinstance(node, ast.Compare):
            return operators.compare(self, node)
        if isinstance(node, ast.IfExp):
            return operators.conditional(self, node)
        # the parser's whitelist makes this unreachable
        raise ExprError(f"'{type(node).__name__}' is not allowed", self.src.start(node))

    # ------------------------------------------------------------------ leaves

    def literal(self, node: ast.Constant) -> Node:
        v = node.value
        start, end, text = self.span(node)
        if v is None:
            return constant(None, Type.NULL, start, end, text)
        if isinstance(v, bool):
            return constant(v, Type.BOOL, start, end, text)
        if isinstance(v, int):
            if abs(v) > MAX_INT_LITERAL:
                raise ExprError("number literal is too large", start,
                                f"whole numbers go up to {MAX_INT_LITERAL}")
            return constant(v, Type.NUMBER, start, end, text)
        if isinstance(v, float):
            if v != v or v in (float("inf"), float("-inf")):
                raise ExprError("number literal is too large", start)
            return constant(v, Type.NUMBER, start, end, text)
        if isinstance(v, str):
            if len(v) > self.limits.max_string:
                raise ExprError("text literal is too long", start)
            return constant(v, Type.STRING, start, end, text)
        raise ExprError(f"{type(v).__name__} literals are not allowed", start,
                        "literals are numbers, 'text', true, false and null")

    def name(self, node: ast.Name) -> Node:
        ident = node.id
        start, end, text = self.span(node)
        if ident in NAMED_CONSTANTS:
            v = NAMED_CONSTANTS[ident]
            return constant(v, Type.NULL if v is None else Type.BOOL, start, end, text)
        var = self.scope.variables.get(ident)
        if var is not None:
            if var.target is not None:
                raise ExprError(f"'{ident}' is a record; name one of its fields", start,
                                _fields_hint(ident, var.target))
            self.refs.variables.add(ident)
            return _variable(ident, var, start, end, text)
        roots = self.scope.roots()
        if ident in roots:
            raise ExprError(f"'{ident}' is a record; name one of its fields", start,
                            _fields_hint(ident, roots[ident]))
        if ident in FUNCTIONS:
            raise ExprError(f"'{ident}' is a function; call it: {ident}(...)", start)
        raise self.unknown_name(ident, start)

    def unknown_name(self, ident: str, start: int) -> ExprError:
        rec = self.scope.record
        if rec is not None and ident in rec.fields:
            return ExprError(f"unknown name '{ident}'", start,
                             f"fields are read through self: self.{ident}")
        if ident in ("self", "parent", "user"):
            return ExprError(f"'{ident}' is not available here", start, _absent(ident))
        names = [*self.scope.roots(), *self.scope.variables]
        return ExprError(f"unknown name '{ident}'", start,
                         did_you_mean(ident, [*names, "null", "true", "false"])
                         or _known_names(names))

    def attribute(self, node: ast.Attribute) -> Node:
        chain: list[ast.Attribute] = []
        cur: ast.AST = node
        while isinstance(cur, ast.Attribute):
            chain.append(cur)
            cur = cur.value
        chain.reverse()
        if not isinstance(cur, ast.Name):
            raise ExprError("only fields of self, parent, user and declared names can be "
                            "read with '.'", self.src.start(chain[0]),
                            "functions are called with the value inside: lower(x)")
        root = cur.id
        names = [a.attr for a in chain]
        offsets = [self.src.end(a) - len(a.attr) for a in chain]
        start, end, text = self.span(node)
        return resolve(self, root, self.src.start(cur), names, offsets, start, end, text)

    def call(self, node: ast.Call) -> Node:
        start, end, text = self.span(node)
        if not isinstance(node.func, ast.Name):
            at = self.src.start(node.func)
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in FUNCTIONS:
                attr, obj = func.attr, self.text(func.value)
                raise ExprError("methods are not supported", self.src.end(func) - len(attr),
                                f"call the function with the value inside: {attr}({obj})")
            raise ExprError("only built-in functions can be called", at)
        fname = node.func.id
        fdef = FUNCTIONS.get(fname)
        allowed = self.scope.functions
        if fdef is None or (allowed is not None and fname not in allowed):
            names = FUNCTIONS if allowed is None else allowed
            hint = did_you_mean(fname, names) or f"functions: {', '.join(sorted(names))}"
            msg = (f"unknown function '{fname}'" if fdef is None
                   else f"function '{fname}' is not available here")
            raise ExprError(msg, start, hint)
        n = len(node.args)
        if n < fdef.min_args or (fdef.max_args is not None and n > fdef.max_args):
            raise ExprError(f"{fname}() takes {_arity(fdef.min_args, fdef.max_args)}, "
                            f"got {n}", start, f"usage: {fdef.signature}")
        args = [self.compile(a) for a in node.args]
        call = Call(fname, args, start, end, text, self.limits, self.scope)
        out = fdef.build(call)
        for use in call.uses:
            if use == "clock":
                self.refs.clock = True
            elif use.startswith("user."):
                self.refs.user.add(use[5:])
        if fdef.pure and not out.const and all(a.const for a in args):
            return self.fold(out)
        return out

    def sequence(self, node: ast.List | ast.Tuple) -> Node:
        start, end, text = self.span(node)
        items = [self.compile(e) for e in node.elts]
        elem = Type.NULL
        for it in items:
            if it.type in (Type.LIST, Type.ROWS):
                raise ExprError("lists cannot hold lists", it.start)
            joined = unify(elem, it.type)
            if joined is None:
                raise ExprError(f"list items must have one type; {it.text} is "
                                f"{a_type(it.type)}, the others are {plural(elem)}", it.start)
            elem = joined
        elem = Type.ANY if elem is Type.NULL else elem
        if all(it.const for it in items):
            return constant(tuple(it.value for it in items), Type.LIST, start, end, text, elem)
        fns = tuple(it.fn for it in items)

        def fn(c: Context) -> list[Any]:
            return [f(c) for f in fns]
        return Node(fn, Type.LIST, start, end, text, elem=elem)


def _variable(ident: str, var: FieldType, start: int, end: int, text: str) -> Node:
    def fn(c: Context) -> Any:
        return c.variables.get(ident)
    return Node(fn, var.type, start, end, text, elem=var.elem, enum=var.enum, pure=False)


def _fields_hint(root: str, obj: ObjectType) -> str:
    names = sorted(obj.fields)
    shown = ", ".join(f"{root}.{n}" for n in names[:8])
    return f"for example {shown}" + (", ..." if len(names) > 8 else "")


def _absent(root: str) -> str:
    return {
        "self": "this expression is not about a record",
        "parent": "only rows of a child table have a parent",
        "user": "there is no signed-in user where this expression runs",
    }[root]


def _known_names(names: list[str]) -> str:
    shown = ", ".join(sorted(set(names)))
    return (f"names here: {shown}; " if shown else "") + "literals: null, true, false"


def _arity(lo: int, hi: int | None) -> str:
    if hi is None:
        return f"at least {lo} argument{'s' if lo != 1 else ''}"
    if lo == hi:
        return f"{lo} argument{'s' if lo != 1 else ''}"
    return f"{lo} to {hi} arguments"

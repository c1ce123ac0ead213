"""Row-level scopes: an entity's ``scope:`` expression, translated to a SQL ``WHERE`` clause.

A scope is an expression of the safe language (``docs/expressions.md``) restricted to what
SQL can answer for a whole table at once: fields of ``self`` or of a record linked from
``self`` (one hop) compared with values that depend only on the caller (constants,
``user.username``, ``user.id``, ``user.sites``, ``user.roles``, ``has_role(...)``), joined
with ``and``, ``or`` and ``not``. Anything else is reported when the model loads, at the
``file:line:col`` of the part that cannot be translated.

The translation keeps the language's two-valued null rules (``x != 'a'`` is true when x is
missing, ``x < 3`` is false), so ``not (...)`` means the same in SQL as in Python. A caller
whose sites include ``*`` has every site: ``x in user.sites`` is true for any record (also one
without a site) and ``x not in user.sites`` false.

Example::

    scope = scopes_for(model)["showcase.asset"]
    where = scope.clause(table, Caller(id=7, username="bob", roles=frozenset({"operator"}),
                                       sites=frozenset({"pad7"})))
    conn.execute(sa.select(table).where(where))
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from engine.expr import Context, ExprError, Type, compile
from engine.expr.parser import Source, parse
from engine.expr.scope import DEFAULT_LIMITS
from metamodel import Model
from metamodel.errors import Problems
from metamodel.model import Entity

from .compiled import scope_with_virtuals, sound
from .locate import expression_location

log = logging.getLogger(__name__)

ALL_SITES = "*"
_HINT = ("a scope compares fields of self (or of a record linked from self) with constants "
         "and user.username, user.id, user.sites or user.roles, joined with and/or/not")

Clause = sa.ColumnElement[bool]


@dataclass(frozen=True)
class Caller:
    """What a scope reads of the user: id, name, effective roles and sites."""

    id: Any
    username: str | None
    roles: frozenset[str]
    sites: frozenset[str]

    @property
    def all_sites(self) -> bool:
        """Whether the caller's sites include ``*`` (every site)."""
        return ALL_SITES in self.sites

    def context(self) -> Context:
        """The expression context holding this caller as ``user``."""
        return Context(user={"id": self.id, "username": self.username,
                             "roles": sorted(self.roles), "sites": sorted(self.sites)})


#: builds the clause of one scope over the entity's table, for one caller
Builder = Callable[[sa.Table, Caller], Clause]


@dataclass(frozen=True)
class RowScope:
    """The compiled scope of one entity."""

    entity: str
    source: str
    build: Builder

    def clause(self, table: sa.Table, caller: Caller) -> Clause:
        """The ``WHERE`` clause over ``table`` (the entity's table) for ``caller``."""
        return self.build(table, caller)


# --------------------------------------------------------------------------- translation


def _reads(node: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))


def _is_sites(node: ast.AST) -> bool:
    """Whether ``node`` is ``user.sites``."""
    return isinstance(node, ast.Attribute) and node.attr == "sites" \
        and isinstance(node.value, ast.Name) and node.value.id == "user"


def _sites_test(node: ast.AST) -> bool | None:
    """For ``x in user.sites`` True, ``x not in user.sites`` False (what they give for a
    caller with every site, ``*``); None for anything else."""
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and _is_sites(node.comparators[0]):
        if isinstance(node.ops[0], ast.In):
            return True
        if isinstance(node.ops[0], ast.NotIn):
            return False
    return None


_FLIP = {ast.Eq: ast.Eq, ast.NotEq: ast.NotEq, ast.Lt: ast.Gt, ast.Gt: ast.Lt,
         ast.LtE: ast.GtE, ast.GtE: ast.LtE, ast.Is: ast.Is, ast.IsNot: ast.IsNot}


@dataclass(frozen=True)
class _Column:
    """A column a scope tests: ``self.field`` or ``self.link.field``."""

    name: str
    #: for ``self.link.field``: (link column, target table name)
    hop: tuple[str, str] | None = None


class _Translator:
    def __init__(self, model: Model, ent: Entity, src: Source) -> None:
        self.model = model
        self.ent = ent
        self.src = src
        self.user_scope = scope_with_virtuals(model, ent)

    def error(self, node: ast.AST, message: str, hint: str | None = _HINT) -> ExprError:
        return ExprError(message, self.src.start(node), hint)

    def text(self, node: ast.AST) -> str:
        return self.src.text[self.src.start(node):self.src.end(node)]

    # -- nodes

    def translate(self, node: ast.expr) -> Builder:
        if not _reads(node, "self"):
            return self.caller_test(node)
        if isinstance(node, ast.BoolOp):
            parts = [self.translate(v) for v in node.values]
            join = sa.and_ if isinstance(node.op, ast.And) else sa.or_
            return lambda t, c: join(*(p(t, c) for p in parts))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.translate(node.operand)
            return lambda t, c: sa.not_(inner(t, c))
        if isinstance(node, ast.Compare):
            atoms = []
            items = [node.left, *node.comparators]
            for i, op in enumerate(node.ops):
                atoms.append(self.compare(items[i], op, items[i + 1], node))
            if len(atoms) == 1:
                return atoms[0]
            return lambda t, c: sa.and_(*(a(t, c) for a in atoms))
        if isinstance(node, ast.Attribute):
            col = self.column(node)
            return self.atom(col, lambda table, caller: (True,), "truth", None, node)
        raise self.error(node, f"cannot be run as SQL: {self.text(node)}")

    def caller_test(self, node: ast.expr) -> Builder:
        """A part that reads only the caller: evaluated per request to true or false."""
        expr = compile(self.text(node), self.user_scope, expect=Type.BOOL)
        every_site = _sites_test(node)

        def build(table: sa.Table, caller: Caller) -> Clause:
            if every_site is not None and caller.all_sites:
                return sa.true() if every_site else sa.false()
            return sa.true() if expr.evaluate(caller.context()) else sa.false()
        return build

    def value(self, node: ast.expr) -> tuple[Callable[[Caller], Any], Type, bool]:
        """A value that depends only on the caller: (getter, type, is user.sites)."""
        if _reads(node, "self"):
            raise self.error(node, f"compares two fields of the record ({self.text(node)}); "
                             "a scope compares a field with a value of the caller", None)
        expr = compile(self.text(node), self.user_scope)

        def get(caller: Caller) -> Any:
            return expr.evaluate(caller.context())
        return get, expr.type, _is_sites(node)

    def column(self, node: ast.expr) -> _Column:
        """``self.f`` or ``self.link.f`` as a column reference; else an error."""
        chain: list[str] = []
        cur: ast.expr = node
        while isinstance(cur, ast.Attribute):
            chain.append(cur.attr)
            cur = cur.value
        if not (isinstance(cur, ast.Name) and cur.id == "self") or not chain:
            raise self.error(node, f"cannot be run as SQL: {self.text(node)}")
        chain.reverse()
        ent = self.ent
        first = chain[0]
        spec = ent.fields.get(first)
        if spec is not None and spec.type == "table":
            raise self.error(node, f"child table '{first}' cannot be tested in a scope", None)
        if spec is not None and spec.is_virtual:
            raise self.error(node, f"'{first}' is computed when read (stored: false); a scope "
                             "can only test stored fields", None)
        if len(chain) == 1:
            return _Column(first)
        if len(chain) > 2 or spec is None or spec.type != "link":
            raise self.error(node, f"goes further than one link from self: {self.text(node)}")
        target = self.model.entity(ent.targets[first])
        tspec = target.fields.get(chain[1])
        if tspec is not None and (tspec.type == "table" or tspec.is_virtual):
            raise self.error(node, f"'{chain[1]}' of {target.qualname} is not a stored column",
                             None)
        return _Column(chain[1], (first, target.table))

    def compare(self, left: ast.expr, op: ast.cmpop, right: ast.expr, node: ast.AST
                ) -> Builder:
        left_self, right_self = _reads(left, "self"), _reads(right, "self")
        if left_self and right_self:
            raise self.error(node, f"compares two fields of the record ({self.text(node)}); "
                             "a scope compares a field with a value of the caller", None)
        kind = type(op)
        if left_self:
            col_node, val_node = left, right
        else:
            if kind in (ast.In, ast.NotIn):
                raise self.error(node, f"looks for a text inside a field ({self.text(node)}); "
                                 "a scope can test a field 'in' a list (user.sites, [..])", None)
            col_node, val_node = right, left
            kind = _FLIP[kind]
        col = self.column(col_node)
        get, vtype, sites = self.value(val_node)
        if kind in (ast.In, ast.NotIn) and vtype not in (Type.LIST, Type.ANY, Type.NULL):
            raise self.error(node, f"looks for a text inside a value ({self.text(node)}); a "
                             "scope can test a field 'in' a list (user.sites, [..])", None)
        names = {ast.Eq: "==", ast.NotEq: "!=", ast.Is: "==", ast.IsNot: "!=", ast.Lt: "<",
                 ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.In: "in", ast.NotIn: "not in"}
        every_site = {ast.In: True, ast.NotIn: False}.get(kind) if sites else None
        return self.atom(col, lambda table, caller: (get(caller),), names[kind], every_site,
                         node)

    def atom(self, col: _Column, value: Callable[[sa.Table, Caller], tuple[Any]], op: str,
             every_site: bool | None, node: ast.AST) -> Builder:
        def build(table: sa.Table, caller: Caller) -> Clause:
            if every_site is not None and caller.all_sites:
                return sa.true() if every_site else sa.false()
            (v,) = value(table, caller)
            if col.hop is None:
                return _test(table.c[col.name], op, v)
            link, target_name = col.hop
            target = table.metadata.tables[target_name]
            link_col = table.c[link]
            inner = link_col.in_(sa.select(target.c.id).where(_test(target.c[col.name], op, v)))
            if _null_truth(op, v):
                return sa.or_(link_col.is_(None), inner)
            return sa.and_(link_col.is_not(None), inner)
        return build


def _null_truth(op: str, v: Any) -> bool:
    """What the test gives for a missing (null) field, by the language's rules."""
    if op == "==":
        return v is None
    if op == "!=":
        return v is not None
    if op == "in":
        return v is not None and None in v
    if op == "not in":
        return v is None or None not in v
    return False  # truth and ordering: null is false


def _members(v: Any) -> list[Any]:
    if v is None:
        return []
    if isinstance(v, (list, tuple, set, frozenset)):
        return [m for m in v if m is not None]
    return [v]


def _test(col: sa.ColumnElement[Any], op: str, v: Any) -> Clause:
    """``col <op> v`` as a two-valued SQL test (true or false, never NULL)."""
    if op == "truth":
        return col.is_(True)
    nullable = getattr(col, "nullable", True)
    if op in ("==", "!=") and v is None:
        return col.is_(None) if op == "==" else col.is_not(None)
    test: Clause
    if op == "==":
        test = col == v
    elif op == "!=":
        test = col != v
    elif op in ("<", "<=", ">", ">="):
        if v is None:
            return sa.false()
        test = {"<": col < v, "<=": col <= v, ">": col > v, ">=": col >= v}[op]
    elif op == "in":
        test = col.in_(_members(v))
    else:
        test = col.not_in(_members(v))
    if not nullable:
        return test
    if _null_truth(op, v):
        return sa.or_(col.is_(None), test)
    return sa.and_(col.is_not(None), test)


# --------------------------------------------------------------------------- load time


def compile_scope(model: Model, ent: Entity) -> RowScope:
    """Type-check and translate ``ent``'s ``scope:``; raise :class:`ExprError`."""
    source = ent.spec.scope
    assert source is not None
    compile(source, scope_with_virtuals(model, ent), expect=Type.BOOL)  # types, names
    tree, src = parse(source, DEFAULT_LIMITS)
    build = _Translator(model, ent, src).translate(tree)
    return RowScope(ent.qualname, source, build)


def check_scopes(model: Model, problems: Problems) -> dict[str, RowScope]:
    """Compile the scope of every sound top-level entity; failures become located
    problems (``entities.<name>.scope``)."""
    out: dict[str, RowScope] = {}
    for qual, ent in model.entities.items():
        if ent.spec.scope is None or ent.parent is not None or ent.spec.child \
                or not ent.spec.scope.strip() or not sound(model, ent):
            continue
        try:
            out[qual] = compile_scope(model, ent)
        except ExprError as err:
            path = ("entities", ent.name, "scope")
            loc = expression_location(ent.doc, path, ent.spec.scope, err.offset)
            problems.add(loc, ".".join(path), err.message, err.hint)
    return out

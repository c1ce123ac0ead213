"""Dotted names -> reads of the context: ``self.f``, ``self.link.f``, ``self.table.col``,
``parent.f``, ``user.f`` and ``var.f``.

Only names the scope declares resolve; the closure reads a mapping with ``.get(name)`` for
a name fixed at compile time. There is no ``getattr`` on any value, so nothing outside the
model (``__class__``, methods, modules) can be reached.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .errors import EvalError, ExprError, did_you_mean
from .functions import FUNCTIONS
from .nodes import Node, a_type
from .runtime import Context
from .scope import FieldType, ObjectType, Type

if TYPE_CHECKING:
    from .compiler import Compiler


def resolve(comp: Compiler, root: str, root_start: int, names: Sequence[str],
            offsets: Sequence[int], start: int, end: int, text: str) -> Node:
    """Compile ``root.names[0].names[1]…`` into a read of the context."""
    roots = comp.scope.roots()
    obj = roots.get(root)
    if obj is not None:
        ft = _field(obj, root, names[0], offsets[0])
        if root == "self":
            return _self_ref(comp, names, offsets, ft, start, end, text)
        _no_deeper(root, names, offsets, ft, hop=False)
        if root == "parent":
            comp.refs.parent.add(names[0])
            return _read_parent(names[0], ft, start, end, text)
        comp.refs.user.add(names[0])
        return _read_user(names[0], ft, start, end, text)
    var = comp.scope.variables.get(root)
    if var is not None:
        if var.target is None:
            raise ExprError(f"'{root}' is {a_type(var.type)}; it has no fields", offsets[0])
        ft = _field(var.target, root, names[0], offsets[0])
        depth = 1
        while ft.target is not None and depth < len(names):  # an object inside an object
            ft = _field(ft.target, ".".join([root, *names[:depth]]), names[depth],
                        offsets[depth])
            depth += 1
        if ft.target is not None and ft.type is Type.ANY:
            shown = ".".join([root, *names[:depth]])
            raise ExprError(f"{shown} is a group of names, not a value", offsets[depth - 1],
                            "name one of them: " + _listing(ft.target))
        _no_deeper(".".join([root, *names[:depth - 1]]), names[depth - 1:],
                   offsets[depth - 1:], ft, hop=False)
        comp.refs.variables.add(root)
        if depth > 1:
            return _read_nested(root, tuple(names[:depth]), ft, start, end, text)
        return _read_variable(root, names[0], ft, start, end, text)
    if root in ("null", "None", "true", "True", "false", "False") or root in FUNCTIONS:
        raise ExprError(f"'{root}' has no fields", offsets[0])
    raise comp.unknown_name(root, root_start)


def _field(obj: ObjectType, root: str, name: str, offset: int) -> FieldType:
    ft = obj.fields.get(name)
    if ft is None:
        label = root if root == obj.name else f"{root} ({obj.name})"
        hint = did_you_mean(name, obj.fields) or _listing(obj)
        raise ExprError(f"unknown field '{name}' of {label}", offset, hint)
    return ft


def _listing(obj: ObjectType) -> str:
    names = sorted(obj.fields)
    return "fields: " + ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")


def _no_deeper(path: str, names: Sequence[str], offsets: Sequence[int], ft: FieldType,
               hop: bool) -> None:
    depth = 2 if hop else 1
    if len(names) <= depth:
        return
    shown = ".".join([path, *names[:depth]])
    sub = names[depth]
    if ft.target is not None:
        msg = (f"links are followed one hop from self; {shown} is the id of a "
               f"{ft.target.name} record")
    else:
        msg = f"{shown} is {a_type(ft.type)}; it has no fields"
    hint = f"call {sub}({shown})" if sub in FUNCTIONS else None
    raise ExprError(msg, offsets[depth], hint)


def _self_ref(comp: Compiler, names: Sequence[str], offsets: Sequence[int], ft: FieldType,
              start: int, end: int, text: str) -> Node:
    f = names[0]
    limits = comp.limits
    if len(names) == 1:
        if ft.type is Type.ROWS:
            comp.refs.children.setdefault(f, set())
            return Node(_rows_reader(f, limits.max_rows, start), Type.ROWS, start, end, text,
                        pure=False)
        comp.refs.fields.add(f)

        def read(c: Context) -> Any:
            return c.record.get(f)
        return Node(read, ft.type, start, end, text, elem=ft.elem, field=f, enum=ft.enum,
                    pure=False)
    if ft.target is not None:
        g = _field(ft.target, f"self.{f}", names[1], offsets[1])
        _no_deeper("self", names, offsets, g, hop=True)
        comp.refs.fields.add(f)
        comp.refs.links.setdefault(f, set()).add(names[1])
        return _read_link(f, names[1], g, start, end, text)
    if ft.rows is not None:
        g = _field(ft.rows, f"self.{f}", names[1], offsets[1])
        _no_deeper("self", names, offsets, g, hop=True)
        comp.refs.children.setdefault(f, set()).add(names[1])
        elem = g.type if g.type not in (Type.LIST, Type.ROWS) else Type.ANY
        return Node(_column_reader(f, names[1], limits.max_rows, start), Type.LIST, start,
                    end, text, elem=elem, enum=g.enum, pure=False)
    _no_deeper("self", names, offsets, ft, hop=False)
    raise AssertionError("unreachable")  # pragma: no cover


def _rows_reader(table: str, max_rows: int, offset: int) -> Any:
    def rows(c: Context) -> Any:
        got = c.children.get(table)
        if got is None:
            raise EvalError(f"the rows of self.{table} were not given to evaluate "
                            f"(Context.children[{table!r}])", offset)
        if len(got) > max_rows:
            raise EvalError(f"self.{table} has {len(got)} rows; the limit is {max_rows}",
                            offset)
        return got
    return rows


def _column_reader(table: str, column: str, max_rows: int, offset: int) -> Any:
    rows = _rows_reader(table, max_rows, offset)

    def column_values(c: Context) -> list[Any]:
        return [r.get(column) for r in rows(c)]
    return column_values


def _read_link(link: str, name: str, ft: FieldType, start: int, end: int, text: str) -> Node:
    def read(c: Context) -> Any:
        target = c.links.get(link)
        if target is None:
            if c.record.get(link) is None:
                return None  # the link is empty
            raise EvalError(f"the record linked by self.{link} was not given to evaluate "
                            f"(Context.links[{link!r}])", start)
        return target.get(name)
    return Node(read, ft.type, start, end, text, elem=ft.elem, enum=ft.enum, pure=False)


def _read_parent(name: str, ft: FieldType, start: int, end: int, text: str) -> Node:
    def read(c: Context) -> Any:
        p = c.parent
        if p is None:
            raise EvalError("the parent record was not given to evaluate (Context.parent)",
                            start)
        return p.get(name)
    return Node(read, ft.type, start, end, text, elem=ft.elem, enum=ft.enum, pure=False)


def _read_user(name: str, ft: FieldType, start: int, end: int, text: str) -> Node:
    def read(c: Context) -> Any:
        u = c.user
        if u is None:
            raise EvalError("no user was given to evaluate (Context.user)", start)
        return u.get(name)
    return Node(read, ft.type, start, end, text, elem=ft.elem, enum=ft.enum, pure=False)


def _read_variable(var: str, name: str, ft: FieldType, start: int, end: int,
                   text: str) -> Node:
    def read(c: Context) -> Any:
        obj = c.variables.get(var)
        return None if obj is None else obj.get(name)
    return Node(read, ft.type, start, end, text, elem=ft.elem, enum=ft.enum, pure=False)


def _read_nested(var: str, names: tuple[str, ...], ft: FieldType, start: int, end: int,
                 text: str) -> Node:
    def read(c: Context) -> Any:
        obj = c.variables.get(var)
        for name in names:
            if obj is None:
                return None
            obj = obj.get(name)
        return obj
    return Node(read, ft.type, start, end, text, elem=ft.elem, enum=ft.enum, pure=False)

"""Compiled nodes: a closure plus what the checker knows about its value.

Each syntax-tree node compiles into a :class:`Node` holding ``fn(ctx) -> value`` and its
static type. Closures call closures; there is no interpreter loop and no ``eval``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import ExprError
from .runtime import Context
from .scope import Limits, Scope, Type

Fn = Callable[[Context], Any]

NUMERIC = frozenset({Type.NUMBER})
TEXT = frozenset({Type.STRING})
TEMPORAL = frozenset({Type.DATE, Type.DATETIME})
ORDERED = frozenset({Type.NUMBER, Type.STRING, Type.DATE, Type.DATETIME})
LOOSE = frozenset({Type.ANY, Type.NULL})

_ARTICLE = {Type.ANY: "a value of unknown type", Type.NULL: "null", Type.LIST: "a list",
            Type.ROWS: "a child table", Type.DATE: "a date", Type.DATETIME: "a datetime",
            Type.BOOL: "a boolean", Type.NUMBER: "a number", Type.STRING: "a string"}


def a_type(t: Type) -> str:
    """``"a number"``, ``"a date"``… for messages."""
    return _ARTICLE[t]


_PLURAL = {Type.ANY: "values", Type.NULL: "nulls", Type.ROWS: "child tables",
           Type.BOOL: "booleans"}


def plural(t: Type) -> str:
    """``"numbers"``, ``"dates"``… for messages."""
    return _PLURAL.get(t, f"{t.value}s")


@dataclass(slots=True)
class Node:
    """One compiled sub-expression."""

    fn: Fn
    type: Type
    start: int
    end: int
    text: str
    #: element type when ``type`` is LIST
    elem: Type = Type.ANY
    const: bool = False
    value: Any = None
    #: ``fn`` always returns a real ``True``/``False`` (never null)
    boolean: bool = False
    #: set when the node is a plain read of ``self.<field>`` (a fast path)
    field: str | None = None
    #: allowed codes when the node reads an enum field
    enum: tuple[str, ...] | None = None
    #: the node depends only on constants (it may be folded at compile time)
    pure: bool = True


def constant(value: Any, t: Type, start: int, end: int, text: str,
             elem: Type = Type.ANY) -> Node:
    """A node whose value is known at compile time (a list literal is kept as a tuple)."""
    fn: Fn
    if isinstance(value, tuple):
        def fn(_c: Context, _v: tuple[Any, ...] = value) -> Any:
            return list(_v)  # a fresh list: callers may not share or mutate constants
    else:
        def fn(_c: Context, _v: Any = value) -> Any:
            return _v
    return Node(fn, t, start, end, text, elem=elem, const=True, value=value,
                boolean=isinstance(value, bool))


def unify(a: Type, b: Type) -> Type | None:
    """The type of a value that is either ``a`` or ``b``; ``None`` when they clash."""
    if a == b:
        return a
    if a is Type.NULL:
        return b
    if b is Type.NULL:
        return a
    if Type.ANY in (a, b):
        return Type.ANY
    return None


def accepts(t: Type, allowed: Iterable[Type]) -> bool:
    """Whether a value of static type ``t`` may be given where ``allowed`` types are."""
    return t in LOOSE or t in allowed


@dataclass
class Call:
    """What a function's builder gets: its arguments and the call's place in the source."""

    name: str
    args: list[Node]
    start: int
    end: int
    text: str
    limits: Limits
    scope: Scope | None = None
    #: what the call reads besides its arguments: "clock", "user.<field>"
    uses: set[str] = field(default_factory=set)

    def error(self, message: str, at: Node | int | None = None,
              hint: str | None = None) -> ExprError:
        """An error located at an argument (or the call)."""
        offset = at.start if isinstance(at, Node) else (self.start if at is None else at)
        return ExprError(message, offset, hint)

    def need(self, arg: Node, allowed: Iterable[Type], what: str) -> None:
        """Raise unless ``arg`` may hold one of ``allowed`` (``what`` names them)."""
        if not accepts(arg.type, allowed):
            raise self.error(f"{self.name}() takes {what}; {arg.text} is {a_type(arg.type)}",
                             arg, _conversion_hint(arg.type, allowed))


def _conversion_hint(got: Type, allowed: Iterable[Type]) -> str | None:
    allowed = set(allowed)
    if Type.NUMBER in allowed and got is Type.STRING:
        return "convert text with number(x)"
    if Type.STRING in allowed and got is not Type.STRING:
        return "convert with string(x)"
    if Type.DATE in allowed and got is Type.STRING:
        return "write a date as date('2024-01-31')"
    return None

"""What an expression may name: value types, records, the scope and the limits.

A :class:`Scope` is declared once per place an expression is written (an entity's
validation, an alarm rule…). The compiler checks every name against it, so a typo is a
load-time error with a did-you-mean hint, never a runtime surprise. Nothing here evaluates
anything.

Example::

    scope = Scope(record=ObjectType("demo.tank", {
        "level_m": FieldType(Type.NUMBER),
        "status": FieldType(Type.STRING, enum=("open", "closed")),
    }))
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


class Type(enum.StrEnum):
    """The static type of a value or an expression."""

    BOOL = "bool"
    NUMBER = "number"
    STRING = "string"
    DATE = "date"
    DATETIME = "datetime"
    LIST = "list"
    #: the rows of a child table (only ``count``/``len`` take them; columns are lists)
    ROWS = "rows"
    NULL = "null"
    #: unknown until run time (``json`` fields, variables declared without a type)
    ANY = "any"


@dataclass(frozen=True)
class FieldType:
    """The type of one field, plus what the compiler can check about its values."""

    type: Type
    #: the allowed codes of an ``enum`` field (literals compared with it are checked)
    enum: tuple[str, ...] | None = None
    #: element type of a list-valued field (``user.roles`` is a list of strings)
    elem: Type = Type.ANY
    #: for a link field: the fields of the linked record (read one hop, ``self.link.x``);
    #: for an object variable: the fields of the mapping it holds (``tag.value``)
    target: ObjectType | None = None
    #: for a child table: the columns of its rows (``sum(self.lines.amount)``)
    rows: ObjectType | None = None


@dataclass(frozen=True)
class ObjectType:
    """A record type: a name for messages (``module.entity``) and its fields."""

    name: str
    fields: Mapping[str, FieldType]

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))


#: The fields of ``user`` that the API fills in (roles are expanded through inheritance).
DEFAULT_USER = ObjectType("user", {
    "id": FieldType(Type.ANY),
    "username": FieldType(Type.STRING),
    "roles": FieldType(Type.LIST, elem=Type.STRING),
    "sites": FieldType(Type.LIST, elem=Type.STRING),
})


@dataclass(frozen=True)
class Limits:
    """Size and time bounds; an expression that would exceed one is rejected or stopped."""

    #: characters of source text
    max_source: int = 4000
    #: syntax-tree nodes after parsing
    max_nodes: int = 1000
    #: nesting depth of the syntax tree
    max_depth: int = 100
    #: characters of a string the language builds (``+``, ``concat``)
    max_string: int = 100_000
    #: child rows an aggregate (``sum``, ``count``…) may visit
    max_rows: int = 100_000
    #: bits of an integer result of ``*`` or ``**``
    max_int_bits: int = 256
    #: absolute value of an exponent of ``**``
    max_exponent: int = 1024


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Scope:
    """The names an expression may use.

    ``record`` is ``self``; ``parent`` exists for child entities; ``user`` is the signed-in
    user (``None`` where there is none, as in alarm conditions); ``variables`` are extra
    top-level names (a tag's ``value``…); ``functions`` restricts the built-in functions
    (``None``: all of them).
    """

    record: ObjectType | None = None
    parent: ObjectType | None = None
    user: ObjectType | None = DEFAULT_USER
    variables: Mapping[str, FieldType] = field(default_factory=dict)
    functions: frozenset[str] | None = None

    def roots(self) -> dict[str, ObjectType]:
        """The record-valued top-level names: ``self``, ``parent``, ``user`` where declared."""
        out = {}
        if self.record is not None:
            out["self"] = self.record
        if self.parent is not None:
            out["parent"] = self.parent
        if self.user is not None:
            out["user"] = self.user
        return out

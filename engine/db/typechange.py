"""Classify a column type change: ``same``, ``widen`` (every value still fits) or ``narrow``.

The planner asks this for every type difference Alembic reports. A widening keeps every value
and is applied without ``--allow-data-loss``; a narrowing may cut or reject values, so it is
a destructive step. Types are reduced to a small :class:`Shape` (family and size) so that a
type reflected from the database (``VARCHAR(80)``, ``DOUBLE_PRECISION``) compares with the
type the model asks for (``String(80)``, ``Float()``).

Example::

    import sqlalchemy as sa
    classify(sa.String(20), sa.String(40))        # 'widen'
    classify(sa.Numeric(10, 2), sa.Numeric(8, 2))  # 'narrow'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

Change = Literal["same", "widen", "narrow"]

@dataclass(frozen=True)
class Shape:
    """The family of a SQL type and the sizes that decide whether values fit."""

    family: str
    #: string length (None: unlimited) or integer bits
    size: int | None = None
    precision: int | None = None
    scale: int | None = None


def _unwrap(t: Any) -> Any:
    while isinstance(t, sa.types.TypeDecorator):
        t = t.impl_instance
    return t


def shape_of(t: Any) -> Shape:
    """The :class:`Shape` of a SQLAlchemy type (reflected or declared)."""
    t = _unwrap(t)
    if isinstance(t, sa.Text):
        return Shape("text")
    if isinstance(t, sa.String):
        return Shape("string", t.length)
    if isinstance(t, sa.Boolean):
        return Shape("bool")
    if isinstance(t, sa.SmallInteger):
        return Shape("int", 16)
    if isinstance(t, sa.BigInteger):
        return Shape("int", 64)
    if isinstance(t, sa.Integer):
        return Shape("int", 32)
    if isinstance(t, sa.Float):
        return Shape("float")
    if isinstance(t, sa.Numeric):
        return Shape("decimal", None, t.precision, t.scale)
    if isinstance(t, sa.DateTime):
        return Shape("datetime")
    if isinstance(t, sa.Date):
        return Shape("date")
    if isinstance(t, sa.JSON):
        return Shape("json")
    return Shape(type(t).__name__.lower())


def _decimal_widens(old: Shape, new: Shape) -> bool:
    if new.precision is None:          # unconstrained NUMERIC holds anything
        return True
    if old.precision is None:
        return False
    old_scale, new_scale = old.scale or 0, new.scale or 0
    return new_scale >= old_scale and new.precision - new_scale >= old.precision - old_scale


def classify(old: Any, new: Any) -> Change:
    """Whether changing a column from type ``old`` to ``new`` keeps every value."""
    o, n = shape_of(old), shape_of(new)
    if o == n:
        return "same"
    if o.family == "string" and n.family == "string":
        if n.size is None or (o.size is not None and n.size >= o.size):
            return "widen"
        return "narrow"
    if o.family == "string" and n.family == "text":
        return "widen"
    if o.family == "text" and n.family == "string":
        return "same" if n.size is None else "narrow"
    if o.family == "int" and n.family == "int":
        return "widen" if (n.size or 0) >= (o.size or 0) else "narrow"
    if o.family == "int" and n.family in ("decimal", "float"):
        return "widen"
    if o.family == "decimal" and n.family == "decimal":
        return "widen" if _decimal_widens(o, n) else "narrow"
    if o.family == n.family:
        return "same"
    return "narrow"


def max_abs(t: Any) -> int | None:
    """For a ``NUMERIC(p, s)``: the bound ``10**(p - s)`` values must stay below, else None."""
    s = shape_of(t)
    if s.family != "decimal" or s.precision is None:
        return None
    return int(10 ** (s.precision - (s.scale or 0)))


def max_length(t: Any) -> int | None:
    """For a ``VARCHAR(n)``: ``n``; else None."""
    s = shape_of(t)
    return s.size if s.family == "string" else None

"""Data questions the planner asks the live database before it proposes a step.

How many rows a drop would delete, how many values a narrowing would cut, whether a new
unique constraint or link would be violated by the rows already there. Every query is a
read-only ``SELECT count(*)`` built from Core constructs with quoted names, so it runs the
same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def _table(name: str, *cols: str) -> sa.TableClause:
    return sa.table(name, *(sa.column(c) for c in cols))


def _count(conn: Connection, stmt: sa.Select[Any]) -> int:
    value = conn.execute(stmt).scalar_one()
    return int(value)


def rows(conn: Connection, table: str) -> int:
    """Number of rows in ``table``."""
    return _count(conn, sa.select(sa.func.count()).select_from(_table(table)))


def non_null(conn: Connection, table: str, column: str) -> int:
    """Number of rows whose ``column`` holds a value."""
    t = _table(table, column)
    return _count(conn, sa.select(sa.func.count()).select_from(t)
                  .where(t.c[column].is_not(None)))


def longer_than(conn: Connection, table: str, column: str, length: int) -> int:
    """Number of values of ``column`` longer than ``length`` characters."""
    t = _table(table, column)
    return _count(conn, sa.select(sa.func.count()).select_from(t)
                  .where(sa.func.length(t.c[column]) > length))


def out_of_range(conn: Connection, table: str, column: str, bound: int) -> int:
    """Number of values of ``column`` whose magnitude reaches ``bound`` (10**integer digits)."""
    t = _table(table, column)
    return _count(conn, sa.select(sa.func.count()).select_from(t)
                  .where(sa.func.abs(t.c[column]) >= bound))


def duplicates(conn: Connection, table: str, columns: Sequence[str]) -> int:
    """Number of distinct value groups of ``columns`` that appear more than once (NULLs aside)."""
    t = _table(table, *columns)
    cols = [t.c[c] for c in columns]
    groups = (sa.select(*cols).where(*(c.is_not(None) for c in cols))
              .group_by(*cols).having(sa.func.count() > 1).subquery())
    return _count(conn, sa.select(sa.func.count()).select_from(groups))


def orphans(conn: Connection, table: str, column: str, target: str, target_column: str) -> int:
    """Number of values of ``column`` with no row of ``target`` to point at."""
    t = _table(table, column)
    r = _table(target, target_column)
    return _count(conn, sa.select(sa.func.count()).select_from(t).where(
        t.c[column].is_not(None),
        ~sa.exists().where(r.c[target_column] == t.c[column])))


@dataclass(frozen=True)
class Link:
    """A foreign key of ``table.columns`` that points at ``target``."""

    table: str
    columns: tuple[str, ...]
    target: str
    name: str | None


def links_to(conn: Connection, target: str, tables: Iterable[str]) -> list[Link]:
    """Foreign keys of ``tables`` (as they are in the database) that reference ``target``."""
    insp = sa.inspect(conn)
    existing = set(insp.get_table_names())
    out = []
    for t in sorted(set(tables) & existing):
        if t == target:
            continue
        for fk in insp.get_foreign_keys(t):
            if fk["referred_table"] == target:
                out.append(Link(t, tuple(fk["constrained_columns"]), target, fk.get("name")))
    return out

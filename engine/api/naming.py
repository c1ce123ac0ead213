"""Naming series: gap-free counters that name records (``naming.series: WO-{YYYY}-{#####}``).

One counter row per (entity, key) in the platform table ``campo_series``; the key is the
series rendered with ``{#}`` for the counter (``WO-2025-{#}``), so a ``{YYYY}`` series
restarts every year and a ``{site}`` series counts per site. Numbers are taken by an
``UPDATE ... SET last = last + n RETURNING last`` of that row **inside the transaction that
inserts the records**: the row lock (PostgreSQL) or the write lock (SQLite, whose write
transactions the rules open with ``BEGIN IMMEDIATE``) is held until commit, so concurrent
creates wait for each other, and a rolled-back insert gives its numbers back. No gaps, no
duplicates.

The rules' tables (``campo_series``, ``campo_transition``) are platform tables
(:mod:`engine.db.platform`), created and changed by the platform revisions;
:func:`ensure_tables` applies pending ones when the app is built.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from engine.db import platform
from engine.db.tables import ID_TYPE, UTCDateTime
from metamodel.behaviour import Series

log = logging.getLogger(__name__)

#: the platform tables' MetaData (kept under this name for existing imports)
platform_metadata = platform.metadata

series_table = sa.Table(
    "campo_series", platform_metadata,
    sa.Column("entity", sa.String(127), primary_key=True),
    sa.Column("key", sa.String(500), primary_key=True),
    sa.Column("last", sa.BigInteger(), nullable=False),
)

transition_table = sa.Table(
    "campo_transition", platform_metadata,
    sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    sa.Column("entity", sa.String(127), nullable=False),
    sa.Column("record_id", sa.BigInteger(), nullable=False),
    sa.Column("action", sa.String(63), nullable=False),
    sa.Column("from_state", sa.String(63), nullable=False),
    sa.Column("to_state", sa.String(63), nullable=False),
    sa.Column("username", sa.String(255)),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("comment", sa.Text()),
    sa.Index("ix_campo_transition_record", "entity", "record_id", "id"),
    sqlite_autoincrement=True,
)


def ensure_tables(engine: Engine) -> None:
    """Apply pending platform revisions (``campo_series``, ``campo_transition``...)."""
    platform.upgrade(engine)


def begin_write(conn: Connection) -> None:
    """On SQLite, make the transaction a writer from its first statement (``BEGIN
    IMMEDIATE``): the rules read (links, the record) before they write, and a deferred
    transaction that read first cannot wait for another writer; it fails with "database is
    locked". Other databases lock rows instead (``FOR UPDATE``)."""
    if conn.dialect.name != "sqlite":
        return
    dbapi = conn.connection.dbapi_connection
    if dbapi is not None and not dbapi.in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def take_numbers(conn: Connection, entity: str, key: str, count: int) -> int:
    """Reserve ``count`` consecutive numbers of the counter ``(entity, key)``; the first.

    Runs in the caller's transaction: the counter row stays locked until it commits, and a
    rollback returns the numbers.
    """
    t = series_table
    insert: Any = (postgresql.insert(t) if conn.dialect.name == "postgresql"
                   else sqlite.insert(t))
    conn.execute(insert.values(entity=entity, key=key, last=0).on_conflict_do_nothing())
    last = conn.execute(sa.update(t).where(t.c.entity == entity, t.c.key == key)
                        .values(last=t.c.last + count).returning(t.c.last)).scalar_one()
    return int(last) - count + 1


def assign_names(conn: Connection, entity: str, series: Series,
                 records: Sequence[dict[str, Any]], on: dt.date) -> None:
    """Fill ``series.field`` of each record, in order, from the counter of its key."""
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for values in records:
        by_key[series.key(values, on)].append(values)
    for key in sorted(by_key):  # a fixed order: two bulk creates never lock in reverse
        group = by_key[key]
        first = take_numbers(conn, entity, key, len(group))
        for n, values in enumerate(group, start=first):
            values[series.field] = series.render(values, on, n)
        log.debug("%s: numbers %d..%d of %s", entity, first, first + len(group) - 1, key)


def series_state(conn: Connection, entity: str) -> Mapping[str, int]:
    """Last number given per key of ``entity`` (for tests and tools)."""
    t = series_table
    return {k: int(v) for k, v in conn.execute(
        sa.select(t.c.key, t.c.last).where(t.c.entity == entity)).all()}

"""Dialect-specific DDL for platform tables: the hooks :func:`engine.db.platform.on_create` runs.

Each hook takes ``(connection, table_name)``, is idempotent (a SQLite table rebuild runs it
again) and does what its dialect can: triggers, TimescaleDB hypertables, partitions. The
detection of TimescaleDB lives here too, so the historian's hooks and its run-time code ask
one function.
"""

from __future__ import annotations

import logging

from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)


def _quoted(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unexpected table name {name!r}")
    return f'"{name}"'


def immutable_rows(conn: Connection, table: str) -> None:
    """Refuse ``UPDATE`` and ``DELETE`` on ``table`` with a trigger (PostgreSQL and SQLite).

    The triggers are named ``<table>_immutable`` (PostgreSQL, with a function of the same
    name) and ``<table>_no_update`` / ``<table>_no_delete`` (SQLite).
    """
    q = _quoted(table)
    message = f"{table} rows are immutable"
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            f"CREATE OR REPLACE FUNCTION {table}_immutable() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{message}'; END $$")
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_immutable ON {q}")
        conn.exec_driver_sql(
            f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {q} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_immutable()")
    elif conn.dialect.name == "sqlite":
        for event, suffix in (("UPDATE", "no_update"), ("DELETE", "no_delete")):
            conn.exec_driver_sql(
                f"CREATE TRIGGER IF NOT EXISTS {table}_{suffix} BEFORE {event} ON {q} "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END")
    else:
        log.warning("%s: no immutability trigger for dialect %s", table, conn.dialect.name)


def timescaledb_version(conn: Connection) -> str | None:
    """The TimescaleDB extension's version in this database, or None (not PostgreSQL, or
    the extension is not installed in it)."""
    if conn.dialect.name != "postgresql":
        return None
    row = conn.exec_driver_sql(
        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").first()
    return None if row is None else str(row[0])

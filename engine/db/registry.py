"""The registry of generated tables: which tables of a database Campo created and manages.

``campo_tables`` holds one row per generated table (``name``, ``entity``). The planner
compares only registered tables and the tables of the current model, so an entity removed
from the YAML shows as a destructive ``drop table`` while tables Campo did not create
(another application's, ``alembic_version``, the platform's own tables) are never touched.
Revisions keep the registry current (rows are inserted, renamed and deleted by the same
revision that creates, renames or drops a table) and :func:`adopt` registers model tables
that exist already (a database created before the registry, or by ``create_all``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

REGISTRY_TABLE = "campo_tables"
#: Tables the planner never compares, whatever the registry says.
NEVER_MANAGED = frozenset({"alembic_version"})


def registry_table(metadata: sa.MetaData) -> sa.Table:
    """Add the registry table to ``metadata`` (so the first revision creates it)."""
    return sa.Table(
        REGISTRY_TABLE, metadata,
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("entity", sa.String(127), nullable=False),
    )


_ROWS = sa.table(REGISTRY_TABLE, sa.column("name"), sa.column("entity"))


def registered(conn: Connection) -> dict[str, str]:
    """Registered table -> entity (empty when the registry does not exist yet)."""
    if not sa.inspect(conn).has_table(REGISTRY_TABLE):
        return {}
    rows = conn.execute(sa.select(_ROWS.c.name, _ROWS.c.entity)).all()
    return {str(name): str(entity) for name, entity in rows}


def adopt(conn: Connection, tables: dict[str, str]) -> list[str]:
    """Register every table of ``tables`` (name -> entity) that exists and is not registered."""
    insp = sa.inspect(conn)
    if not insp.has_table(REGISTRY_TABLE):
        return []
    existing = set(insp.get_table_names())
    known = registered(conn)
    missing = [t for t in tables if t in existing and t not in known]
    if missing:
        conn.execute(_ROWS.insert(), [{"name": t, "entity": tables[t]} for t in missing])
        log.info("registered existing table(s) %s", ", ".join(missing))
    gone = [t for t in known if t not in existing]
    if gone:
        conn.execute(_ROWS.delete().where(_ROWS.c.name.in_(gone)))
        log.info("unregistered missing table(s) %s", ", ".join(gone))
    return missing


def _q(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def insert_sql(name: str, entity: str) -> str:
    """SQL that registers a created table (rendered into revisions)."""
    return f"INSERT INTO {REGISTRY_TABLE} (name, entity) VALUES ({_q(name)}, {_q(entity)})"


def rename_sql(old: str, new: str, entity: str) -> str:
    """SQL that follows a table rename."""
    return (f"UPDATE {REGISTRY_TABLE} SET name = {_q(new)}, entity = {_q(entity)} "
            f"WHERE name = {_q(old)}")


def delete_sql(name: str) -> str:
    """SQL that forgets a dropped table."""
    return f"DELETE FROM {REGISTRY_TABLE} WHERE name = {_q(name)}"


def managed_names(model_tables: Iterable[str], conn: Connection) -> set[str]:
    """Every table name the planner may compare: model tables, registered ones, the registry."""
    names = set(model_tables) | set(registered(conn)) | {REGISTRY_TABLE}
    return names - NEVER_MANAGED

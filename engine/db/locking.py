"""One connection in one exclusive transaction: how every schema change runs.

PostgreSQL: a transaction-scoped advisory lock, so two processes starting together migrate
one after the other. SQLite: ``BEGIN IMMEDIATE`` (the write lock from the first statement)
with foreign-key enforcement off while tables are copied by batch operations, then
``PRAGMA foreign_key_check``: a change that would leave a dangling link is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection, Engine

from .errors import MigrationError

#: Key of the PostgreSQL advisory lock held while migrating ("campo" in ASCII).
PG_LOCK_KEY = 0x63616D706F


@contextmanager
def exclusive_transaction(engine: Engine) -> Iterator[Connection]:
    """One connection in one transaction, exclusive among migrating processes."""
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            with conn.begin():
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_LOCK_KEY})")
                yield conn
            return
        raw = conn.connection.driver_connection
        assert raw is not None
        isolation = raw.isolation_level
        raw.isolation_level = None          # we issue BEGIN/COMMIT ourselves
        fk_on = raw.execute("PRAGMA foreign_keys").fetchone()[0]
        raw.execute("PRAGMA foreign_keys=OFF")   # no-op inside a transaction: set it first
        try:
            conn.begin()
            raw.execute("BEGIN IMMEDIATE")
            before = {tuple(r) for r in conn.exec_driver_sql("PRAGMA foreign_key_check")}
            yield conn
            bad = sorted({tuple(r) for r in conn.exec_driver_sql("PRAGMA foreign_key_check")}
                         - before, key=str)
            if bad:
                raise MigrationError("the migration would break links: " + "; ".join(
                    f"{r[0]} row {r[1]} -> {r[2]}" for r in bad[:10]))
            conn.commit()
        finally:
            if conn.in_transaction():
                conn.rollback()
            raw.execute(f"PRAGMA foreign_keys={'ON' if fk_on else 'OFF'}")
            raw.isolation_level = isolation

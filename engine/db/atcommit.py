"""Statements that ride on the ``COMMIT`` (PostgreSQL): one round trip instead of one each.

A write's bookkeeping (its audit row, its ``NOTIFY``\\ s) must commit with it or not at all,
and nobody waits for its answer. :func:`at_commit` queues such a statement on the
connection; when the transaction commits, the queued statements and the ``COMMIT`` go to
the server as one simple-query message (values quoted by psycopg's client-side binding),
after which psycopg's own ``commit()`` finds the session idle and sends nothing. A generated
create then costs three round trips (``BEGIN``, ``INSERT``, audit + notice + ``COMMIT``)
instead of five. A rollback drops the queue, and so does rolling back the savepoint the
statements were queued in. If a queued statement fails, the server skips the rest of the
message (``COMMIT`` included): the transaction is aborted and the error reaches the caller
as SQLAlchemy's ``DBAPIError``, as a failing ``COMMIT`` would.

Only PostgreSQL connections inside a transaction queue (:func:`queues`); elsewhere callers
run their statement at once (SQLite has no network to save). :func:`notify` sends the
credential invalidations; record events leave after the commit instead
(:mod:`engine.api.record_events`), on the same channels (:data:`CHANNEL_SQL`).

Example::

    with engine.begin() as conn:
        conn.execute(insert(t).values(name="W-1"))
        notify(conn, "campo_records:", '{"e": "wells.well"}')  # sent with the COMMIT
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

#: ``pg_notify`` on ``<prefix><current schema>``: two deployments (or two tests) sharing a
#: database never hear each other
CHANNEL_SQL = "%(prefix)s || current_schema()"
NOTIFY_SQL = f"SELECT pg_notify({CHANNEL_SQL}, %(payload)s)"

_watched: weakref.WeakSet[Engine] = weakref.WeakSet()
_lock = threading.Lock()


def queues(conn: Connection) -> bool:
    """Whether :func:`at_commit` queues on ``conn`` (PostgreSQL, inside a transaction that
    a ``COMMIT`` ends: not under the ``AUTOCOMMIT`` isolation level)."""
    return (conn.dialect.name == "postgresql" and conn.in_transaction()
            and not conn.connection.driver_connection.autocommit)


def at_commit(conn: Connection, sql: str, params: Mapping[str, Any]) -> None:
    """Send ``sql`` (PostgreSQL, ``%(name)s`` placeholders) with the ``COMMIT`` of ``conn``'s
    transaction; at once when :func:`queues` is false (autocommit)."""
    if conn.dialect.name != "postgresql":
        raise ValueError("at_commit is for PostgreSQL connections")
    if not queues(conn) or (conn.engine not in _watched and conn.in_nested_transaction()):
        # autocommit, or a savepoint begun before this engine was watched (its rollback
        # could not drop the queue): at once, where the server keeps NOTIFY's promise
        conn.exec_driver_sql(sql, dict(params))
        return
    import psycopg

    # quoted now, with the connection's settings: a value psycopg cannot adapt fails here,
    # in the caller's code, not at the commit
    text = psycopg.ClientCursor(conn.connection.driver_connection).mogrify(sql, params)
    watch(conn.engine)
    _queue.add(conn, text)


def notify(conn: Connection, prefix: str, payload: str) -> None:
    """``pg_notify`` on ``<prefix><schema>``, delivered if ``conn``'s transaction commits."""
    at_commit(conn, NOTIFY_SQL, {"prefix": prefix, "payload": payload})


def watch(engine: Engine) -> None:
    """Follow ``engine``'s transactions and savepoints (done by
    :func:`engine.db.create_engine_for`, before any savepoint can begin)."""
    with _lock:
        if engine in _watched:
            return
        _watched.add(engine)
    _queue.follow_savepoints(engine)
    sa.event.listen(engine, "commit", _on_commit)
    sa.event.listen(engine, "rollback", _queue.clear)
    sa.event.listen(engine, "checkin", lambda _dbapi, record: _queue.clear_info(record.info))


def _on_commit(conn: Connection) -> None:
    queued: list[str] | None = _queue.take(conn)
    if not queued:
        return
    message = ";\n".join([*queued, "COMMIT"])
    try:
        conn.connection.driver_connection.execute(message)
    except Exception as exc:
        import psycopg

        if isinstance(exc, psycopg.Error):
            raise sa.exc.DBAPIError.instance(message, None, exc, psycopg.Error,
                                             dialect=conn.dialect) from exc
        raise


class TransactionList:
    """A list kept in a connection's ``info`` for the transaction in progress: what was
    added inside a savepoint that rolls back is dropped with it. The owner takes the list
    at commit and clears it at rollback (``record_events`` also keeps SQLite's events in
    one until the connection returns to the pool)."""

    def __init__(self, key: str) -> None:
        self.key, self.marks = key, key + "_marks"

    def add(self, conn: Connection, item: Any) -> None:
        conn.info.setdefault(self.key, []).append(item)

    def extend(self, conn: Connection, items: Any) -> None:
        conn.info.setdefault(self.key, []).extend(items)

    def take(self, conn: Connection) -> list[Any] | None:
        """The list (None when empty), no longer kept."""
        conn.info.pop(self.marks, None)
        return conn.info.pop(self.key, None)

    def clear(self, conn: Connection) -> None:
        self.clear_info(conn.info)

    def clear_info(self, info: dict[str, Any]) -> None:
        info.pop(self.key, None)
        info.pop(self.marks, None)

    def follow_savepoints(self, engine: Engine) -> None:
        """Mark where each savepoint of ``engine`` began; cut back to it on its rollback."""
        sa.event.listen(engine, "savepoint", self._on_savepoint)
        sa.event.listen(engine, "rollback_savepoint", self._on_rollback_savepoint)
        sa.event.listen(engine, "release_savepoint", self._on_release_savepoint)

    def _on_savepoint(self, conn: Connection, name: str | None) -> None:
        conn.info.setdefault(self.marks, []).append((name, len(conn.info.get(self.key, ()))))

    def _pop_mark(self, conn: Connection, name: str) -> int | None:
        """The list's length when savepoint ``name`` began (the innermost one when the name
        is not known: SQLAlchemy may announce a savepoint before naming it); None without
        one."""
        marks: list[tuple[str | None, int]] = conn.info.get(self.marks, [])
        if not marks:
            return None
        names = [m for m, _ in marks]
        at = len(names) - 1 - names[::-1].index(name) if name in names else len(marks) - 1
        size = marks[at][1]
        del marks[at:]
        return size

    def _on_rollback_savepoint(self, conn: Connection, name: str, _context: Any) -> None:
        size = self._pop_mark(conn, name)
        if size is not None:
            del conn.info.get(self.key, [])[size:]

    def _on_release_savepoint(self, conn: Connection, name: str, _context: Any) -> None:
        self._pop_mark(conn, name)


#: the statements queued on each connection
_queue = TransactionList("campo_at_commit")
